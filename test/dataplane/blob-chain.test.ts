/**
 * Hash-linked lists in the blob store: `appendAhead` names the new head at once (the head
 * `append` gives), stores the chunk in the background, and nothing in the process reads the head
 * as stored before it is: a read waits for the write, and a failed write forgets the head.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobChains } from '../../dataplane/blob-chain';
import { FileBlobStore, type BlobStore, type StoredBlob } from '../../dataplane/blob-store';
import { isErrorCode } from '../../errors';

async function fileStore(): Promise<FileBlobStore> {
  return new FileBlobStore(await mkdtemp(join(tmpdir(), 'warden-chains-')));
}

/** A store whose puts wait until `release` (or fail with `fail`), reads and lookups pass through. */
function heldStore(inner: BlobStore): { blobs: BlobStore; release: () => void; fail: (error: Error) => void; puts: () => number } {
  let open!: () => void;
  let refuse!: (error: Error) => void;
  const gate = new Promise<void>((resolve, reject) => {
    open = resolve;
    refuse = reject;
  });
  // Settled by the test on one path or the other; never left rejecting unobserved.
  gate.catch(() => undefined);
  let count = 0;
  const blobs: BlobStore = {
    description: 'held',
    async put(content): Promise<StoredBlob> {
      count += 1;
      await gate;
      return inner.put(content);
    },
    get: (sha256) => inner.get(sha256),
    has: (sha256) => inner.has(sha256),
  };
  return { blobs, release: open, fail: refuse, puts: () => count };
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && isErrorCode(code) ? code : undefined;
}

/** Whether `promise` has settled after the event loop has had a few turns. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('BlobChains.appendAhead', () => {
  it.each([
    ['a new list', null as null | 'first'],
    ['a list with a chunk before', 'first' as const],
  ])('names the head append names, and stores the same chunk (%s)', async (_name, before) => {
    const inner = await fileStore();
    const viaAppend = new BlobChains(inner);
    const prev = before === null ? null : await viaAppend.append('transcript', null, [{ step: 0 }]);
    const expected = await viaAppend.append('transcript', prev, [{ step: 1 }, 'two']);
    const store = await fileStore();
    const basePrev = before === null ? null : await new BlobChains(store).append('transcript', null, [{ step: 0 }]);
    const ahead = new BlobChains(store).appendAhead('transcript', basePrev, [{ step: 1 }, 'two']);
    expect(ahead.head).toBe(expected);
    await ahead.written;
    expect((await store.get(ahead.head)).equals(await inner.get(expected))).toBe(true);
    // Read back by a process that never saw the append (no cache): the whole list.
    expect(await new BlobChains(store).read('transcript', ahead.head)).toEqual([...(before === null ? [] : [{ step: 0 }]), { step: 1 }, 'two']);
  });

  it('holds a read of the head until its chunk is stored, when the list before it is not in memory', async () => {
    const inner = await fileStore();
    const first = await new BlobChains(inner).append('transcript', null, ['a']);
    const held = heldStore(inner);
    const chains = new BlobChains(held.blobs);
    const { head, written } = chains.appendAhead('transcript', first, ['b']);
    const read = chains.read('transcript', head);
    expect(await settledSoon(read)).toBe(false);
    expect(await inner.has(head)).toBe(false);
    held.release();
    await written;
    expect(await read).toEqual(['a', 'b']);
  });

  it('answers a read from memory at once when the list before it was read here', async () => {
    const inner = await fileStore();
    const first = await new BlobChains(inner).append('transcript', null, ['a']);
    const held = heldStore(inner);
    const chains = new BlobChains(held.blobs);
    expect(await chains.read('transcript', first)).toEqual(['a']);
    const { head, written } = chains.appendAhead('transcript', first, ['b']);
    expect(await chains.read('transcript', head)).toEqual(['a', 'b']);
    held.release();
    await written;
    expect(await inner.has(head)).toBe(true);
  });

  it('rejects `written` with the store\'s error and forgets the head, so a later read finds it missing', async () => {
    const inner = await fileStore();
    const held = heldStore(inner);
    const chains = new BlobChains(held.blobs);
    const { head, written } = chains.appendAhead('transcript', null, ['never stored']);
    const readDuring = chains.read('transcript', head);
    held.fail(new Error('disk full'));
    await expect(written).rejects.toThrow('disk full');
    // Read from memory before the failure was known (the caller would not hand the head on), or refused.
    await readDuring.catch(() => undefined);
    const after = await chains.read('transcript', head).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(codeOf(after)).toBe('ERR_BLOB_MISSING');
  });

  it('leaves no unhandled rejection when the caller stops before awaiting the write', async () => {
    const held = heldStore(await fileStore());
    const chains = new BlobChains(held.blobs);
    chains.appendAhead('transcript', null, ['dropped']);
    held.fail(new Error('gone'));
    // An unhandled rejection would fail this file (vitest reports it as an error of the run).
    for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
    expect(held.puts()).toBe(1);
  });
});
