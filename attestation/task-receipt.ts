/**
 * A task receipt: one signed bundle saying what an agent task was and did, checkable by a third
 * party with only Warden's published JWKS (and, optionally, the custody witness's published keys
 * and tree heads). It holds:
 *
 *   statement      DSSE envelope of an in-toto Statement (predicate type .../task-receipt/v1)
 *                  signed with Warden's key: who asked (user, intent hash), the task's status,
 *                  every agent (model, agent id, act chain, grant hash), every action (tool,
 *                  argument digest, decision, matched rules, approval, credential id, outcome),
 *                  every claim verdict, and the custody tree head and records below
 *   attestations   the signed Statements of the verified claims (their digests are in the predicate)
 *   custody        the task's custody records, each with its RFC 9162 inclusion proof against one
 *                  signed tree head (checkpoint) of the ledger
 *
 * Verification (`verifyTaskReceipt`) trusts keys only from the caller: the receipt's signature and
 * the claims' with the JWKS, the records' and the tree head's signatures with the custody keys of
 * that JWKS or of the witness. Arguments are carried as digests, never as values (a receipt is
 * meant to be handed out).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes } from '../custody/canonical-json';
import { CheckpointSchema, LedgerRecordSchema, recordLeafHash, type Checkpoint, type LedgerRecord } from '../custody/ledger-record';
import { inclusionProof as merkleInclusionProof, merkleRoot, toHex } from '../custody/merkle';
import { verifyInclusionProof } from '../custody/verify-ledger';
import { AttestationError } from '../errors';
import type { Jwks, PublicJwk } from '../identity/claims';
import type { StepRecord, TaskResult } from '../task/task-run';
import { CLAIM_VERDICT_RECORD, type ClaimOutcome } from './claim-outcome';
import type { ByteSigner } from './dsse';
import { DsseEnvelopeSchema, type DsseEnvelope } from './dsse-envelope-schema';
import { jsonSubject, openStatement, RECEIPT_PREDICATE_TYPE, sha256Hex, signStatement, STATEMENT_TYPE, type Statement, type Subject } from './in-toto-statement';
import { runSubject } from './claim-attestation';

export const TASK_RECEIPT_FORMAT = 'warden.task-receipt/1';

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const TaskReceiptSchema = z.strictObject({
  format: z.literal(TASK_RECEIPT_FORMAT),
  statement: DsseEnvelopeSchema,
  attestations: z.array(DsseEnvelopeSchema),
  custody: z.strictObject({
    /** Where the ledger is (file or database, without password). */
    ledger: z.string(),
    checkpoint: CheckpointSchema,
    /** Every record of the task with its audit path to the checkpoint root. */
    records: z.array(z.strictObject({ record: LedgerRecordSchema, auditPath: z.array(Hex64) })),
    /** The custody signers' public keys, for convenience only: a verifier trusts its own JWKS or the witness. */
    publicKeys: z.array(z.record(z.string(), z.unknown())),
  }),
});
export type TaskReceipt = z.infer<typeof TaskReceiptSchema>;

/** Who ran the task, as the workflow result names them (root first, then sub-agents depth first). */
function agentsOf(result: TaskResult, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  out.push({
    workflowId: result.workflowId,
    runId: result.runId,
    agent: result.agent,
    model: result.model,
    depth: result.depth,
    status: result.status,
    ...(result.identity === undefined ? {} : { agentId: result.identity.agentId, chain: result.identity.chain, grantId: result.identity.grantId, grantHash: result.identity.grantHash }),
  });
  for (const child of result.children) agentsOf(child, out);
  return out;
}

function actionOf(workflowId: string, step: StepRecord): Record<string, unknown> {
  return {
    workflowId,
    index: step.index,
    turn: step.turn,
    kind: step.kind,
    tool: step.tool,
    argsSha256: sha256Hex(canonicalBytes(step.args)),
    decision: step.decision,
    reason: step.reason,
    ...(step.policy === undefined ? {} : { policy: step.policy }),
    ...(step.approval === undefined ? {} : { approval: step.approval }),
    executed: step.executed,
    ...(step.error === undefined ? {} : { error: step.error }),
    ...(step.credential === undefined ? {} : { credential: { jti: step.credential.jti, scope: step.credential.scope } }),
    startedAt: step.startedAt,
  };
}

