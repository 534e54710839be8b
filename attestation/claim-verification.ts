/**
 * One claim's independent check, end to end, as the `attestClaim` activity runs it after the
 * task committed: the verifier's own credential (verifier-credential.ts) for exactly what the
 * claim names (verifier-access.ts), means bound to the committed state (committed-state-means.ts),
 * the verdict (verify-claim.ts), a custody record of the verdict (kind `claim-verdict`), and for a
 * verified claim an in-toto Statement signed with Warden's key (claim-attestation.ts).
 *
 * Invariants:
 * - The agent's influence ends at the claim's declared parameters: the verifier never sees the
 *   agent's sandbox, overlay, outputs or credentials, and reaches only what the agent was granted.
 * - A verdict is recorded once: retried after a crash, the check returns the verdict already in
 *   custody (and signs it if verified) instead of checking again and perhaps deciding otherwise.
 * - Refuted and unverified claims are never signed.
 */
import { realpath } from 'node:fs/promises';
import * as path from 'node:path';
import { canonicalBytes } from '../custody/canonical-json';
import type { CustodyLedger } from '../custody/ledger';
import type { LedgerRecord } from '../custody/ledger-record';
import type { SharedCustodyLedger } from '../custody/shared-ledger';
import type { GrantSet } from '../identity/claims';
import type { CredentialStores } from '../identity/credential-stores';
import type { Keystore } from '../identity/keystore';
import { hashIntent } from '../identity/task-grant';
import { createCredentialVerifier } from '../identity/verify-credential';
import type { SandboxClient } from '../sandbox/sandbox-client';
import type { TaskResult } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { durationToMs } from '../task/duration';
import { attestClaim, claimCheckId, VERIFIER_VERSION, type AttestedRun } from './claim-attestation';
import { CLAIM_VERDICT_RECORD, type ClaimOutcome } from './claim-outcome';
import { ClaimSchema, claimProblems, describeClaim, normalizeClaim, type StructuredClaim } from './claim-schema';
import { committedStateMeans } from './committed-state-means';
import { DEFAULT_VERIFICATION_TIMEOUT } from './attestation-config';
import { sha256Hex } from './in-toto-statement';
import { verifierAccessOf, VerifierAccessRefused, type VerifierAccess } from './verifier-access';
import { issueVerifierCredential } from './verifier-credential';
import { verifyClaim, type ClaimCheck } from './verify-claim';
import { cutText } from '../cut-text';
import { wellFormedJson } from '../custody/well-formed-json';

export { CLAIM_VERDICT_RECORD };

/** What the activity is given by the workflow (all of it recorded in history; no secret). */
export interface AttestClaimInput {
  rootWorkflowId: string;
  rootRunId: string;
  /** The root task: resources, attestation settings, user and intent. */
  task: Task;
  /** Whether the task tree completed and committed; otherwise nothing is checked (all `unverified`). */
  committed: boolean;
  taskStatus: string;
  claimant: {
    workflowId: string;
    runId: string;
    agent: string;
    model: { id: string; version: string };
    /** The claimant's task grant (its granted hosts, databases, programs bound the verifier). */
    grantId?: string;
  };
  /** Position of the claim among the claimant's claims. */
  index: number;
  /** As the agent stated it (validated here). */
  claim: unknown;
  /** The claimant's part of the task tree as recorded (for `tool.called`), pruned to the claimed tool. */
  recorded?: Pick<TaskResult, 'workflowId' | 'steps' | 'children'>;
  /** Workspace paths the task's commit made real (a tests.pass predicate lists them: tests the agent changed show). */
  committedFiles?: string[];
}

export interface ClaimVerificationDeps {
  keystore: Keystore;
  stores: CredentialStores;
  /** State folder: scratch overlays of test re-runs live under `<stateDir>/attestation/`. */
  stateDir: string;
  /** Warden's folders and key files, never read for a claim. */
  protectedPaths: string[];
  protectedFiles: string[];
  /** The sandbox host, for user-defined verifiers. */
  sandbox?: SandboxClient;
  /** The custody ledger verdicts are recorded in (none: telemetry is off, nothing recorded). */
  ledger?: CustodyLedger | SharedCustodyLedger;
  now?: () => Date;
}

interface RecordedVerdict {
  check: ClaimCheck;
  verifiedAt: string;
  credential?: string;
}

function unverifiedCheck(claim: StructuredClaim, reason: string): ClaimCheck {
  return { claim, text: describeClaim(claim), verdict: 'unverified', reason, subjects: [] };
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'ERR_UNKNOWN';
}

