/**
 * Deletions made by programs in the OS sandbox: the kernel overlay records them in the task's
 * upper folder as whiteouts and opaque folders. Every later reader (the fs capability), the
 * commit and the rollback must see them as deletions, as a real program run produced them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openOverlay, commitOverlay } from '../../recovery/workspace-overlay';
import { rollbackTask } from '../../recovery/workspace-rollback';
import { readUpperLayer } from '../../recovery/overlay-layer';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';
import { runSandboxed } from '../../sandbox/os/run-sandboxed';
import { codeOf, makeTempDir, treeOf, writeTree } from './recovery-test-kit';

const LIMITS = { wallTimeMs: 20_000, cpuTimeMs: 10_000, memoryMb: 256, maxProcesses: 32 };

async function setUp(script: string) {
  const workspace = makeTempDir('del-ws');
  const stateDir = makeTempDir('del-state');
  writeTree(workspace, {
    'keep.txt': 'keep',
    'gone.txt': 'gone',
    'old/a.txt': 'a',
    'old/deep/b.txt': 'b',
    'rebuilt/stale.txt': 'stale',
    'rebuilt/also-stale.txt': 'stale too',
  });
  const taskKey = 'task-del';
  const overlay = await openOverlay({ stateDir, taskKey, workspace });
  const run = await runSandboxed({ command: 'sh', args: ['-c', script], workspace: { mode: 'overlay', root: workspace, overlayDir: overlay.dir }, limits: LIMITS });
  expect(run.exitCode, run.stderr).toBe(0);
  return { workspace, stateDir, taskKey, overlay };
}

const SCRIPT = 'rm gone.txt && rm -r old && rm -r rebuilt && mkdir rebuilt && echo fresh > rebuilt/new.txt && echo changed > keep.txt';

describe('deletions through the kernel overlay', () => {
  it('are recorded as whiteouts and opaque folders', async () => {
    const { overlay } = await setUp(SCRIPT);
    const layer = readUpperLayer(overlay.upper);
    expect(layer.files).toEqual(['keep.txt', 'rebuilt/new.txt']);
    expect(layer.deleted).toEqual(['gone.txt', 'old']);
    expect(layer.opaque).toEqual(['rebuilt']);
  });

  it('are seen by the fs capability: deleted files are gone, an opaque folder hides the old one', async () => {
    const { workspace, overlay } = await setUp(SCRIPT);
    const fsCap = createFsCapability({ root: workspace, overlay: overlay.upper, read: true, write: true, list: true });
    expect(await codeOf(() => fsCap.read('gone.txt'))).toBe('ERR_PATH_NOT_FOUND');
    expect(await codeOf(() => fsCap.read('old/deep/b.txt'))).toBe('ERR_PATH_NOT_FOUND');
    expect(await codeOf(() => fsCap.read('rebuilt/stale.txt'))).toBe('ERR_PATH_NOT_FOUND');
    expect(fsCap.read('rebuilt/new.txt')).toBe('fresh\n');
    expect(fsCap.list('.').map((e) => e.name)).toEqual(['keep.txt', 'rebuilt']);
    expect(fsCap.list('rebuilt').map((e) => e.name)).toEqual(['new.txt']);
    expect(await codeOf(() => fsCap.list('old'))).toBe('ERR_PATH_NOT_FOUND');
  });

  it('can be written over by the fs capability, which brings back only what it writes', async () => {
    const { workspace, overlay } = await setUp(SCRIPT);
    const fsCap = createFsCapability({ root: workspace, overlay: overlay.upper, read: true, write: true, list: true });
    fsCap.write('gone.txt', 'back');
    fsCap.write('old/c.txt', 'c');
    expect(fsCap.read('gone.txt')).toBe('back');
    expect(fsCap.list('old').map((e) => e.name)).toEqual(['c.txt']);
    expect(await codeOf(() => fsCap.read('old/a.txt'))).toBe('ERR_PATH_NOT_FOUND');
  });

  it('are applied by the commit and undone by the rollback', async () => {
    const { workspace, stateDir, taskKey } = await setUp(SCRIPT);
    const before = treeOf(workspace);
    const commit = await commitOverlay({ stateDir, taskKey, workspace });
    expect(treeOf(workspace)).toEqual({ 'keep.txt': 'changed\n', 'rebuilt/new.txt': 'fresh\n' });
    expect(commit.manifest?.entries.filter((e) => e.after === null).map((e) => e.path)).toEqual([
      'gone.txt',
      'old/a.txt',
      'old/deep/b.txt',
      'rebuilt/also-stale.txt',
      'rebuilt/stale.txt',
    ]);
    await rollbackTask({ stateDir, taskKey });
    expect(treeOf(workspace)).toEqual(before);
  });

  it('leaves symbolic links a program made out of the commit, and says so', async () => {
    const { workspace, stateDir, taskKey } = await setUp('ln -s /etc/passwd link && echo kept > kept.txt');
    const commit = await commitOverlay({ stateDir, taskKey, workspace });
    expect(commit.skipped).toEqual(['link (symlink)']);
    expect(commit.replaced).toEqual(['kept.txt']);
    expect(fs.existsSync(path.join(workspace, 'link'))).toBe(false);
  });
});