function actionsOf(result: TaskResult, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  for (const step of result.steps) out.push(actionOf(result.workflowId, step));
  for (const child of result.children) actionsOf(child, out);
  return out;
}

function envelopeDigest(envelope: DsseEnvelope): string {
  return sha256Hex(canonicalBytes(envelope));
}

function claimEntry(claim: ClaimOutcome): Record<string, unknown> {
  return {
    id: claim.id,
    workflowId: claim.workflowId,
    agent: claim.agent,
    index: claim.index,
    claim: claim.claim,
    text: claim.text,
    verdict: claim.verdict,
    reason: claim.reason,
    ...(claim.observed === undefined ? {} : { observed: claim.observed }),
    ...(claim.custody === undefined ? {} : { custody: claim.custody }),
    ...(claim.envelope === undefined ? {} : { attestationSha256: envelopeDigest(claim.envelope) }),
  };
}

export interface BuildReceiptInput {
  result: TaskResult;
  /** The task's user and the SHA-256 of its intent (`sha256:<hex>`). */
  user: string;
  intentHash: string;
  /** Every custody record of the task, in ledger order. */
  records: LedgerRecord[];
  /** Leaf hashes of the ledger's first `checkpoint.treeSize` records. */
  leaves: Buffer[];
  checkpoint: Checkpoint;
  ledger: string;
  custodyKeys: readonly object[];
  issuedAt: string;
}

/**
 * Builds and signs a receipt. @throws AttestationError ERR_ATTESTATION_MALFORMED when the
 * checkpoint does not cover every record or the leaves do not make its root.
 */
export async function buildTaskReceipt(input: BuildReceiptInput, signer: ByteSigner): Promise<TaskReceipt> {
  const { result, checkpoint, leaves } = input;
  if (leaves.length !== checkpoint.treeSize || toHex(merkleRoot(leaves)) !== checkpoint.rootHash) {
    throw new AttestationError('ERR_ATTESTATION_MALFORMED', `the custody ledger does not match checkpoint #${checkpoint.id}; run \`warden audit verify\``);
  }
  const uncovered = input.records.find((r) => r.seq >= checkpoint.treeSize);
  if (uncovered !== undefined) throw new AttestationError('ERR_ATTESTATION_MALFORMED', `custody record ${uncovered.seq} is not covered by checkpoint #${checkpoint.id}`);
  const claims = result.claims ?? [];
  const attestations = claims.flatMap((c) => (c.envelope === undefined ? [] : [c.envelope]));
  const subject: Subject[] = [
    runSubject(result),
    ...input.records.map((r) => ({ name: `custody:${r.seq}`, digest: { sha256: r.hash } })),
    ...attestations.map((e, i) => jsonSubject(`attestation:${i}`, e)),
  ];
  const statement: Statement = {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: RECEIPT_PREDICATE_TYPE,
    predicate: {
      task: {
        workflowId: result.workflowId,
        runId: result.runId,
        user: input.user,
        intentHash: input.intentHash,
        status: result.status,
        ...(result.reason === undefined ? {} : { reason: result.reason }),
        ...(result.final === null ? {} : { answerSha256: sha256Hex(result.final.answer) }),
      },
      agents: agentsOf(result),
      actions: actionsOf(result),
      claims: claims.map(claimEntry),
      ...(result.recovery === undefined ? {} : { recovery: { committed: result.recovery.committed ?? [], rolledBack: result.recovery.rolledBack.length, notUndoable: result.recovery.notUndoable } }),
      custody: {
        ledger: input.ledger,
        checkpoint: { id: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, kid: checkpoint.kid, timestamp: checkpoint.timestamp },
        records: input.records.map((r) => ({ seq: r.seq, kind: r.kind, workflowId: r.workflowId, hash: r.hash })),
      },
      issuedAt: input.issuedAt,
    },
  };
  return {
    format: TASK_RECEIPT_FORMAT,
    statement: await signStatement(statement, signer),
    attestations,
    custody: {
      ledger: input.ledger,
      checkpoint,
      records: input.records.map((record) => ({ record, auditPath: merkleInclusionProof(leaves, record.seq, checkpoint.treeSize).map(toHex) })),
      publicKeys: input.custodyKeys.map((k) => ({ ...k })),
    },
  };
}

