import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFsCapability, type FsCapability } from '../../sandbox/capabilities/fs-capability';
import { commitManifestPathOf, overlayPathsOf, preTaskManifestPathOf, taskKeyOf } from '../../recovery/recovery-paths';
import { listSnapshots, objectPathOf, readManifest, sha256Of } from '../../recovery/snapshot-store';
import { commitOverlay, discardOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { rollbackTask } from '../../recovery/workspace-rollback';
import { restoreSnapshot, snapshotWorkspace } from '../../recovery/workspace-snapshot';
import { codeOf, codeThrownBy, makeTempDir, read, treeOf, writeTree } from './recovery-test-kit';

let stateDir: string;
let workspace: string;
const taskKey = 'warden-scribe-test';
let fsCap: FsCapability;

beforeEach(async () => {
  stateDir = makeTempDir('rec-state');
  workspace = makeTempDir('rec-ws');
  writeTree(workspace, { 'notes.txt': 'original notes', 'docs/a.md': 'doc a', 'docs/b.md': 'doc b' });
  const overlay = await openOverlay({ stateDir, taskKey, workspace });
  fsCap = createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: overlay.upper });
});

afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(workspace, { recursive: true, force: true });
});

describe('task keys', () => {
  it.each([
    ['warden-scribe-abc123', 'warden-scribe-abc123'],
    ['my.task_1', 'my.task_1'],
  ])('a safe id %j is its own key', (id, key) => {
    expect(taskKeyOf(id)).toBe(key);
  });

  it.each(['../../etc', 'a/b', '.hidden', '', 'x'.repeat(150), 'naïve id'])('%j becomes one safe file name', (id) => {
    if (id === '') {
      expect(() => taskKeyOf(id)).toThrow(TypeError);
      return;
    }
    const key = taskKeyOf(id);
    expect(key).toMatch(/^[A-Za-z0-9][A-Za-z0-9._~-]*$/);
    expect(key).not.toContain('/');
    expect(key.length).toBeLessThanOrEqual(80);
    expect(taskKeyOf(id)).toBe(key);
  });

  it('different unsafe ids get different keys', () => {
    expect(taskKeyOf('a/b')).not.toBe(taskKeyOf('a_b'));
    expect(taskKeyOf('a/b')).not.toBe(taskKeyOf('a:b'));
  });
});

describe('the overlay as the fs capability sees it', () => {
  it('reads fall through to the workspace', () => {
    expect(fsCap.read('notes.txt')).toBe('original notes');
    expect(fsCap.read('docs/a.md')).toBe('doc a');
  });

  it('writes land in the upper folder only and are read back from it', () => {
    expect(fsCap.write('notes.txt', 'changed')).toEqual({ path: 'notes.txt', bytes: 7 });
    expect(fsCap.write('new/deep/file.txt', 'brand new')).toEqual({ path: 'new/deep/file.txt', bytes: 9 });
    expect(fsCap.read('notes.txt')).toBe('changed');
    expect(fsCap.read('new/deep/file.txt')).toBe('brand new');
    expect(read(workspace, 'notes.txt')).toBe('original notes');
    expect(fs.existsSync(path.join(workspace, 'new'))).toBe(false);
    const upper = overlayPathsOf(stateDir, taskKey).upper;
    expect(read(upper, 'notes.txt')).toBe('changed');
    expect(read(upper, 'new/deep/file.txt')).toBe('brand new');
  });

  it('listings merge both layers, the upper one winning', () => {
    fsCap.write('docs/a.md', 'longer doc a');
    fsCap.write('docs/c.md', 'doc c');
    expect(fsCap.list('docs')).toEqual([
      { name: 'a.md', type: 'file', size: 12 },
      { name: 'b.md', type: 'file', size: 5 },
      { name: 'c.md', type: 'file', size: 5 },
    ]);
    fsCap.write('only-upper/x.txt', 'x');
    expect(fsCap.list('only-upper')).toEqual([{ name: 'x.txt', type: 'file', size: 1 }]);
    expect(fsCap.list().map((e) => e.name)).toEqual(['docs', 'notes.txt', 'only-upper']);
  });

  it('what the real folder refuses, the overlay refuses', () => {
    expect(codeThrownBy(() => fsCap.write('docs', 'a folder'))).toBe('ERR_FS_FAILED');
    expect(codeThrownBy(() => fsCap.write('notes.txt/child', 'under a file'))).toBe('ERR_FS_FAILED');
    expect(codeThrownBy(() => fsCap.write('.', 'root'))).toBe('ERR_FS_FAILED');
    expect(codeThrownBy(() => fsCap.read('missing.txt'))).toBe('ERR_PATH_NOT_FOUND');
    expect(codeThrownBy(() => fsCap.list('missing'))).toBe('ERR_PATH_NOT_FOUND');
    expect(codeThrownBy(() => fsCap.read('docs'))).toBe('ERR_FS_FAILED');
  });

  it('a write through an inside symlink lands at its canonical path', () => {
    fs.symlinkSync(path.join(workspace, 'notes.txt'), path.join(workspace, 'notes-link.txt'));
    expect(fsCap.write('notes-link.txt', 'via link')).toEqual({ path: 'notes.txt', bytes: 8 });
    expect(fsCap.read('notes.txt')).toBe('via link');
    expect(fs.lstatSync(path.join(workspace, 'notes-link.txt')).isSymbolicLink()).toBe(true);
    expect(read(workspace, 'notes.txt')).toBe('original notes');
  });

  it('reading before anything was written works without an upper folder', () => {
    const fresh = createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: path.join(stateDir, 'overlays', 'never', 'upper') });
    expect(fresh.read('notes.txt')).toBe('original notes');
    expect(fresh.list('docs').map((e) => e.name)).toEqual(['a.md', 'b.md']);
    expect(fs.existsSync(path.join(stateDir, 'overlays', 'never'))).toBe(false);
  });
});

