/**
 * Regression (issue 17, was test/attacks/open/blob-put-trusts-size-of-corrupt-blob.test.ts):
 * `FileBlobStore.put` took any regular file under the blob's name with the blob's SIZE as the blob.
 * A damaged blob of the right length (bytes flipped on disk, or the zero-filled file a crash can
 * leave when a temporary file is renamed into place without an fsync) was never repaired: every
 * later put of the same bytes answered "stored" and every `get` failed ERR_BLOB_CORRUPT for good.
 * Now put hashes a same-size file and replaces it atomically when it does not match; with
 * `fsync: true` it also fsyncs the temporary file before the rename and the shard folder after
 * (a power cut then leaves no damaged blob); both settings are run here.
 *
 * Both ways of storing, each at its boundary: the synchronous one (up to SYNC_PUT_MAX_BYTES,
 * 64 KiB) and the thread-pool one (above); damage: zero-filled at full size, one byte flipped.
 *
 * Real parts: the real FileBlobStore on a temporary folder.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlobStore, SYNC_PUT_MAX_BYTES } from '../../dataplane/blob-store';

const SIZES = [
  ['a small blob (synchronous put)', 1000],
  ['a blob of exactly 64 KiB (synchronous put)', SYNC_PUT_MAX_BYTES],
  ['a blob of 64 KiB + 1 (thread-pool put)', SYNC_PUT_MAX_BYTES + 1],
] as const;

const DAMAGE = [
  ['zero-filled at full size (a crash before the data reached the disk)', (bytes: Buffer) => Buffer.alloc(bytes.length)],
  ['one byte flipped', (bytes: Buffer) => Buffer.concat([bytes.subarray(0, 10), Buffer.from([bytes[10]! ^ 0xff]), bytes.subarray(11)])],
] as const;

describe('a put of the same bytes repairs a damaged blob of the same size', () => {
  for (const [what, size] of SIZES) {
    for (const [damage, damaged] of DAMAGE) {
      it.each([false, true])(`${what}, ${damage} (fsync %s)`, async (fsync) => {
        const dir = await mkdtemp(join(tmpdir(), 'warden-blob-repair-'));
        const blobs = new FileBlobStore(dir, { fsync });
        const content = Buffer.alloc(size, 'warden blob ');
        const { sha256 } = await blobs.put(content);
        const file = join(dir, sha256.slice(0, 2), sha256);
        await chmod(file, 0o644);
        await writeFile(file, damaged(content));

        // The writer stores the same bytes again (a retried activity, another worker).
        expect(await blobs.put(content)).toEqual({ sha256, bytes: size });
        // What put just reported stored must be readable.
        const got = await blobs.get(sha256).then(
          (bytes) => bytes.equals(content),
          (error: unknown) => (error as { code?: string }).code,
        );
        expect(got).toBe(true);
      });
    }
  }
});
