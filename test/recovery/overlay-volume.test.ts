/**
 * The workspace volume of a task tree (recovery/overlay-volume.ts): made on first use, mounted
 * again after its mount is gone (a worker restart, a reboot), made from a plain overlay folder
 * with its contents, and gone with the overlay (unmounted, image deleted) on discard and commit.
 * The task file's `limits.workspaceMb` is validated like the other limits.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureOverlayVolume, fullVolumeMarginBytes, METADATA_ALLOWANCE_BYTES, overlayVolumeImageOf, overlayVolumeState, releaseOverlayVolume, volumeRoomBytes, workspaceVolumeMbOf } from '../../recovery/overlay-volume';
import { overlayPathsOf } from '../../recovery/recovery-paths';
import { commitOverlay, discardOverlay, openOverlay, pendingOverlayFiles } from '../../recovery/workspace-overlay';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { REPO_ROOT } from '../support/warden-test-env';

const run = promisify(execFile);
const stateDirs: string[] = [];

function stateDir(): string {
  const dir = makeTempDir('volume-state');
  stateDirs.push(dir);
  return dir;
}

function mountsUnder(dirs: readonly string[]): string[] {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => dirs.some((dir) => line.includes(dir)));
}

afterAll(async () => {
  // Whatever a failed test left mounted goes before the folders do; then nothing is mounted.
  for (const line of mountsUnder(stateDirs)) await run('umount', ['-l', line.split(' ')[1]!]).catch(() => undefined);
  expect(mountsUnder(stateDirs)).toEqual([]);
});

describe('a task tree\'s workspace volume', () => {
  it('is made for trees that run programs or stdio MCP servers, sized by limits.workspaceMb', () => {
    const base = { tools: { builtin: ['fs.write'] }, limits: {} };
    expect(workspaceVolumeMbOf(base)).toBeUndefined();
    expect(workspaceVolumeMbOf({ ...base, tools: { builtin: ['proc.run'] } })).toBe(1024);
    expect(workspaceVolumeMbOf({ ...base, tools: { builtin: [], mcp: { files: { command: 'node' } } }, limits: { workspaceMb: 32 } })).toBe(32);
    expect(workspaceVolumeMbOf({ ...base, subagents: { helper: { tools: { builtin: ['proc.run'] }, limits: {} } } })).toBe(1024);
  });

  // The limit is usable in full: overhead, Warden's reserve and the full margin come on top, and
  // not much more (the image bounds what the tree adds to the host disk).
  it.each([16, 64, 300, 1024])('leaves a program %i MiB plus the margin, and the image stays close to that', async (limitMb) => {
    const state = stateDir();
    expect(await ensureOverlayVolume(state, 'sized', limitMb)).toBe('volume');
    const volume = overlayVolumeState(state, 'sized');
    const limit = limitMb * 1024 * 1024;
    expect(volume.availableBytes! - fullVolumeMarginBytes()).toBeGreaterThanOrEqual(limit + METADATA_ALLOWANCE_BYTES);
    expect(volume.availableBytes! - fullVolumeMarginBytes()).toBeLessThanOrEqual(limit + 4 * 1024 * 1024);
    // Journal (4 MiB), inode tables (up to 6%), ext4's 2% and Warden's reserve (up to 8 MiB) on top.
    const image = fs.statSync(overlayVolumeImageOf(state, 'sized')).size;
    expect(image).toBeLessThanOrEqual(limit * 1.15 + fullVolumeMarginBytes() + 16 * 1024 * 1024);
    // Before a write, Warden's room is the limit less what is used, never the margin.
    const stat = fs.statfsSync(overlayPathsOf(state, 'sized').dir);
    expect(volumeRoomBytes(stat, limit)).toBe(limit - (stat.blocks - stat.bfree) * stat.bsize);
    await releaseOverlayVolume(state, 'sized');
    expect(mountsUnder([state])).toEqual([]);
  }, 300_000);

  it('is mounted again after its mount went away, with what it held, and discarded without a trace', async () => {
    const state = stateDir();
    const workspace = makeTempDir('volume-ws');
    const opened = await openOverlay({ stateDir: state, taskKey: 'restart', workspace, volumeMb: 32 });
    expect(overlayVolumeState(state, 'restart').enforcement).toBe('volume');
    fs.writeFileSync(path.join(opened.upper, 'kept.txt'), 'kept');
    // What a reboot does (and a worker killed mid-task on another mount namespace).
    await run('umount', [opened.dir]);
    expect(overlayVolumeState(state, 'restart').enforcement).toBe('none');
    expect(await pendingOverlayFiles({ stateDir: state, taskKey: 'restart' })).toEqual(['kept.txt']);
    expect(overlayVolumeState(state, 'restart').enforcement).toBe('volume');
    await discardOverlay({ stateDir: state, taskKey: 'restart' });
    expect(fs.existsSync(opened.dir)).toBe(false);
    expect(fs.existsSync(overlayVolumeImageOf(state, 'restart'))).toBe(false);
    expect(mountsUnder([state])).toEqual([]);
  });

  it('takes in a plain overlay folder a program call finds, and is gone after the commit', async () => {
    const state = stateDir();
    const workspace = makeTempDir('volume-ws');
    const opened = await openOverlay({ stateDir: state, taskKey: 'plain', workspace });
    fs.writeFileSync(path.join(opened.upper, 'note.txt'), 'from fs.write');
    expect(await ensureOverlayVolume(state, 'plain', 32)).toBe('volume');
    expect(overlayVolumeState(state, 'plain').enforcement).toBe('volume');
    expect(fs.readFileSync(path.join(opened.upper, 'note.txt'), 'utf8')).toBe('from fs.write');
    await commitOverlay({ stateDir: state, taskKey: 'plain', workspace });
    expect(fs.readFileSync(path.join(workspace, 'note.txt'), 'utf8')).toBe('from fs.write');
    expect(fs.existsSync(opened.dir)).toBe(false);
    expect(fs.readdirSync(path.join(state, 'overlay-volumes'))).toEqual([]);
    expect(mountsUnder([state])).toEqual([]);
  });

  it('refuses a plain folder that does not fit, leaving it as it was', async () => {
    const state = stateDir();
    const workspace = makeTempDir('volume-ws');
    const opened = await openOverlay({ stateDir: state, taskKey: 'big', workspace });
    fs.writeFileSync(path.join(opened.upper, 'big.bin'), Buffer.alloc(24 * 1024 * 1024, 1));
    await expect(ensureOverlayVolume(state, 'big', 16)).rejects.toMatchObject({ code: 'ERR_WORKSPACE_QUOTA', message: expect.stringMatching(/limits\.workspaceMb: 16 MiB/) });
    expect(fs.statSync(path.join(opened.upper, 'big.bin')).size).toBe(24 * 1024 * 1024);
    expect(fs.readdirSync(path.join(state, 'overlay-volumes'))).toEqual([]);
    expect(mountsUnder([state])).toEqual([]);
    await discardOverlay({ stateDir: state, taskKey: 'big' });
  });
});

describe('limits.workspaceMb in a task file', () => {
  it.each([
    ['too small', '8', 'limits.workspaceMb'],
    ['not a number', 'lots', 'limits.workspaceMb'],
    ['not whole', '64.5', 'limits.workspaceMb'],
  ])('is refused when %s: exit 2 naming file, line and column', async (_what, value, field) => {
    const dir = makeTempDir('volume-taskfile');
    const text = `user: alice@example.com\nintent: build\nagent:\n  name: builder\n  model:\n    driver: scripted\n    script:\n      - final: done\nlimits:\n  workspaceMb: ${value}\n`;
    fs.writeFileSync(path.join(dir, 'task.yaml'), text);
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', WARDEN_STATE_DIR: path.join(dir, 'state'), WARDEN_TELEMETRY: '0' };
    const outcome = await run(process.execPath, [path.join(REPO_ROOT, 'bin/warden.js'), 'run', 'task.yaml', '--no-worker'], { cwd: dir, env, timeout: 60_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(outcome.code, outcome.stderr).toBe(2);
    expect(outcome.stderr).toContain(`task.yaml:10:3: ${field}: `);
  }, 90_000);
});