describe('commit, snapshot and rollback', () => {
  it('commit replaces the files, records what they replaced, removes the overlay', async () => {
    fsCap.write('notes.txt', 'changed');
    fsCap.write('new/deep/file.txt', 'brand new');
    const result = await commitOverlay({ stateDir, taskKey, workspace });
    expect(result.replaced.sort()).toEqual(['new/deep/file.txt', 'notes.txt']);
    expect(read(workspace, 'notes.txt')).toBe('changed');
    expect(read(workspace, 'new/deep/file.txt')).toBe('brand new');
    expect(fs.existsSync(overlayPathsOf(stateDir, taskKey).dir)).toBe(false);

    const manifest = await readManifest(commitManifestPathOf(stateDir, taskKey));
    expect(manifest).toMatchObject({ taskKey, kind: 'commit', status: 'committed', workspace });
    expect(manifest?.entries).toEqual([
      { path: 'new/deep/file.txt', before: null, after: sha256Of('brand new') },
      { path: 'notes.txt', before: sha256Of('original notes'), after: sha256Of('changed') },
    ]);
    expect(fs.readFileSync(objectPathOf(stateDir, sha256Of('original notes')), 'utf8')).toBe('original notes');
    expect(manifest?.createdDirs).toEqual(['new', 'new/deep']);
  });

  it('rollback after commit restores replaced files, deletes created ones and their folders', async () => {
    const before = treeOf(workspace);
    fsCap.write('notes.txt', 'changed');
    fsCap.write('new/deep/file.txt', 'brand new');
    await commitOverlay({ stateDir, taskKey, workspace });
    const rollback = await rollbackTask({ stateDir, taskKey });
    expect(rollback).toMatchObject({ status: 'rolled-back', restored: ['notes.txt'], deleted: ['new/deep/file.txt'] });
    expect(treeOf(workspace)).toEqual(before);
    expect(fs.existsSync(path.join(workspace, 'new'))).toBe(false);
    expect((await readManifest(commitManifestPathOf(stateDir, taskKey)))?.status).toBe('rolled-back');
    // Idempotent.
    expect((await rollbackTask({ stateDir, taskKey })).status).toBe('already-rolled-back');
    expect(treeOf(workspace)).toEqual(before);
  });

  it('rollback refuses files changed since the commit, naming them, unless forced', async () => {
    fsCap.write('notes.txt', 'changed');
    fsCap.write('docs/a.md', 'changed a');
    await commitOverlay({ stateDir, taskKey, workspace });
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'edited by a human later');
    let thrown: unknown;
    try {
      await rollbackTask({ stateDir, taskKey });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'ERR_ROLLBACK_CONFLICT', details: { paths: ['notes.txt'] } });
    expect((thrown as Error).message).toContain('notes.txt');
    // It names the flag that overrides it as the user types it (newcomer s22: it said "use force").
    expect((thrown as Error).message).toContain('`warden rollback --force` overwrites them');
    // Nothing was touched.
    expect(read(workspace, 'docs/a.md')).toBe('changed a');
    const forced = await rollbackTask({ stateDir, taskKey, force: true });
    expect(forced.forced).toEqual(['notes.txt']);
    expect(read(workspace, 'notes.txt')).toBe('original notes');
    expect(read(workspace, 'docs/a.md')).toBe('doc a');
  });

  it('rollback refuses a file replaced by a symlink even when forced', async () => {
    fsCap.write('notes.txt', 'changed');
    await commitOverlay({ stateDir, taskKey, workspace });
    const outside = makeTempDir('rec-outside');
    fs.rmSync(path.join(workspace, 'notes.txt'));
    fs.symlinkSync(path.join(outside, 'victim.txt'), path.join(workspace, 'notes.txt'));
    expect(await codeOf(() => rollbackTask({ stateDir, taskKey, force: true }))).toBe('ERR_ROLLBACK_CONFLICT');
    expect(fs.existsSync(path.join(outside, 'victim.txt'))).toBe(false);
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it('an unchanged file is not part of the commit; an empty overlay commits nothing', async () => {
    fsCap.write('notes.txt', 'original notes');
    const result = await commitOverlay({ stateDir, taskKey, workspace });
    expect(result.manifest).toBeUndefined();
    expect(await listSnapshots(stateDir, taskKey)).toEqual([]);
    expect((await rollbackTask({ stateDir, taskKey })).status).toBe('nothing-to-roll-back');
  });

  it('commit is idempotent', async () => {
    fsCap.write('notes.txt', 'changed');
    const first = await commitOverlay({ stateDir, taskKey, workspace });
    const second = await commitOverlay({ stateDir, taskKey, workspace });
    expect(second.alreadyCommitted).toBe(true);
    expect(second.manifest).toEqual(first.manifest);
    expect(read(workspace, 'notes.txt')).toBe('changed');
  });

  it('commit refuses to overwrite a file someone changed while the task ran (after planning)', async () => {
    fsCap.write('notes.txt', 'changed');
    fsCap.write('zzz.txt', 'later file');
    await expect(
      commitOverlay({
        stateDir,
        taskKey,
        workspace,
        onProgress: (event) => {
          if (event.stage === 'manifest-written') fs.writeFileSync(path.join(workspace, 'notes.txt'), 'a human edit');
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_COMMIT_CONFLICT', details: { paths: ['notes.txt'] } });
    expect(read(workspace, 'notes.txt')).toBe('a human edit');
    expect(read(workspace, 'zzz.txt')).toBeUndefined();
  });

  it('discard throws the overlay away and leaves the workspace alone', async () => {
    const before = treeOf(workspace);
    fsCap.write('notes.txt', 'changed');
    expect(await discardOverlay({ stateDir, taskKey })).toEqual({ discarded: true, interruptedCommit: false });
    expect(await discardOverlay({ stateDir, taskKey })).toEqual({ discarded: false, interruptedCommit: false });
    expect(treeOf(workspace)).toEqual(before);
    expect(fsCap.read('notes.txt')).toBe('original notes');
  });

  it('another run under the same key cannot commit over an earlier commit', async () => {
    fsCap.write('notes.txt', 'first run');
    await commitOverlay({ stateDir, taskKey, workspace });
    const again = await openOverlay({ stateDir, taskKey, workspace });
    createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: again.upper }).write('notes.txt', 'second run');
    expect(await codeOf(() => commitOverlay({ stateDir, taskKey, workspace }))).toBe('ERR_OVERLAY_INVALID');
    expect(read(workspace, 'notes.txt')).toBe('first run');
  });

  it('another run under the same key that wrote nothing commits nothing, without complaint', async () => {
    fsCap.write('notes.txt', 'first run');
    const first = await commitOverlay({ stateDir, taskKey, workspace });
    await openOverlay({ stateDir, taskKey, workspace });
    expect(await commitOverlay({ stateDir, taskKey, workspace })).toEqual({ manifest: undefined, replaced: [], alreadyCommitted: false, skipped: [], held: [] });
    expect(await readManifest(commitManifestPathOf(stateDir, taskKey))).toEqual(first.manifest);
  });
});

describe('a commit interrupted halfway', () => {
  class SimulatedCrash extends Error {}

  it('stopped right after the manifest: re-running finishes it', async () => {
    fsCap.write('notes.txt', 'changed');
    fsCap.write('docs/b.md', 'changed b');
    fsCap.write('new.txt', 'new');
    await expect(
      commitOverlay({
        stateDir,
        taskKey,
        workspace,
        onProgress: (event) => {
          if (event.stage === 'manifest-written') throw new SimulatedCrash();
        },
      }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    expect((await readManifest(commitManifestPathOf(stateDir, taskKey)))?.status).toBe('committing');
    expect(read(workspace, 'notes.txt')).toBe('original notes');
    expect(await discardOverlay({ stateDir, taskKey })).toMatchObject({ interruptedCommit: true });

    // The overlay is gone: the resumed commit works from the manifest and the snapshot store alone.
    const resumed = await commitOverlay({ stateDir, taskKey, workspace });
    expect(resumed.replaced.sort()).toEqual(['docs/b.md', 'new.txt', 'notes.txt']);
    expect(resumed.manifest?.status).toBe('committed');
    expect(treeOf(workspace)).toEqual({ 'docs/a.md': 'doc a', 'docs/b.md': 'changed b', 'new.txt': 'new', 'notes.txt': 'changed' });
  });

  it('stopped after some files were replaced: re-running skips them; or it can be rolled back', async () => {
    fsCap.write('docs/a.md', 'changed a');
    fsCap.write('docs/b.md', 'changed b');
    fsCap.write('notes.txt', 'changed');
    let replaced = 0;
    await expect(
      commitOverlay({
        stateDir,
        taskKey,
        workspace,
        onProgress: (event) => {
          if (event.stage === 'file-replaced' && ++replaced === 2) throw new SimulatedCrash();
        },
      }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    expect(treeOf(workspace)).toEqual({ 'docs/a.md': 'changed a', 'docs/b.md': 'changed b', 'notes.txt': 'original notes' });

    const rollback = await rollbackTask({ stateDir, taskKey });
    expect(rollback.restored.sort()).toEqual(['docs/a.md', 'docs/b.md']);
    expect(rollback.unchanged).toEqual(['notes.txt']);
    expect(treeOf(workspace)).toEqual({ 'docs/a.md': 'doc a', 'docs/b.md': 'doc b', 'notes.txt': 'original notes' });
  });

  it('a process SIGKILLed right after writing the manifest: a new process finishes the commit', async () => {
    fsCap.write('notes.txt', 'changed');
    fsCap.write('fresh/new.txt', 'new');
    const script = path.join(stateDir, 'crash-commit.ts');
    fs.writeFileSync(
      script,
      `const { commitOverlay } = require(${JSON.stringify(path.resolve(__dirname, '../../recovery/workspace-overlay'))});
       commitOverlay({ stateDir: process.argv[2], taskKey: process.argv[3], workspace: process.argv[4],
         onProgress: (e) => { if (e.stage === 'manifest-written') process.kill(process.pid, 'SIGKILL'); } });`,
    );
    const { spawnSync } = await import('node:child_process');
    const child = spawnSync(process.execPath, ['--require', 'tsx/cjs', script, stateDir, taskKey, workspace], { cwd: path.resolve(__dirname, '../..'), encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    expect((await readManifest(commitManifestPathOf(stateDir, taskKey)))?.status).toBe('committing');
    expect(read(workspace, 'notes.txt')).toBe('original notes');

    const resumed = await commitOverlay({ stateDir, taskKey, workspace });
    expect(resumed.manifest?.status).toBe('committed');
    expect(read(workspace, 'notes.txt')).toBe('changed');
    expect(read(workspace, 'fresh/new.txt')).toBe('new');
    await rollbackTask({ stateDir, taskKey });
    expect(treeOf(workspace)).toEqual({ 'docs/a.md': 'doc a', 'docs/b.md': 'doc b', 'notes.txt': 'original notes' });
  });
});

describe('pre-task snapshots', () => {
  it('copies every workspace file once; taking it again returns the first snapshot', async () => {
    const first = await snapshotWorkspace({ stateDir, taskKey, workspace });
    expect(first).toMatchObject({ kind: 'pre-task', status: 'complete', workspace });
    expect(first.entries.map((e) => e.path)).toEqual(['docs/a.md', 'docs/b.md', 'notes.txt']);
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'changed after');
    expect(await snapshotWorkspace({ stateDir, taskKey, workspace })).toEqual(first);
    expect(fs.existsSync(preTaskManifestPathOf(stateDir, taskKey))).toBe(true);
  });

  it('leaves out symlinks and the state folder when it sits inside the workspace', async () => {
    const inner = path.join(workspace, '.warden');
    fs.mkdirSync(inner);
    fs.symlinkSync('/etc/passwd', path.join(workspace, 'passwd-link'));
    const snapshot = await snapshotWorkspace({ stateDir: inner, taskKey, workspace });
    expect(snapshot.entries.map((e) => e.path)).toEqual(['docs/a.md', 'docs/b.md', 'notes.txt']);
  });

  it('refuses a workspace over the limits', async () => {
    expect(await codeOf(() => snapshotWorkspace({ stateDir, taskKey, workspace, maxFiles: 2 }))).toBe('ERR_SNAPSHOT_TOO_LARGE');
  });

  it('restores the workspace to the snapshot; changes the commit does not explain need force', async () => {
    await snapshotWorkspace({ stateDir, taskKey, workspace });
    const before = treeOf(workspace);
    fsCap.write('notes.txt', 'changed');
    fsCap.write('created.txt', 'created');
    await commitOverlay({ stateDir, taskKey, workspace });
    expect(await restoreSnapshot({ stateDir, taskKey })).toMatchObject({ restored: ['notes.txt'], deleted: ['created.txt'], forced: [] });
    expect(treeOf(workspace)).toEqual(before);

    fs.writeFileSync(path.join(workspace, 'docs/a.md'), 'someone else');
    expect(await codeOf(() => restoreSnapshot({ stateDir, taskKey }))).toBe('ERR_ROLLBACK_CONFLICT');
    expect((await restoreSnapshot({ stateDir, taskKey, force: true })).forced).toEqual(['docs/a.md']);
    expect(treeOf(workspace)).toEqual(before);
  });

  it('listSnapshots shows the pre-task snapshot, then the commit', async () => {
    await snapshotWorkspace({ stateDir, taskKey, workspace });
    fsCap.write('notes.txt', 'changed');
    await commitOverlay({ stateDir, taskKey, workspace });
    expect((await listSnapshots(stateDir, taskKey)).map((s) => s.kind)).toEqual(['pre-task', 'commit']);
  });

  it('without a snapshot, restoring is ERR_SNAPSHOT_NOT_FOUND', async () => {
    expect(await codeOf(() => restoreSnapshot({ stateDir, taskKey }))).toBe('ERR_SNAPSHOT_NOT_FOUND');
  });

  it('a tampered object is refused (ERR_SNAPSHOT_CORRUPT)', async () => {
    fsCap.write('notes.txt', 'changed');
    await commitOverlay({ stateDir, taskKey, workspace });
    const object = objectPathOf(stateDir, sha256Of('original notes'));
    fs.chmodSync(object, 0o644);
    fs.writeFileSync(object, 'tampered');
    expect(await codeOf(() => rollbackTask({ stateDir, taskKey }))).toBe('ERR_SNAPSHOT_CORRUPT');
    expect(read(workspace, 'notes.txt')).toBe('changed');
  });
});
