/**
 * The shared blob store: content-addressed, checked on every read, atomic when two workers store
 * the same blob at once, and honest about what is missing or altered.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CachedBlobStore, FileBlobStore, sha256Hex } from '../../dataplane/blob-store';
import { isErrorCode } from '../../errors';

async function store() {
  const dir = await mkdtemp(join(tmpdir(), 'warden-blobs-'));
  return { dir, blobs: new FileBlobStore(dir) };
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && isErrorCode(code) ? code : undefined;
}

describe('FileBlobStore', () => {
  it('names a blob by the SHA-256 of its bytes and gives the same bytes back', async () => {
    const { blobs } = await store();
    const stored = await blobs.put('hello');
    expect(stored).toEqual({ sha256: sha256Hex('hello'), bytes: 5 });
    expect((await blobs.get(stored.sha256)).toString()).toBe('hello');
    expect(await blobs.has(stored.sha256)).toBe(true);
    expect(await blobs.put(Buffer.from('hello'))).toEqual(stored);
  });

  it('stores the same blob from many writers at once without a torn or missing file', async () => {
    const { blobs } = await store();
    const content = Buffer.alloc(512 * 1024, 7);
    const results = await Promise.all(Array.from({ length: 16 }, () => blobs.put(content)));
    expect(new Set(results.map((r) => r.sha256)).size).toBe(1);
    expect((await blobs.get(results[0]!.sha256)).equals(content)).toBe(true);
  });

  it.each([
    ['missing', async (dir: string, sha: string) => void [dir, sha], 'ERR_BLOB_MISSING', 'a'.repeat(64)],
    [
      'altered on disk',
      async (dir: string, sha: string) => {
        const file = join(dir, sha.slice(0, 2), sha);
        await chmod(file, 0o644);
        await writeFile(file, 'tampered');
      },
      'ERR_BLOB_CORRUPT',
      undefined,
    ],
  ])('refuses a blob that is %s', async (_what, damage, code, name) => {
    const { dir, blobs } = await store();
    const { sha256 } = await blobs.put('original');
    await damage(dir, sha256);
    const error = await blobs.get(name ?? sha256).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(code);
  });

  it.each(['', 'ABC', '../etc/passwd', 'a'.repeat(63), 'g'.repeat(64)])('treats %j as misuse, not a name', async (name) => {
    const { blobs } = await store();
    await expect(blobs.get(name)).rejects.toThrow(TypeError);
  });
});

describe('CachedBlobStore', () => {
  it('serves repeated reads from memory and still checks new ones on disk', async () => {
    const { dir, blobs: inner } = await store();
    const blobs = new CachedBlobStore(inner, 1024 * 1024);
    const { sha256 } = await blobs.put('cached');
    // Even with the file gone, a cached blob (which can never change) is still served.
    await writeFile(join(dir, 'unrelated'), '');
    expect((await blobs.get(sha256)).toString()).toBe('cached');
    await expect(blobs.get('b'.repeat(64))).rejects.toMatchObject({ code: 'ERR_BLOB_MISSING' });
  });
});