/** The claim as Warden reads it; a malformed one is kept as its text (and reported `unverified`). */
function readClaim(raw: unknown): { claim: StructuredClaim; invalid?: string } {
  const parsed = ClaimSchema.safeParse(raw);
  if (parsed.success) return { claim: normalizeClaim(parsed.data) };
  const text = typeof raw === 'string' ? raw : cutText(JSON.stringify(raw) ?? String(raw), 500);
  return { claim: { kind: 'text', text: text === '' ? '(empty)' : cutText(text, 4096) }, invalid: `ERR_CLAIM_INVALID: ${claimProblems(raw).slice(0, 3).join('; ')}` };
}

/** Checks, records and (when verified) signs one claim. Never throws for the claim's sake. */
export async function verifyAndAttestClaim(deps: ClaimVerificationDeps, input: AttestClaimInput): Promise<ClaimOutcome> {
  const now = deps.now ?? (() => new Date());
  const { claim, invalid } = readClaim(input.claim);
  const claimant = input.claimant;
  const id = claimCheckId({ workflowId: claimant.workflowId, runId: claimant.runId }, input.index, { claim: invalid === undefined ? claim : (input.claim as StructuredClaim) });
  const recordKey = `${CLAIM_VERDICT_RECORD}:${input.rootRunId}:${id}`;
  const grant = claimant.grantId === undefined ? undefined : await deps.stores.grants.getGrant(claimant.grantId);
  const run: AttestedRun = {
    workflowId: claimant.workflowId,
    runId: claimant.runId,
    user: input.task.user,
    intentHash: grant?.claims.intent_hash ?? hashIntent(input.task.intent),
    agentId: grant?.claims.sub ?? `agent:${claimant.agent}@${claimant.workflowId}`,
    model: claimant.model,
    task: { workflowId: input.rootWorkflowId, runId: input.rootRunId },
  };

  // Retried: the verdict already recorded is the verdict.
  const existing = await deps.ledger?.recordByKey(recordKey);
  // A fresh verdict is made well-formed before it is recorded, signed and returned (one value for
  // all three): any text it holds (a verifier's failure, V8's messages quoting half a surrogate pair,
  // a claim's own text) would otherwise make canonical JSON refuse the record and keep the check out
  // of custody.
  const recorded: RecordedVerdict = existing !== undefined ? verdictOfRecord(existing, claim) : wellFormedJson(await check(deps, input, claim, invalid, grant?.claims.grants, id, now)).value;
  const record = existing ?? (await appendVerdict(deps, input, id, recordKey, recorded));
  const custody = record === undefined ? undefined : { seq: record.seq, hash: record.hash };
  const envelope = await attestClaim(recorded.check, run, recorded.verifiedAt, deps.keystore.byteSigner(), custody);
  return {
    id,
    workflowId: claimant.workflowId,
    agent: claimant.agent,
    index: input.index,
    claim: recorded.check.claim as Record<string, unknown>,
    text: recorded.check.text,
    verdict: recorded.check.verdict,
    reason: recorded.check.reason,
    ...(recorded.check.observed === undefined ? {} : { observed: recorded.check.observed }),
    subjects: recorded.check.subjects,
    ...(custody === undefined ? {} : { custody }),
    ...(envelope === undefined ? {} : { envelope }),
    verifier: { id: `warden/verifier/${recorded.check.claim.kind}`, version: VERIFIER_VERSION, ...(recorded.credential === undefined ? {} : { credential: recorded.credential }) },
    verifiedAt: recorded.verifiedAt,
  };
}

