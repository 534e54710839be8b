/**
 * References that stand in for values in workflow history: content hashes, claim checks (a value
 * kept in the blob store under its SHA-256), files a step wrote, archived steps of earlier runs.
 * A leaf module (zod only), so task-run.ts and data-flow.ts can both build on it.
 *
 * Plain zod and pure functions: workflow code imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';

/**
 * Temporal refuses a payload above 2 MiB (the server's default blob size limit) and terminates
 * the workflow whose command carries one. Warden keeps every value it puts in history under this
 * budget and fails the step with ERR_PAYLOAD_TOO_LARGE (running the saga) when it cannot.
 */
export const PAYLOAD_BUDGET_BYTES = 1536 * 1024;
/** Outputs (and model-proposed string arguments) larger than this go to the blob store. */
export const INLINE_VALUE_MAX_BYTES = 16 * 1024;
export type ClaimCheckRef = z.infer<typeof ClaimCheckRefSchema>;

export function isClaimCheckRef(value: unknown): value is ClaimCheckRef {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { $warden?: unknown }).$warden === 'claim-check' &&
    typeof (value as { sha256?: unknown }).sha256 === 'string' &&
    ClaimCheckRefSchema.safeParse(value).success
  );
}

/** True when `value` holds a claim check anywhere inside it. */
export function containsClaimCheck(value: unknown): boolean {
  if (isClaimCheckRef(value)) return true;
  if (Array.isArray(value)) return value.some(containsClaimCheck);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(containsClaimCheck);
  return false;
}
export type FileWrite = z.infer<typeof FileWriteSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('task/data-refs', () => {
  /** Lower-case hex SHA-256. */
  const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex SHA-256');
  /**
   * A value kept outside history: the JSON of `kind: json` values (canonical, RFC 8785) or the
   * UTF-8 of `kind: string` values is stored under its SHA-256; history and custody hold the digest.
   */
  const ClaimCheckRefSchema = z.strictObject({
    $warden: z.literal('claim-check'),
    sha256: Sha256Schema,
    bytes: z.number().int().min(0),
    kind: z.enum(['json', 'string']),
  });
  /**
   * One path a step changed in the task tree's overlay: its workspace-relative path and the
   * SHA-256 of its new content, or `deleted` (a program removed it: a whiteout) or `opaque` (a
   * program replaced a folder: an opaque folder hides the workspace's).
   */
  const FileWriteSchema = z.strictObject({ path: z.string().min(1), sha256: z.union([Sha256Schema, z.literal('deleted'), z.literal('opaque')]) });
  /** Earlier runs' steps and children, archived in the blob store when a run continued as new. */
  const StepArchiveSchema = z.strictObject({
    /** Head of the archive chain (each link names the one before it). */
    ref: Sha256Schema,
    steps: z.number().int().min(0),
    children: z.number().int().min(0),
  });
  return { Sha256Schema, ClaimCheckRefSchema, FileWriteSchema, StepArchiveSchema };
});

export const { Sha256Schema, ClaimCheckRefSchema, FileWriteSchema, StepArchiveSchema } = schemas;
export type StepArchive = z.infer<typeof StepArchiveSchema>;

/** Bytes of `value` as JSON (UTF-16 length is a close upper bound for ASCII-heavy payloads). */
export function jsonBytes(value: unknown): number {
  const text = JSON.stringify(value);
  if (text === undefined) return 0;
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 2 : 3;
  }
  return bytes;
}
