/**
 * Verification of a custody ledger, and proofs that can be checked without it.
 *
 * `verifyLedger` checks every record's hash and Ed25519 signature (against trusted public keys
 * from the key folder, never keys stored in the ledger), the hash chain and the contiguity of
 * seqs, then every checkpoint's signature and that its root is the Merkle tree head of the
 * records it covers (so records removed from the end after a checkpoint are caught). It names
 * the FIRST record that is wrong and how: changed, removed, inserted, reordered, bad-signature,
 * truncated. Records appended after the latest checkpoint can be cut off without trace; the
 * report says how many there are (`uncheckpointed`).
 */
import type { KeyObject } from 'node:crypto';
import { CustodyError } from '../errors';
import type { CustodyLedger, CustodyLedgerOptions, RecordRow } from './ledger';
import { LedgerReader, type LedgerRows } from './ledger-reader';
import {
  ConsistencyProofSchema,
  GENESIS_HASH,
  InclusionProofSchema,
  checkpointSigningInput,
  recordHash,
  recordHashWithCanonicalBody,
  recordLeafHash,
  type Checkpoint,
  type ConsistencyProof,
  type InclusionProof,
} from './ledger-record';
import { MerkleFrontier, consistencyProof as merkleConsistencyProof, fromHex, inclusionProof as merkleInclusionProof, merkleRoot, toHex, verifyConsistency, verifyInclusion } from './merkle';
import { loadTrustedKeys, publicJwk, publicKeyFromJwk, verifyBytes, type TrustedKeys } from './signing-key';

export const PROBLEM_KINDS = ['changed', 'removed', 'inserted', 'reordered', 'bad-signature', 'truncated'] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export interface LedgerProblem {
  /** The record (seq) at which the ledger stops being what was written. */
  seq: number;
  kind: ProblemKind;
  message: string;
  /** When a checkpoint revealed the problem. */
  checkpointId?: number;
}

export interface VerifyReport {
  ok: boolean;
  path: string;
  /** Records checked: all of them, or the task's (as their taskId says) with `taskId`. */
  records: number;
  totalRecords: number;
  checkpoints: number;
  latestCheckpoint: Pick<Checkpoint, 'id' | 'treeSize' | 'rootHash' | 'timestamp'> | null;
  /** Records after the latest checkpoint: a cut there would go unnoticed until the next one. */
  uncheckpointed: number;
  /** With published heads: how many there are, and how many records none of them covers yet. */
  publishedHeads?: number;
  unpublished?: number;
  taskId?: string;
  /** With `taskId`: whether the latest checkpoint covers every record of the task. */
  taskCheckpointed?: boolean;
  firstProblem?: LedgerProblem;
}

export interface VerifyOptions {
  /** Report on one task (root workflow id). The whole chain is still checked: a gap anywhere could hide the task's records. */
  taskId?: string;
  /** Folder of trusted `<kid>.pub.pem` keys; default `custody-keys/` next to the ledger. */
  keyDir?: string;
  /** Trusted keys by kid, instead of the key folder. */
  trustedKeys?: TrustedKeys;
  /** Signed checkpoints kept elsewhere (published, mailed, printed) the ledger must still match. */
  anchors?: readonly Checkpoint[];
  /**
   * The anchors are the published signed tree heads of a witness (checkpoint-witness.ts): the
   * report then says how many records no published head covers yet (`unpublished`).
   */
  published?: boolean;
}

/** A ledger file path, an open ledger, where to find one, or an open reader (e.g. a snapshot of the shared ledger). */
export type LedgerSource = string | CustodyLedger | Pick<CustodyLedgerOptions, 'stateDir' | 'path' | 'keyDir'> | LedgerRows;

function isReader(source: object): source is LedgerRows {
  return typeof (source as Partial<LedgerRows>).rows === 'function' && typeof (source as Partial<LedgerRows>).leafHashes === 'function';
}

