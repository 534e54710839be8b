/**
 * The file blob store makes a shard folder (`<aa>/`) only when a put finds it missing, not on every
 * put, nor once per store and shard (issue 17: worker CPU per guarded call: a data-flow step stores
 * several blobs). A shard folder removed
 * behind the store's back is made again by the next put into it, which still stores the blob
 * whole and readable; a shard that cannot be made is a clear ERR_SHARED_STORAGE / error, not a
 * lost blob. Real files in a temporary folder.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileBlobStore, sha256Hex, SYNC_PUT_MAX_BYTES } from '../../dataplane/blob-store';

/** Every mkdir of the store (small blobs: mkdirSync; large: the promise one), counted (the real one runs). */
const mkdirs = vi.hoisted(() => {
  const state = {
    count: 0,
    counted<F extends (...args: never[]) => unknown>(call: F): F {
      return ((...args: Parameters<F>) => {
        state.count += 1;
        return call(...args);
      }) as F;
    },
  };
  return state;
});
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const mkdirSync = mkdirs.counted(real.mkdirSync);
  return { ...real, mkdirSync, default: { ...real, mkdirSync } };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const mkdir = mkdirs.counted(real.mkdir);
  return { ...real, mkdir, default: { ...real, mkdir } };
});

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-blob-shards-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Both ways a put stores: small blobs with synchronous calls, larger ones through the thread pool. */
const SIZES = [
  ['small', ''],
  ['large', 'x'.repeat(SYNC_PUT_MAX_BYTES)],
] as const;

/** `count` different contents (each ending in `padding`) whose SHA-256 starts with the same two hex digits (one shard). */
function sameShard(count: number, padding = ''): { shard: string; contents: string[] } {
  const byShard = new Map<string, string[]>();
  for (let i = 0; ; i += 1) {
    const content = `blob ${i}${padding}`;
    const shard = sha256Hex(content).slice(0, 2);
    const list = byShard.get(shard) ?? [];
    list.push(content);
    byShard.set(shard, list);
    if (list.length === count) return { shard, contents: list };
  }
}

describe('FileBlobStore shard folders', () => {
  it.each(SIZES)('makes a shard folder once for several %s puts into it', async (_size, padding) => {
    mkdirs.count = 0;
    const store = new FileBlobStore(path.join(dir, 'blobs'));
    const { contents } = sameShard(3, padding);
    for (const content of contents) await store.put(content);
    expect(mkdirs.count).toBe(1);
    for (const content of contents) expect((await store.get(sha256Hex(content))).toString('utf8')).toBe(content);
  });

  it.each(SIZES)('makes no shard folder for a %s put into one that exists already (another store or process made it)', async (_size, padding) => {
    const blobs = path.join(dir, 'blobs');
    const { contents } = sameShard(2, padding);
    await new FileBlobStore(blobs).put(contents[0]!);
    mkdirs.count = 0;
    // A new store on the same folder (a worker started again): the shard is there, nothing to make.
    const stored = await new FileBlobStore(blobs).put(contents[1]!);
    expect(mkdirs.count).toBe(0);
    expect((await new FileBlobStore(blobs).get(stored.sha256)).toString('utf8')).toBe(contents[1]);
  });

  it.each(
    SIZES.flatMap(([size, padding]) =>
      [
        ['the shard folder', (blobs: string, shard: string) => fs.rmSync(path.join(blobs, shard), { recursive: true })] as const,
        ['the whole blobs folder', (blobs: string) => fs.rmSync(blobs, { recursive: true })] as const,
      ].map(([what, remove]) => [what, size, padding, remove] as const),
    ),
  )('%s removed after a put (%s blobs): the next put into that shard makes it again and stores the blob', async (_what, _size, padding, remove) => {
    const blobs = path.join(dir, 'blobs');
    const store = new FileBlobStore(blobs);
    const { shard, contents } = sameShard(2, padding);
    await store.put(contents[0]!);
    remove(blobs, shard);
    const stored = await store.put(contents[1]!);
    expect(stored).toEqual({ sha256: sha256Hex(contents[1]!), bytes: Buffer.byteLength(contents[1]!) });
    expect((await store.get(stored.sha256)).toString('utf8')).toBe(contents[1]);
    expect(fs.statSync(path.join(blobs, shard)).mode & 0o777).toBe(0o700);
    // No temporary file is left beside it.
    expect(fs.readdirSync(path.join(blobs, shard))).toEqual([stored.sha256]);
  });

  it.each(SIZES)('a shard that cannot be made again fails ERR_SHARED_STORAGE naming the blob (%s), and leaves no temporary file', async (_size, padding) => {
    const blobs = path.join(dir, 'blobs');
    const store = new FileBlobStore(blobs);
    const { shard, contents } = sameShard(2, padding);
    await store.put(contents[0]!);
    fs.rmSync(path.join(blobs, shard), { recursive: true });
    // A file where the shard folder should be: mkdir cannot make it.
    fs.writeFileSync(path.join(blobs, shard), 'not a folder');
    await expect(store.put(contents[1]!)).rejects.toMatchObject({ code: 'ERR_SHARED_STORAGE', message: expect.stringContaining(sha256Hex(contents[1]!)) });
    expect(fs.readdirSync(blobs)).toEqual([shard]);
  });
});
