/**
 * Open finding (pre-existing; kept by cb4f0cf/b4165ef/2527bd4, dataplane/blob-store.ts `put`): a put
 * treats any regular file under the blob's name with the blob's SIZE as the blob, and returns
 * success without writing. A damaged blob of the right length (bytes flipped on disk, or the
 * zero-filled file a crash can leave: the temporary file is renamed into place without an fsync,
 * and file systems such as XFS may show a renamed-but-unflushed file at its full size, filled with
 * zeros) is therefore never repaired: every later put of the very same bytes answers "stored",
 * `has` answers true, and every `get` fails ERR_BLOB_CORRUPT for good. The data flow then cannot
 * store its task, transcript chunk or claim-checked output again under that name (the digest is
 * fixed by the content), so the task keeps failing on a blob its worker just "stored".
 *
 * Both ways of storing are affected: the synchronous one (up to SYNC_PUT_MAX_BYTES, 64 KiB) and
 * the thread-pool one (above), each case below at its boundary.
 *
 * Severity: medium (integrity holds, get never returns wrong bytes; availability of a task's data
 * is lost for good after one torn or damaged write, and put's answer is false).
 *
 * Suggested fix: when a file of the right size exists, read and hash it (cheap for small blobs;
 * for large ones at least when a get found it corrupt) and replace it (temporary file + rename)
 * when it does not match; fsync the temporary file (and the shard folder after the rename) so a
 * crash cannot leave a full-size file of other bytes under the name.
 *
 * Real parts: the real FileBlobStore on a temporary folder.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlobStore, SYNC_PUT_MAX_BYTES } from '../../../dataplane/blob-store';

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
      it(`${what}, ${damage}`, async () => {
        const dir = await mkdtemp(join(tmpdir(), 'warden-blob-repair-'));
        const blobs = new FileBlobStore(dir);
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