export interface ReceiptCheck {
  ok: boolean;
  problems: string[];
  /** Once the signature verified. */
  predicate?: {
    task: { workflowId: string; runId: string; user: string; status: string };
    actions: unknown[];
    claims: { verdict: string; text: string; agent: string }[];
  };
  keyids: string[];
  /** How many custody records were proven against the tree head. */
  provenRecords: number;
  /** Whether the tree head is among the witness's published ones (when a witness was given). */
  publishedHead?: boolean;
}

export interface VerifyReceiptOptions {
  /** Custody keys the witness published (trusted next to the JWKS's Ed25519 keys). */
  witnessKeys?: readonly { kty: string; crv: string; x: string; kid: string }[];
  /** Tree heads the witness published: the receipt's must be one of them. */
  witnessHeads?: readonly Checkpoint[];
}

/** Ed25519 keys of a JWKS and of the witness, by kid: the custody signers a verifier trusts. */
function custodyKeysOf(jwks: Jwks, witnessKeys: VerifyReceiptOptions['witnessKeys']): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  const add = (jwk: Pick<PublicJwk, 'kid'> & { kty: string; crv?: string; x?: string }) => {
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') return;
    try {
      keys.set(jwk.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }));
    } catch {
      // not a key: not trusted
    }
  };
  for (const jwk of jwks.keys) add(jwk);
  for (const jwk of witnessKeys ?? []) add(jwk);
  return keys;
}

