/**
 * The claim check pattern for values too large to sit in workflow history: the value goes to the
 * blob store under its SHA-256 and history holds a small reference (`ClaimCheckRef`) instead.
 * JSON values are stored as their canonical JSON (RFC 8785), so the digest in history equals the
 * `warden.tool.output.sha256` a custody record carries for the same output.
 *
 * Invariant: resolving a reference returns exactly the value that was checked in (the blob is
 * verified against its name), or fails with ERR_BLOB_MISSING / ERR_BLOB_CORRUPT; nothing is
 * silently replaced by a default.
 */
import { canonicalBytes } from '../custody/canonical-json';
import { DataPlaneError } from '../errors';
import { containsClaimCheck, INLINE_VALUE_MAX_BYTES, isClaimCheckRef, type ClaimCheckRef } from '../task/data-refs';
import { sha256Hex, type BlobStore } from './blob-store';

/**
 * `value` itself when its canonical JSON is at most `maxInline` bytes, else a reference to it
 * (kind `json`). Also returns the SHA-256 of the canonical JSON (for custody), computed once.
 */
export async function claimCheckJson(blobs: BlobStore, value: unknown, maxInline = INLINE_VALUE_MAX_BYTES): Promise<{ value: unknown; sha256: string }> {
  const bytes = canonicalBytes(value === undefined ? null : value);
  if (bytes.byteLength <= maxInline) return { value, sha256: sha256Hex(bytes) };
  const stored = await blobs.put(bytes);
  const ref: ClaimCheckRef = { $warden: 'claim-check', sha256: stored.sha256, bytes: stored.bytes, kind: 'json' };
  return { value: ref, sha256: stored.sha256 };
}

/**
 * A copy of `value` in which every string longer than `maxInline` UTF-8 bytes is a reference
 * (kind `string`); everything else (keys, numbers, short strings) stays as it is, so checks that
 * read paths, hosts or database names still see them.
 */
export async function claimCheckStrings(blobs: BlobStore, value: unknown, maxInline = INLINE_VALUE_MAX_BYTES): Promise<unknown> {
  if (typeof value === 'string') {
    if (value.length <= maxInline / 4 || Buffer.byteLength(value, 'utf8') <= maxInline) return value;
    const stored = await blobs.put(Buffer.from(value, 'utf8'));
    const ref: ClaimCheckRef = { $warden: 'claim-check', sha256: stored.sha256, bytes: stored.bytes, kind: 'string' };
    return ref;
  }
  if (Array.isArray(value)) return Promise.all(value.map((v) => claimCheckStrings(blobs, v, maxInline)));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = await claimCheckStrings(blobs, v, maxInline);
    return out;
  }
  return value;
}

/** `value` with every claim check inside it replaced by the value it stands for (`value` itself when it holds none). */
export async function resolveClaimChecks(blobs: BlobStore, value: unknown): Promise<unknown> {
  return containsClaimCheck(value) ? resolveDeep(blobs, value) : value;
}

async function resolveDeep(blobs: BlobStore, value: unknown): Promise<unknown> {
  if (isClaimCheckRef(value)) {
    const content = await blobs.get(value.sha256);
    return value.kind === 'string' ? content.toString('utf8') : (JSON.parse(content.toString('utf8')) as unknown);
  }
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolveDeep(blobs, v)));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = await resolveDeep(blobs, v);
    return out;
  }
  return value;
}

/**
 * Refuses a value from outside Warden (a model's proposed arguments, a tool's output) that holds
 * an object shaped like a claim-check reference. Only Warden writes references, and every place
 * that resolves them trusts them: a forged one would hand the tool, the model or the result the
 * blob of any digest it names (another task's output, read from its history or custody).
 *
 * @throws DataPlaneError ERR_CLAIM_CHECK_FORGED, naming `where`
 */
export function refuseForgedClaimChecks(value: unknown, where: string): void {
  if (containsClaimCheck(value)) {
    throw new DataPlaneError('ERR_CLAIM_CHECK_FORGED', `${where} holds a claim-check reference ({"$warden": "claim-check", ...}); only Warden writes those`, { details: { where } });
  }
}
