/**
 * The shapes of the custody ledger (records, checkpoints, proofs) and the exact bytes that are
 * hashed and signed. Everything an offline verifier needs to recompute is defined here:
 *
 *   record hash     = SHA-256(canonical JSON of the record without `hash` and `signature`)
 *   record sig      = Ed25519 over the 32 raw bytes of the record hash
 *   Merkle leaf     = the 32 raw bytes of the record hash (leaf hash = SHA-256(0x00 || them))
 *   checkpoint sig  = Ed25519 over the canonical JSON of the checkpoint without `id`/`signature`,
 *                     with `type: "warden.custody.checkpoint/1"` so it can never be a record's bytes
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes, canonicalSha256, type JsonValue } from './canonical-json';
import { fromHex, leafHash } from './merkle';

/** `prevHash` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

const HexHash = z.string().regex(/^[0-9a-f]{64}$/, 'a 64-digit lower-case hex SHA-256');
const Signature = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'a base64url Ed25519 signature');
const Kid = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an RFC 7638 thumbprint');

const JsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema)]),
);

export const LedgerRecordSchema = z.strictObject({
  /** Position in the ledger, from 0, contiguous; also the record's Merkle leaf index. */
  seq: z.number().int().min(0),
  /** Caller-chosen unique key (spans: `traceId:spanId`); appending it again is a no-op. */
  recordKey: z.string().min(1),
  /** Root workflow id of the task the record belongs to. */
  taskId: z.string(),
  /** Workflow the record came from (a sub-agent's own id, or the task's). */
  workflowId: z.string(),
  /** `span` for exported spans; callers may append other kinds. */
  kind: z.string().min(1),
  body: JsonValueSchema,
  prevHash: HexHash,
  hash: HexHash,
  signature: Signature,
  kid: Kid,
  appendedAt: z.string(),
});
export type LedgerRecord = z.infer<typeof LedgerRecordSchema>;
export type UnsignedRecord = Omit<LedgerRecord, 'hash' | 'signature'>;

export const CHECKPOINT_REASONS = ['interval', 'task-end', 'manual'] as const;

export const CheckpointSchema = z.strictObject({
  id: z.number().int().min(1),
  /** Number of records the tree covers (records 0..treeSize-1). */
  treeSize: z.number().int().min(0),
  rootHash: HexHash,
  timestamp: z.string(),
  reason: z.enum(CHECKPOINT_REASONS),
  /** The task whose end asked for this checkpoint, if any. */
  taskId: z.string().nullable(),
  kid: Kid,
  signature: Signature,
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

const PublicJwkSchema = z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: Kid });

export const InclusionProofSchema = z.strictObject({
  format: z.literal('warden.custody.inclusion-proof/1'),
  record: LedgerRecordSchema,
  leafIndex: z.number().int().min(0),
  treeSize: z.number().int().min(1),
  /** RFC 9162 leaf hash of the record hash. */
  leafHash: HexHash,
  auditPath: z.array(HexHash),
  checkpoint: CheckpointSchema,
  /** The signer's public keys, for convenience: a verifier must trust them by other means. */
  publicKeys: z.array(PublicJwkSchema),
});
export type InclusionProof = z.infer<typeof InclusionProofSchema>;

export const ConsistencyProofSchema = z.strictObject({
  format: z.literal('warden.custody.consistency-proof/1'),
  size1: z.number().int().min(0),
  size2: z.number().int().min(0),
  root1: HexHash,
  root2: HexHash,
  proof: z.array(HexHash),
  /** Signed checkpoints at exactly these sizes, when the ledger has them. */
  checkpoint1: CheckpointSchema.nullable(),
  checkpoint2: CheckpointSchema.nullable(),
  publicKeys: z.array(PublicJwkSchema),
});
export type ConsistencyProof = z.infer<typeof ConsistencyProofSchema>;

/** The hashed part of a record, in the form that is canonicalised. */
function hashedFields(record: UnsignedRecord): Record<string, unknown> {
  return {
    seq: record.seq,
    recordKey: record.recordKey,
    taskId: record.taskId,
    workflowId: record.workflowId,
    kind: record.kind,
    body: record.body,
    prevHash: record.prevHash,
    kid: record.kid,
    appendedAt: record.appendedAt,
  };
}

/** Hex SHA-256 of the canonical record without `hash` and `signature`. */
export function recordHash(record: UnsignedRecord): string {
  return canonicalSha256(hashedFields(record));
}

/**
 * {@link recordHash} when the body is already canonical JSON text (what the ledger stores), without
 * parsing and re-serialising it. Members are written in canonical (sorted) order by hand.
 */
export function recordHashWithCanonicalBody(record: Omit<UnsignedRecord, 'body'>, canonicalBody: string): string {
  const s = (value: string) => JSON.stringify(value);
  const text =
    `{"appendedAt":${s(record.appendedAt)},"body":${canonicalBody},"kid":${s(record.kid)},"kind":${s(record.kind)},` +
    `"prevHash":${s(record.prevHash)},"recordKey":${s(record.recordKey)},"seq":${JSON.stringify(record.seq)},` +
    `"taskId":${s(record.taskId)},"workflowId":${s(record.workflowId)}}`;
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The bytes a record signature covers: the raw record hash. */
export function recordSigningInput(hash: string): Buffer {
  return fromHex(hash);
}

/** RFC 9162 leaf hash of a record, given its (hex) record hash. */
export function recordLeafHash(hash: string): Buffer {
  return leafHash(fromHex(hash));
}

/** The bytes a checkpoint signature covers. */
export function checkpointSigningInput(checkpoint: Omit<Checkpoint, 'id' | 'signature'>): Buffer {
  return canonicalBytes({
    type: 'warden.custody.checkpoint/1',
    treeSize: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
    timestamp: checkpoint.timestamp,
    reason: checkpoint.reason,
    taskId: checkpoint.taskId,
    kid: checkpoint.kid,
  });
}