/** Checks a receipt offline; never throws for the receipt's sake. */
export function verifyTaskReceipt(receipt: unknown, jwks: Jwks, options: VerifyReceiptOptions = {}): ReceiptCheck {
  const parsed = TaskReceiptSchema.safeParse(receipt);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, problems: [`ERR_ATTESTATION_MALFORMED: not a task receipt: ${issue?.path.join('.') || '(receipt)'}: ${issue?.message}`], keyids: [], provenRecords: 0 };
  }
  const r = parsed.data;
  let statement: Statement;
  let keyids: string[];
  try {
    ({ statement, keyids } = openStatement(r.statement, jwks));
  } catch (error) {
    if (error instanceof AttestationError) return { ok: false, problems: [`${error.code}: the receipt's signature: ${error.message}`], keyids: [], provenRecords: 0 };
    throw error;
  }
  const problems: string[] = [];
  const fail = (code: string, message: string) => problems.push(`${code}: ${message}`);
  if (statement.predicateType !== RECEIPT_PREDICATE_TYPE) fail('ERR_ATTESTATION_MALFORMED', `predicate type ${statement.predicateType} is not a task receipt`);
  const predicate = statement.predicate as {
    task: { workflowId: string; runId: string; user: string; status: string };
    actions: unknown[];
    claims: { id: string; verdict: string; text: string; agent: string; claim: unknown; custody?: { seq: number; hash: string }; attestationSha256?: string }[];
    custody: { checkpoint: { id: number; treeSize: number; rootHash: string; kid: string }; records: { seq: number; hash: string }[] };
  };
  const subjects = new Map(statement.subject.map((s) => [s.name, s.digest['sha256']]));

  // Claims: every verified one has its signed Statement here, agreeing with the receipt.
  const byDigest = new Map(r.attestations.map((e) => [envelopeDigest(e), e]));
  for (const claim of predicate.claims ?? []) {
    if (claim.verdict !== 'verified') {
      if (claim.attestationSha256 !== undefined) fail('ERR_ATTESTATION_MALFORMED', `claim ${claim.id} is ${claim.verdict} yet names an attestation`);
      continue;
    }
    const envelope = claim.attestationSha256 === undefined ? undefined : byDigest.get(claim.attestationSha256);
    if (envelope === undefined) {
      fail('ERR_ATTESTATION_SUBJECT', `the attestation of verified claim ${claim.id} is missing`);
      continue;
    }
    try {
      const opened = openStatement(envelope, jwks).statement.predicate as { claim?: unknown; verdict?: unknown };
      if (opened.verdict !== 'verified' || sha256Hex(canonicalBytes(opened.claim ?? null)) !== sha256Hex(canonicalBytes(claim.claim))) {
        fail('ERR_ATTESTATION_SUBJECT', `the attestation of claim ${claim.id} attests another claim`);
      }
    } catch (error) {
      fail(error instanceof AttestationError ? error.code : 'ERR_ATTESTATION_MALFORMED', `the attestation of claim ${claim.id}: ${(error as Error).message}`);
    }
  }
  r.attestations.forEach((e, i) => {
    if (subjects.get(`attestation:${i}`) !== sha256Hex(canonicalBytes(e))) fail('ERR_ATTESTATION_SUBJECT', `attestation ${i} is not the one the receipt signed`);
  });

  // Custody: the signed tree head is the one the receipt names, and every named record is proven against it.
  const checkpoint = r.custody.checkpoint;
  const named = predicate.custody?.checkpoint;
  if (named === undefined || named.id !== checkpoint.id || named.treeSize !== checkpoint.treeSize || named.rootHash !== checkpoint.rootHash || named.kid !== checkpoint.kid) {
    fail('ERR_ATTESTATION_SUBJECT', 'the custody tree head is not the one the receipt signed');
  }
  const trusted = custodyKeysOf(jwks, options.witnessKeys);
  if (!trusted.has(checkpoint.kid)) fail('ERR_ATTESTATION_KEY_UNKNOWN', `the custody key ${checkpoint.kid} is in neither the JWKS nor the witness's keys`);
  const namedRecords = predicate.custody?.records ?? [];
  if (namedRecords.length !== r.custody.records.length) fail('ERR_ATTESTATION_SUBJECT', `the receipt names ${namedRecords.length} custody records and proves ${r.custody.records.length}`);
  let proven = 0;
  const provenBySeq = new Map<number, LedgerRecord>();
  r.custody.records.forEach(({ record, auditPath }, i) => {
    const expected = namedRecords[i];
    if (expected === undefined || expected.seq !== record.seq || expected.hash !== record.hash || subjects.get(`custody:${record.seq}`) !== record.hash) {
      fail('ERR_ATTESTATION_SUBJECT', `custody record ${record.seq} is not one the receipt signed`);
      return;
    }
    const check = verifyInclusionProof(
      {
        format: 'warden.custody.inclusion-proof/1',
        record,
        leafIndex: record.seq,
        treeSize: checkpoint.treeSize,
        leafHash: toHex(recordLeafHash(record.hash)),
        auditPath,
        checkpoint,
        publicKeys: [],
      },
      trusted,
    );
    if (!check.ok) fail('ERR_CUSTODY_BROKEN', `custody record ${record.seq}: ${check.problems.join('; ')}`);
    else {
      proven++;
      provenBySeq.set(record.seq, record);
    }
  });
  // Each claim's verdict is the one its custody record holds.
  for (const claim of predicate.claims ?? []) {
    if (claim.custody === undefined) continue;
    const record = provenBySeq.get(claim.custody.seq);
    if (record === undefined || record.hash !== claim.custody.hash || record.kind !== CLAIM_VERDICT_RECORD || (record.body as { verdict?: unknown }).verdict !== claim.verdict) {
      fail('ERR_ATTESTATION_SUBJECT', `claim ${claim.id}'s verdict is not the one custody record ${claim.custody.seq} holds`);
    }
  }
  let publishedHead: boolean | undefined;
  if (options.witnessHeads !== undefined) {
    publishedHead = options.witnessHeads.some((h) => h.treeSize === checkpoint.treeSize && h.rootHash === checkpoint.rootHash && h.kid === checkpoint.kid && h.signature === checkpoint.signature);
    if (!publishedHead) fail('ERR_CUSTODY_BROKEN', `the custody tree head of ${checkpoint.treeSize} records is not among those the witness published`);
  }
  return {
    ok: problems.length === 0,
    problems,
    predicate: { task: predicate.task, actions: predicate.actions ?? [], claims: predicate.claims ?? [] },
    keyids,
    provenRecords: proven,
    ...(publishedHead === undefined ? {} : { publishedHead }),
  };
}