async function check(
  deps: ClaimVerificationDeps,
  input: AttestClaimInput,
  claim: StructuredClaim,
  invalid: string | undefined,
  agentGrants: GrantSet | undefined,
  id: string,
  now: () => Date,
): Promise<RecordedVerdict> {
  const at = () => now().toISOString();
  if (invalid !== undefined) return { check: unverifiedCheck(claim, invalid), verifiedAt: at() };
  if (!input.committed) {
    return { check: unverifiedCheck(claim, `the task ended ${input.taskStatus}: nothing was committed to check the claim against`), verifiedAt: at() };
  }
  if (claim.kind === 'text') return { check: await verifyClaim(claim, {}), verifiedAt: at() };
  if (agentGrants === undefined) return { check: unverifiedCheck(claim, `ERR_CREDENTIAL_GRANT_UNKNOWN: the grant of ${input.claimant.agent} is unknown to this worker (issued from another state folder; nothing was revoked)`), verifiedAt: at() };
  const task = input.task;
  let workspaceRoot: string | undefined;
  if (task.resources.workspace !== undefined) {
    try {
      workspaceRoot = await realpath(task.resources.workspace);
    } catch {
      return { check: unverifiedCheck(claim, `ERR_PATH_NOT_FOUND: the workspace ${task.resources.workspace} does not exist`), verifiedAt: at() };
    }
  }
  let access: VerifierAccess;
  try {
    access = verifierAccessOf(claim, agentGrants, task, input.claimant, workspaceRoot);
  } catch (error) {
    if (error instanceof VerifierAccessRefused) return { check: unverifiedCheck(claim, `${error.code}: ${error.message}`), verifiedAt: at() };
    throw error;
  }
  const timeoutMs = durationToMs(task.attestation?.timeout ?? DEFAULT_VERIFICATION_TIMEOUT);
  let credential: { token: string; jti: string; scope: readonly string[] };
  try {
    const minted = await issueVerifierCredential(deps.keystore, { access, claimId: id, user: task.user, intentHash: hashIntent(task.intent), ttlMs: timeoutMs });
    credential = { token: minted.token, jti: minted.claims.jti, scope: minted.claims.scope };
    // A user verifier's credential is checked (and used up) by the sandbox host; the others here, now.
    if (claim.kind !== 'custom') {
      const gate = createCredentialVerifier({ keys: deps.keystore, replayStore: deps.stores.replay, revocationStore: deps.stores.revocation });
      const verified = await gate.verify(minted.token, { tool: access.tool, requiredScope: access.scope });
      credential.scope = verified.claims.scope;
    }
  } catch (error) {
    return { check: unverifiedCheck(claim, `${codeOf(error)}: the verifier's credential was refused: ${(error as Error).message}`), verifiedAt: at() };
  }
  const means = committedStateMeans({
    task,
    access,
    verifiedScope: credential.scope,
    credentialToken: credential.token,
    workspaceRoot,
    protectedPaths: deps.protectedPaths,
    protectedFiles: deps.protectedFiles,
    scratchDir: path.join(deps.stateDir, 'attestation', 'runs'),
    timeoutMs,
    ...(deps.sandbox === undefined ? {} : { sandbox: deps.sandbox }),
  });
  if (input.recorded !== undefined) means.recorded = input.recorded;
  means.testCommands = task.attestation?.tests ?? [];
  const result = await verifyClaim(claim, means);
  if (claim.kind === 'tests.pass' && result.verdict !== 'unverified') {
    // What the tests ran on: files the task changed (an agent that edited the tests shows here).
    const changed = input.committedFiles ?? [];
    result.observed = { ...(result.observed as object), committedByTask: changed };
    // A green re-run of tests the agent itself edited proves less: the reason says so, not only `observed`.
    if (changed.length > 0) result.reason += `, on files of which the task changed ${changed.length}: ${changed.slice(0, 10).join(', ')}${changed.length > 10 ? ', …' : ''}`;
  }
  return { check: result, verifiedAt: at(), credential: credential.jti };
}

/** The verdict a custody record holds (a retried check returns it as it was decided). */
function verdictOfRecord(record: LedgerRecord, fallback: StructuredClaim): RecordedVerdict {
  const body = record.body as { claim?: StructuredClaim; text?: string; verdict?: ClaimCheck['verdict']; reason?: string; observed?: unknown; subjects?: ClaimCheck['subjects']; verifiedAt?: string; verifier?: { credential?: string } };
  return {
    check: {
      claim: body.claim ?? fallback,
      text: body.text ?? describeClaim(fallback),
      verdict: body.verdict ?? 'unverified',
      reason: body.reason ?? '(recorded without a reason)',
      ...(body.observed === undefined || body.observed === null ? {} : { observed: body.observed }),
      subjects: body.subjects ?? [],
    },
    verifiedAt: body.verifiedAt ?? record.appendedAt,
    ...(body.verifier?.credential === undefined ? {} : { credential: body.verifier.credential }),
  };
}

async function appendVerdict(deps: ClaimVerificationDeps, input: AttestClaimInput, id: string, recordKey: string, recorded: RecordedVerdict): Promise<LedgerRecord | undefined> {
  if (deps.ledger === undefined) return undefined;
  const body = {
    claimId: id,
    index: input.index,
    agent: input.claimant.agent,
    claim: recorded.check.claim,
    claimSha256: sha256Hex(canonicalBytes(recorded.check.claim)),
    text: recorded.check.text,
    verdict: recorded.check.verdict,
    reason: recorded.check.reason,
    observed: recorded.check.observed ?? null,
    subjects: recorded.check.subjects,
    verifier: { id: `warden/verifier/${recorded.check.claim.kind}`, version: VERIFIER_VERSION, ...(recorded.credential === undefined ? {} : { credential: recorded.credential }) },
    verifiedAt: recorded.verifiedAt,
  };
  const result = await deps.ledger.append({ recordKey, taskId: input.rootWorkflowId, workflowId: input.claimant.workflowId, kind: CLAIM_VERDICT_RECORD, body });
  return result.record;
}