function withReader<T>(source: LedgerSource, fn: (reader: LedgerRows) => T): T {
  // A reader handed in belongs to the caller: it is used, not closed.
  if (typeof source !== 'string' && isReader(source)) return fn(source);
  if (typeof source !== 'string' && (source as { shared?: unknown }).shared === true) {
    throw new TypeError('the shared custody ledger is read through a snapshot: verifyLedger(await loadLedgerSnapshot(db, keyDir))');
  }
  const reader =
    typeof source === 'string'
      ? LedgerReader.open(source)
      : 'checkpointEvery' in source
        ? LedgerReader.open({ path: source.path, keyDir: source.keyDir })
        : LedgerReader.open(source);
  try {
    return fn(reader);
  } finally {
    reader.close();
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function hashOfRow(row: RecordRow, seq: number = row.seq): string {
  return recordHashWithCanonicalBody(
    { seq, recordKey: row.record_key, taskId: row.task_id, workflowId: row.workflow_id, kind: row.kind, prevHash: row.prev_hash, kid: row.kid, appendedAt: row.appended_at },
    row.body,
  );
}

function signatureOk(row: RecordRow, keys: TrustedKeys): boolean {
  const key = keys.get(row.kid);
  return key !== undefined && HEX64.test(row.hash) && verifyBytes(key, fromHex(row.hash), row.signature);
}

function checkpointSignatureOk(checkpoint: Checkpoint, keys: TrustedKeys): boolean {
  const key = keys.get(checkpoint.kid);
  if (key === undefined) return false;
  try {
    return verifyBytes(key, checkpointSigningInput(checkpoint), checkpoint.signature);
  } catch {
    return false;
  }
}

interface Failure {
  row: RecordRow;
  next: RecordRow | undefined;
  position: number;
  expectedSeq: number;
  expectedPrev: string;
  selfOk: boolean;
  sigOk: boolean;
}

/** The seq a displaced record was signed at, if it is authentic at a nearby or predecessor-implied position. */
function originalSeq(row: RecordRow, hashIndex: Map<string, { position: number; seq: number }>): number | undefined {
  const candidates = new Set<number>();
  const pred = hashIndex.get(row.prev_hash);
  if (pred !== undefined) candidates.add(pred.seq + 1);
  for (let d = 1; d <= 16; d += 1) {
    candidates.add(row.seq + d);
    if (row.seq - d >= 0) candidates.add(row.seq - d);
  }
  candidates.delete(row.seq);
  for (const seq of candidates) if (hashOfRow(row, seq) === row.hash) return seq;
  return undefined;
}

function classify(failure: Failure, hashIndex: Map<string, { position: number; seq: number }>, reader: LedgerRows, keys: TrustedKeys): LedgerProblem {
  const { row, next, position, expectedSeq: e, expectedPrev: prev, selfOk, sigOk } = failure;
  const before = e === 0 ? 'the start of the ledger' : `record ${e - 1}`;
  // A copy of an earlier record.
  const first = hashIndex.get(row.hash);
  if (first !== undefined && first.position < position) {
    return { seq: e, kind: 'inserted', message: `record ${e} is a copy of record ${first.seq} (same hash) inserted into the ledger` };
  }
  const copied = selfOk && sigOk ? undefined : reader.copyOf(row);
  if (copied !== undefined) return { seq: e, kind: 'inserted', message: `record ${e} is a copy of record ${copied} (same content) inserted into the ledger` };
  // An authentic record that sits at the wrong seq.
  if (sigOk && !selfOk) {
    const original = originalSeq(row, hashIndex);
    if (original !== undefined) {
      const pred = hashIndex.get(row.prev_hash);
      if ((pred !== undefined && pred.position > position) || original < e) {
        return { seq: e, kind: 'reordered', message: `record ${e} holds the record signed as ${original}${pred !== undefined ? `, whose predecessor is stored as record ${pred.seq}` : ''}: records were reordered` };
      }
      const missing = original - e;
      return {
        seq: e,
        kind: 'removed',
        message: `${missing === 1 ? `record ${e} was removed` : `records ${e}..${original - 1} were removed`} and the records after renumbered (record ${e} holds the record signed as ${original})`,
      };
    }
  }
  // A record that the chain skips over.
  if (next !== undefined && next.prev_hash === prev) {
    return { seq: e, kind: 'inserted', message: `record ${e} was inserted: the record after it chains directly to ${before}` };
  }
  if (!selfOk) {
    return {
      seq: e,
      kind: 'changed',
      message: sigOk ? `record ${e} was changed: its content no longer matches its signed hash` : `record ${e} was changed: its stored hash matches neither its content nor its signature`,
    };
  }
  if (!sigOk) {
    return {
      seq: e,
      kind: 'bad-signature',
      message: keys.has(row.kid) ? `record ${e}'s signature does not verify (re-hashed or re-signed)` : `record ${e} is signed by key ${row.kid}, which is not trusted`,
    };
  }
  return { seq: e, kind: 'changed', message: `record ${e} does not chain to ${before} (its prevHash differs): the record before it was replaced` };
}

function trustedKeysFor(reader: LedgerRows, options: VerifyOptions): TrustedKeys {
  return options.trustedKeys ?? loadTrustedKeys(options.keyDir ?? reader.keyDir);
}

function verifyWith(reader: LedgerRows, options: VerifyOptions): VerifyReport {
  const keys = trustedKeysFor(reader, options);
  const checkpoints = reader.checkpoints();
  const latest = checkpoints.at(-1);
  const totalRecords = reader.count();
  const report: VerifyReport = {
    ok: true,
    path: reader.path,
    records: totalRecords,
    totalRecords,
    checkpoints: checkpoints.length,
    latestCheckpoint: latest === undefined ? null : { id: latest.id, treeSize: latest.treeSize, rootHash: latest.rootHash, timestamp: latest.timestamp },
    uncheckpointed: Math.max(0, totalRecords - (latest?.treeSize ?? 0)),
  };
  if (options.published === true) {
    const anchors = options.anchors ?? [];
    report.publishedHeads = anchors.length;
    report.unpublished = Math.max(0, totalRecords - anchors.reduce((max, a) => Math.max(max, a.treeSize), 0));
  }
  if (options.taskId !== undefined) {
    const { count, maxSeq } = reader.countForTask(options.taskId);
    report.taskId = options.taskId;
    report.records = count;
    report.taskCheckpointed = count > 0 && maxSeq !== null && latest !== undefined && maxSeq < latest.treeSize;
  }
  const fail = (problem: LedgerProblem): VerifyReport => ({ ...report, ok: false, firstProblem: problem });

  // Pass 1: where each stored hash first appears (to tell copies and moved records apart).
  const hashIndex = new Map<string, { position: number; seq: number }>();
  let position = 0;
  for (const row of reader.rows()) {
    if (!hashIndex.has(row.hash)) hashIndex.set(row.hash, { position, seq: row.seq });
    position += 1;
  }

  // Roots the accepted records give at every size a checkpoint or anchor claims.
  const anchors = options.anchors ?? [];
  const claimedSizes = new Set([...checkpoints, ...anchors].map((c) => c.treeSize));
  const roots = new Map<number, string>();
  const frontier = new MerkleFrontier();
  if (claimedSizes.has(0)) roots.set(0, toHex(frontier.root()));

  // Pass 2: walk the chain.
  let failure: Failure | undefined;
  let expectedSeq = 0;
  let expectedPrev = GENESIS_HASH;
  const iterator = reader.rows();
  try {
    let current = iterator.next();
    let next = iterator.next();
    position = 0;
    while (current.done !== true) {
      const row = current.value;
      if (row.seq > expectedSeq) {
        const last = row.seq - 1;
        iterator.return?.();
        return fail({
          seq: expectedSeq,
          kind: 'removed',
          message: `${last === expectedSeq ? `record ${expectedSeq} was removed` : `records ${expectedSeq}..${last} were removed`}: the ledger jumps from ${expectedSeq === 0 ? 'its start' : `record ${expectedSeq - 1}`} to record ${row.seq}`,
        });
      }
      if (row.seq < expectedSeq) {
        iterator.return?.();
        return fail({ seq: row.seq, kind: 'inserted', message: `a second record claims seq ${row.seq}: a record was inserted` });
      }
      const selfOk = HEX64.test(row.hash) && hashOfRow(row) === row.hash;
      const sigOk = signatureOk(row, keys);
      if (!(selfOk && sigOk && row.prev_hash === expectedPrev)) {
        failure = { row, next: next.done === true ? undefined : next.value, position, expectedSeq, expectedPrev, selfOk, sigOk };
        break;
      }
      frontier.append(recordLeafHash(row.hash));
      if (claimedSizes.has(frontier.size)) roots.set(frontier.size, toHex(frontier.root()));
      expectedSeq += 1;
      expectedPrev = row.hash;
      position += 1;
      current = next;
      next = current.done === true ? current : iterator.next();
    }
  } finally {
    iterator.return?.();
  }
  if (failure !== undefined) return fail(classify(failure, hashIndex, reader, keys));

  // Checkpoints (and anchors): signed by a trusted key, within the ledger, and matching its tree.
  const problems: LedgerProblem[] = [];
  const size = expectedSeq;
  const check = (checkpoint: Checkpoint, label: string) => {
    if (!checkpointSignatureOk(checkpoint, keys)) {
      problems.push({
        seq: Math.max(0, Math.min(checkpoint.treeSize, size) - 1),
        kind: 'bad-signature',
        message: `${label}'s signature does not verify${keys.has(checkpoint.kid) ? '' : ` (key ${checkpoint.kid} is not trusted)`}`,
        checkpointId: checkpoint.id,
      });
      return;
    }
    if (checkpoint.treeSize > size) {
      problems.push({
        seq: size,
        kind: 'truncated',
        message: `the ledger was truncated: ${label} signed ${checkpoint.treeSize} records but only ${size} remain (record ${size} onwards is gone)`,
        checkpointId: checkpoint.id,
      });
      return;
    }
    if (roots.get(checkpoint.treeSize) !== checkpoint.rootHash) {
      problems.push({
        seq: Math.max(0, checkpoint.treeSize - 1),
        kind: 'changed',
        message: `${label} (${checkpoint.treeSize} records) does not match the records: they were rewritten since it was signed`,
        checkpointId: checkpoint.id,
      });
    }
  };
  for (const checkpoint of checkpoints) check(checkpoint, `checkpoint #${checkpoint.id}`);
  for (const anchor of anchors) check(anchor, `anchor checkpoint #${anchor.id} (tree size ${anchor.treeSize})`);
  const firstProblem = problems.sort((a, b) => a.seq - b.seq)[0];
  if (firstProblem !== undefined) return fail(firstProblem);
  if (options.taskId !== undefined && report.records === 0) {
    throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `no custody records for task ${options.taskId} in ${reader.path}`, { details: { taskId: options.taskId, path: reader.path } });
  }
  return report;
}

/**
 * Verifies a ledger (see the module header for what is checked).
 * @throws CustodyError `ERR_CUSTODY_NOT_FOUND` when there is no ledger, or `taskId` has no records
 *   in an intact ledger. Tampering is reported, not thrown.
 */
export function verifyLedger(source: LedgerSource, options: VerifyOptions = {}): VerifyReport {
  return withReader(source, (reader) => verifyWith(reader, options));
}

/** {@link verifyLedger}, throwing `ERR_CUSTODY_BROKEN` (with the problem in `details`) when it fails. */
export function assertLedgerIntact(source: LedgerSource, options: VerifyOptions = {}): VerifyReport {
  const report = verifyLedger(source, options);
  if (!report.ok && report.firstProblem !== undefined) {
    throw new CustodyError('ERR_CUSTODY_BROKEN', `custody ledger ${report.path}: ${report.firstProblem.message}`, { details: { ...report.firstProblem, path: report.path } });
  }
  return report;
}

/**
 * An inclusion proof for record `seq` against a signed checkpoint (the latest by default, or the
 * latest of exactly `treeSize` records), verifiable offline with {@link verifyInclusionProof}.
 * @throws CustodyError `ERR_CUSTODY_NOT_FOUND` when the record or a covering checkpoint is
 *   missing, `ERR_CUSTODY_BROKEN` when the ledger no longer matches the checkpoint.
 */
export function inclusionProof(source: LedgerSource, seq: number, options: { treeSize?: number } = {}): InclusionProof {
  return withReader(source, (reader) => {
    const record = reader.record(seq);
    const checkpoint = options.treeSize === undefined ? reader.latestCheckpoint() : reader.checkpointAt(options.treeSize);
    if (checkpoint === undefined) {
      throw new CustodyError('ERR_CUSTODY_NOT_FOUND', options.treeSize === undefined ? `the custody ledger ${reader.path} has no checkpoint yet` : `no checkpoint of ${options.treeSize} records in ${reader.path}`);
    }
    if (seq >= checkpoint.treeSize) {
      throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `record ${seq} is not covered by checkpoint #${checkpoint.id} (${checkpoint.treeSize} records) yet; the next checkpoint will cover it`, {
        details: { seq, treeSize: checkpoint.treeSize },
      });
    }
    const leaves = reader.leafHashes(checkpoint.treeSize);
    if (toHex(merkleRoot(leaves)) !== checkpoint.rootHash) {
      throw new CustodyError('ERR_CUSTODY_BROKEN', `the custody ledger no longer matches checkpoint #${checkpoint.id}; run \`warden audit verify\``);
    }
    return {
      format: 'warden.custody.inclusion-proof/1',
      record,
      leafIndex: seq,
      treeSize: checkpoint.treeSize,
      leafHash: toHex(leaves[seq] as Buffer),
      auditPath: merkleInclusionProof(leaves, seq, checkpoint.treeSize).map(toHex),
      checkpoint,
      publicKeys: [...loadTrustedKeys(reader.keyDir).values()].map(publicJwk),
    };
  });
}

