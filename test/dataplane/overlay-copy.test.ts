/**
 * The overlay's shared copy and the commit's proof: what a call wrote is reported the same way on
 * every attempt, a commit is refused when the overlay is gone or differs from what the steps
 * wrote, and a worker taking a task over rebuilds the overlay only from a copy that holds every
 * write.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlobStore, sha256Hex } from '../../dataplane/blob-store';
import { beginOverlayCall, rebuildOverlay, syncOverlayCopy, verifyOverlay } from '../../dataplane/overlay-copy';
import { FilePlacementStore } from '../../dataplane/placement-store';
import { overlayPathsOf } from '../../recovery/recovery-paths';
import { openOverlay } from '../../recovery/workspace-overlay';

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'warden-overlay-copy-'));
  const workspace = join(root, 'workspace');
  await mkdir(workspace);
  const shared = join(root, 'shared');
  const stateA = join(root, 'state-a');
  const stateB = join(root, 'state-b');
  const blobs = new FileBlobStore(join(shared, 'blobs'));
  const placements = new FilePlacementStore(shared);
  const taskKey = 'task-1';
  const upper = (await openOverlay({ stateDir: stateA, taskKey, workspace })).upper;
  /** What a tool writing into the overlay does. */
  const write = async (path: string, content: string) => {
    await mkdir(join(upper, path, '..'), { recursive: true });
    await writeFile(join(upper, path), content);
  };
  const call = async (callId: string, effect: () => Promise<void>) => {
    await beginOverlayCall({ taskKey, callId, workspace, workerId: 'a', placements });
    await effect();
    return syncOverlayCopy({ stateDir: stateA, taskKey, callId, workspace, workerId: 'a', blobs, placements });
  };
  return { workspace, stateA, stateB, blobs, placements, taskKey, upper, write, call };
}

const sha = (text: string) => sha256Hex(text);

describe('syncOverlayCopy', () => {
  it('reports what each call wrote, and the same again when a call is retried', async () => {
    const t = await setup();
    expect(await t.call('wf:0', () => t.write('a.txt', 'one'))).toEqual([{ path: 'a.txt', sha256: sha('one') }]);
    expect(await t.call('wf:1', async () => undefined)).toEqual([]);
    // A retry of wf:2 after its first attempt wrote and failed reports the write again.
    expect(await t.call('wf:2', () => t.write('dir/b.txt', 'two'))).toEqual([{ path: 'dir/b.txt', sha256: sha('two') }]);
    expect(await t.call('wf:2', () => t.write('dir/b.txt', 'two'))).toEqual([{ path: 'dir/b.txt', sha256: sha('two') }]);
    expect(await t.call('wf:3', () => t.write('a.txt', 'one again'))).toEqual([{ path: 'a.txt', sha256: sha('one again') }]);
    expect((await t.placements.loadOverlayCopy(t.taskKey))?.files).toEqual({ 'a.txt': sha('one again'), 'dir/b.txt': sha('two') });
  });
});

describe('verifyOverlay (before a commit)', () => {
  const writes = [
    { path: 'a.txt', sha256: sha('old') },
    { path: 'a.txt', sha256: sha('one') },
    { path: 'b.txt', sha256: sha('two') },
  ];

  it('accepts an overlay holding exactly the latest content of every written file', async () => {
    const t = await setup();
    await t.write('a.txt', 'one');
    await t.write('b.txt', 'two');
    await expect(verifyOverlay({ stateDir: t.stateA, taskKey: t.taskKey, expected: writes, workerId: 'a' })).resolves.toBeUndefined();
  });

  it.each([
    ['the overlay is gone', async (t: Awaited<ReturnType<typeof setup>>) => rm(overlayPathsOf(t.stateA, t.taskKey).dir, { recursive: true }), 'ERR_OVERLAY_MISSING'],
    ['a written file is gone', async (t: Awaited<ReturnType<typeof setup>>) => rm(join(t.upper, 'b.txt')), 'ERR_OVERLAY_MISSING'],
    ['a file changed after it was written', async (t: Awaited<ReturnType<typeof setup>>) => t.write('a.txt', 'tampered'), 'ERR_COMMIT_MISMATCH'],
    ['a file no step wrote is there', async (t: Awaited<ReturnType<typeof setup>>) => t.write('smuggled.txt', 'x'), 'ERR_COMMIT_MISMATCH'],
  ])('refuses when %s', async (_what, damage, code) => {
    const t = await setup();
    await t.write('a.txt', 'one');
    await t.write('b.txt', 'two');
    await damage(t);
    await expect(verifyOverlay({ stateDir: t.stateA, taskKey: t.taskKey, expected: writes, workerId: 'a' })).rejects.toMatchObject({ code });
  });

  it('accepts an absent overlay when nothing was written', async () => {
    const t = await setup();
    await rm(overlayPathsOf(t.stateA, t.taskKey).dir, { recursive: true });
    await expect(verifyOverlay({ stateDir: t.stateA, taskKey: t.taskKey, expected: [], workerId: 'a' })).resolves.toBeUndefined();
  });
});

describe('rebuildOverlay (a worker taking a task over)', () => {
  it('puts the overlay back on another worker from the shared copy', async () => {
    const t = await setup();
    const writes = [...(await t.call('wf:0', () => t.write('a.txt', 'one'))), ...(await t.call('wf:1', () => t.write('deep/b.txt', 'two')))];
    expect(await rebuildOverlay({ stateDir: t.stateB, taskKey: t.taskKey, workspace: t.workspace, expected: writes, blobs: t.blobs, placements: t.placements })).toEqual({ restored: 2 });
    const upperB = overlayPathsOf(t.stateB, t.taskKey).upper;
    expect(await readFile(join(upperB, 'deep/b.txt'), 'utf8')).toBe('two');
    await expect(verifyOverlay({ stateDir: t.stateB, taskKey: t.taskKey, expected: writes, workerId: 'b' })).resolves.toBeUndefined();
  });

  it('refuses a copy that lacks a write the workflow knows of, and a missing copy', async () => {
    const t = await setup();
    const writes = await t.call('wf:0', () => t.write('a.txt', 'one'));
    const later = [...writes, { path: 'c.txt', sha256: sha('never synced') }];
    await expect(rebuildOverlay({ stateDir: t.stateB, taskKey: t.taskKey, workspace: t.workspace, expected: later, blobs: t.blobs, placements: t.placements })).rejects.toMatchObject({ code: 'ERR_OVERLAY_MISSING' });
    await t.placements.dropOverlayCopy(t.taskKey);
    await expect(rebuildOverlay({ stateDir: t.stateB, taskKey: t.taskKey, workspace: t.workspace, expected: writes, blobs: t.blobs, placements: t.placements })).rejects.toMatchObject({ code: 'ERR_OVERLAY_MISSING' });
    // Nothing written: nothing to rebuild, no copy needed.
    await expect(rebuildOverlay({ stateDir: t.stateB, taskKey: t.taskKey, workspace: t.workspace, expected: [], blobs: t.blobs, placements: t.placements })).resolves.toEqual({ restored: 0 });
  });

  it('refuses a copy made on a workspace at another path (not the same shared mount)', async () => {
    const t = await setup();
    const writes = await t.call('wf:0', () => t.write('a.txt', 'one'));
    const elsewhere = join(t.workspace, '..', 'other-mount');
    await mkdir(elsewhere);
    await expect(rebuildOverlay({ stateDir: t.stateB, taskKey: t.taskKey, workspace: elsewhere, expected: writes, blobs: t.blobs, placements: t.placements })).rejects.toMatchObject({ code: 'ERR_SHARED_STORAGE' });
  });
});
