/**
 * Content-addressed blobs in the state database (`warden_blobs`): the claim-check store for
 * values too large for workflow history (tool outputs, overlay copies). History and custody carry
 * only the digest; any worker fetches the bytes by it.
 *
 * Invariants: a blob is stored under the SHA-256 of its bytes and never changes (a second `put`
 * of the same bytes is a no-op, by the primary key); `get` re-hashes what it read and refuses
 * bytes that do not match their digest (ERR_SNAPSHOT_CORRUPT), so a row edited in the database is
 * never handed out as the original; sizes are bounded.
 */
import { createHash } from 'node:crypto';
import { RecoveryError } from '../errors';
import type { SqlDatabase } from './sql-database';

/** Largest blob accepted (bytes); PostgreSQL's bytea limit is 1 GiB, this keeps a row well under it. */
export const MAX_BLOB_BYTES = 64 * 1024 * 1024;
const SHA256 = /^[0-9a-f]{64}$/;

export interface BlobRef {
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
  size: number;
}

export interface BlobStore {
  /** Stores `bytes` (if not already there) and returns their reference. @throws RangeError past MAX_BLOB_BYTES. */
  put(bytes: Uint8Array): Promise<BlobRef>;
  /** The bytes of `sha256`, checked; undefined when no such blob is stored. @throws RecoveryError ERR_SNAPSHOT_CORRUPT. */
  get(sha256: string): Promise<Buffer | undefined>;
  has(sha256: string): Promise<boolean>;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkDigest(sha256: string): void {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) throw new TypeError(`not a lower-case hex SHA-256: ${JSON.stringify(sha256)}`);
}

export function createBlobStore(db: SqlDatabase, now: () => Date = () => new Date()): BlobStore {
  return {
    async put(bytes) {
      if (bytes.byteLength > MAX_BLOB_BYTES) throw new RangeError(`a blob of ${bytes.byteLength} bytes is larger than ${MAX_BLOB_BYTES}`);
      const sha256 = sha256Hex(bytes);
      await db.run('INSERT INTO warden_blobs (sha256, size, content, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING', [
        sha256,
        bytes.byteLength,
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        now().toISOString(),
      ]);
      return { sha256, size: bytes.byteLength };
    },
    async get(sha256) {
      checkDigest(sha256);
      const row = await db.get<{ content: Buffer }>('SELECT content FROM warden_blobs WHERE sha256 = $1', [sha256]);
      if (row === undefined) return undefined;
      const content = Buffer.from(row.content);
      if (sha256Hex(content) !== sha256) {
        throw new RecoveryError('ERR_SNAPSHOT_CORRUPT', `blob ${sha256} in the state database does not match its digest`, { details: { blob: sha256 } });
      }
      return content;
    },
    async has(sha256) {
      checkDigest(sha256);
      return (await db.get('SELECT 1 AS present FROM warden_blobs WHERE sha256 = $1', [sha256])) !== undefined;
    },
  };
}