/**
 * A consistency proof between the ledger's first `size1` and first `size2` records (default: all),
 * with the signed checkpoints at those sizes when there are any.
 * @throws CustodyError `ERR_CUSTODY_NOT_FOUND` when the ledger has fewer than `size2` records.
 */
export function consistencyProof(source: LedgerSource, size1: number, size2?: number): ConsistencyProof {
  return withReader(source, (reader) => {
    const count = reader.count();
    const second = size2 ?? count;
    if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(second) || size1 < 0 || size1 > second) {
      throw new TypeError(`consistency proof: expected 0 <= size1 <= size2, got ${size1} and ${second}`);
    }
    if (second > count) throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `the custody ledger ${reader.path} holds ${count} records, not ${second}`, { details: { size2: second, count } });
    const leaves = reader.leafHashes(second);
    return {
      format: 'warden.custody.consistency-proof/1',
      size1,
      size2: second,
      root1: toHex(merkleRoot(leaves, size1)),
      root2: toHex(merkleRoot(leaves, second)),
      proof: merkleConsistencyProof(leaves, size1, second).map(toHex),
      checkpoint1: reader.checkpointAt(size1) ?? null,
      checkpoint2: reader.checkpointAt(second) ?? null,
      publicKeys: [...loadTrustedKeys(reader.keyDir).values()].map(publicJwk),
    };
  });
}

