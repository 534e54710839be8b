/**
 * A model turn folded into a tool call (issue 17: the guarded step's wall time): the transcript's
 * new chunk is stored while the driver and the work `alongside` (the policy decision ahead) run,
 * and the turn comes back only once the chunk is stored. A chunk that cannot be stored makes the
 * turn a failure, as it always did, and drops what ran alongside. Real parts: a file blob store
 * and the scripted driver; the store's puts are held or failed by the test.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../../activities/index';
import { proposeFoldedTurn, proposeFoldedTurnWith } from '../../activities/next-turn';
import { BlobChains } from '../../dataplane/blob-chain';
import { FileBlobStore, sha256Hex, type BlobStore, type StoredBlob } from '../../dataplane/blob-store';
import { parseTask } from '../../task/load-task-file';
import type { StepRecord } from '../../task/task-run';
import type { Task } from '../../task/task-schema';

let task: Task;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warden-folded-'));
  task = parseTask(
    {
      user: 'alice@example.com',
      intent: 'add numbers',
      agent: { name: 'adder', model: { driver: 'scripted', script: [{ tool: 'add', args: { a: 1, b: 1 } }, { tool: 'add', args: { a: 2, b: 1 } }, { final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
    },
    'folded-turn-test',
    dir,
  );
});

/** A file store whose puts wait for `release` or fail with `fail`; every put is counted when it is asked for. */
async function heldStore(): Promise<{ blobs: BlobStore; inner: FileBlobStore; release: () => void; fail: (error: Error) => void; asked: string[] }> {
  const inner = new FileBlobStore(await mkdtemp(join(tmpdir(), 'warden-folded-blobs-')));
  let open!: () => void;
  let refuse!: (error: Error) => void;
  const gate = new Promise<void>((resolve, reject) => {
    open = resolve;
    refuse = reject;
  });
  gate.catch(() => undefined);
  const asked: string[] = [];
  const blobs: BlobStore = {
    description: 'held',
    async put(content): Promise<StoredBlob> {
      asked.push(sha256Hex(content));
      await gate;
      return inner.put(content);
    },
    get: (sha256) => inner.get(sha256),
    has: (sha256) => inner.has(sha256),
  };
  return { blobs, inner, release: open, fail: refuse, asked };
}

function depsOf(blobs: BlobStore): ActivityDeps {
  return { dataPlane: { blobs, chains: new BlobChains(blobs) } } as unknown as ActivityDeps;
}

const done: StepRecord = { index: 0, turn: 0, kind: 'tool', tool: 'add', args: { a: 1, b: 1 }, decision: 'allow', reason: 'granted', executed: true, output: 2 };
const input = () => ({ workflowId: 'w-folded', task, taskRef: 'a'.repeat(64), turn: 1, transcript: { ref: null, pending: [done] } });

describe('a folded turn stores its transcript chunk alongside', () => {
  it('runs the work alongside while the chunk is written, and answers only once it is stored', async () => {
    const store = await heldStore();
    let sawTurn: unknown;
    let storedWhenAlongsideRan: boolean | undefined;
    const answer = proposeFoldedTurnWith(depsOf(store.blobs), input(), async (proposed) => {
      sawTurn = proposed.turn.actions[0];
      storedWhenAlongsideRan = await store.inner.has(proposed.transcriptRef!);
      // The chunk is stored only after this work has seen the turn.
      store.release();
      return 'decided';
    });
    const { next, alongside } = await answer;
    expect(storedWhenAlongsideRan).toBe(false);
    expect(sawTurn).toMatchObject({ type: 'tool', tool: 'add', args: { a: 2, b: 1 } });
    expect(alongside).toBe('decided');
    expect(next).toMatchObject({ turn: { actions: [{ tool: 'add' }] } });
    const ref = (next as { transcriptRef: string }).transcriptRef;
    expect(store.asked).toContain(ref);
    expect(await store.inner.has(ref)).toBe(true);
    // Another worker reads the list the head names.
    expect(await new BlobChains(store.inner).read('transcript', ref)).toEqual([done]);
  });

  it('makes the turn a failure when the chunk cannot be stored, and drops the work alongside', async () => {
    const store = await heldStore();
    let ran = false;
    const { next, alongside } = await proposeFoldedTurnWith(depsOf(store.blobs), input(), async () => {
      ran = true;
      store.fail(Object.assign(new Error('the shared folder is full'), { code: 'ENOSPC' }));
      return 'decided';
    });
    expect(ran).toBe(true);
    expect(alongside).toBeUndefined();
    expect(next).toMatchObject({ error: { message: expect.stringContaining('the shared folder is full') } });
  });

  it('fails without alongside work as before: the write failing makes the turn an error', async () => {
    const store = await heldStore();
    store.fail(new Error('read-only file system'));
    expect(await proposeFoldedTurn(depsOf(store.blobs), input())).toMatchObject({ error: { message: expect.stringContaining('read-only file system') } });
  });

  it('rejects with what the work alongside threw, once the chunk is stored', async () => {
    const store = await heldStore();
    const answer = proposeFoldedTurnWith(depsOf(store.blobs), input(), async () => {
      store.release();
      throw new TypeError('policy state of the wrong shape');
    });
    await expect(answer).rejects.toThrow('policy state of the wrong shape');
    expect(await store.inner.has(store.asked[0]!)).toBe(true);
  });
});