export interface ProofCheck {
  ok: boolean;
  /** What failed, for people; empty when `ok`. */
  problems: string[];
}

/** Trusted keys from JWKs (e.g. a proof's `publicKeys`, once you have decided to trust them). */
export function trustedKeysFromJwks(jwks: readonly { kty: string; crv: string; x: string }[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const jwk of jwks) {
    const key = publicKeyFromJwk(jwk);
    keys.set(publicJwk(key).kid, key);
  }
  return keys;
}

/**
 * Checks an inclusion proof offline: the record's hash and signature, its leaf's audit path to
 * the checkpoint root, and the checkpoint's signature, all against `trustedKeys`.
 */
export function verifyInclusionProof(proof: unknown, trustedKeys: TrustedKeys): ProofCheck {
  const parsed = InclusionProofSchema.safeParse(proof);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`) };
  const { record, checkpoint } = parsed.data;
  const problems: string[] = [];
  let hash: string | undefined;
  try {
    hash = recordHash(record);
  } catch (error) {
    problems.push(`record is not canonical JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (hash !== undefined && hash !== record.hash) problems.push(`record ${record.seq}'s content does not match its hash`);
  const recordKey = trustedKeys.get(record.kid);
  if (recordKey === undefined || !verifyBytes(recordKey, fromHex(record.hash), record.signature)) problems.push(`record ${record.seq}'s signature does not verify with a trusted key`);
  const leaf = recordLeafHash(record.hash);
  if (toHex(leaf) !== parsed.data.leafHash) problems.push('leafHash is not the RFC 9162 leaf hash of the record hash');
  if (parsed.data.leafIndex !== record.seq) problems.push('leafIndex is not the record seq');
  if (parsed.data.treeSize !== checkpoint.treeSize) problems.push("treeSize is not the checkpoint's");
  if (!verifyInclusion(leaf, parsed.data.leafIndex, parsed.data.treeSize, parsed.data.auditPath.map(fromHex), fromHex(checkpoint.rootHash))) {
    problems.push('the audit path does not lead to the checkpoint root');
  }
  if (!checkpointSignatureOk(checkpoint, trustedKeys)) problems.push(`checkpoint #${checkpoint.id}'s signature does not verify with a trusted key`);
  return { ok: problems.length === 0, problems };
}

/** Checks a consistency proof offline, and the signatures of the checkpoints it carries. */
export function verifyConsistencyProof(proof: unknown, trustedKeys: TrustedKeys): ProofCheck {
  const parsed = ConsistencyProofSchema.safeParse(proof);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`) };
  const p = parsed.data;
  const problems: string[] = [];
  if (!verifyConsistency(p.size1, p.size2, fromHex(p.root1), fromHex(p.root2), p.proof.map(fromHex))) {
    problems.push(`the tree of ${p.size1} records is not shown to be a prefix of the tree of ${p.size2}`);
  }
  for (const [checkpoint, size, root] of [
    [p.checkpoint1, p.size1, p.root1],
    [p.checkpoint2, p.size2, p.root2],
  ] as const) {
    if (checkpoint === null) continue;
    if (checkpoint.treeSize !== size || checkpoint.rootHash !== root) problems.push(`checkpoint #${checkpoint.id} is not the tree head of ${size} records given`);
    if (!checkpointSignatureOk(checkpoint, trustedKeys)) problems.push(`checkpoint #${checkpoint.id}'s signature does not verify with a trusted key`);
  }
  return { ok: problems.length === 0, problems };
}
