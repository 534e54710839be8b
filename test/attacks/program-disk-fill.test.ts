/**
 * Attack (issue 11): resource exhaustion through the workspace overlay. A program's writes land in
 * the task tree's overlay, on the disk that holds Warden's state folder. A per-file limit
 * (RLIMIT_FSIZE) does not bound the sum: many files, `fallocate`, one large write, sparse files
 * and hard links (which a commit writes out whole), copies, writes spread over steps.
 *
 * Fixed: a tree that runs programs has its overlay on a loop-mounted ext4 volume of
 * `limits.workspaceMb` MiB (recovery/overlay-volume.ts). The kernel refuses the block past it while
 * the program runs; the step fails ERR_WORKSPACE_QUOTA naming the limit and where to raise it; the
 * files' sizes are bounded too (checked after each call and before a commit); the volume is
 * unmounted and its image deleted with the overlay, so nothing stays mounted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullVolumeMarginBytes, overlayVolumeImageOf } from '../../recovery/overlay-volume';
import { taskKeyOf } from '../../recovery/recovery-paths';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';

let env: WardenTestEnv;
beforeAll(async () => {
  // The MCP case's filesystem server comes from the repository's node_modules.
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT });
});
afterAll(async () => {
  await env?.close();
  // Every volume this file made was unmounted with its overlay.
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(path.join(TEST_STATE_DIR, 'overlays')));
  expect(mounts).toEqual([]);
});

const LIMIT_MB = 64;
const COMMANDS = ['sh', 'fallocate', 'head', 'split', 'dd', 'ln', 'cp', 'truncate', 'df', 'tail', 'du', 'cut', 'seq'];

/**
 * Shell: fallocates a file of all the room left in the volume (what keeps it out of the full
 * margin and within the limit: recovery/overlay-volume.ts volumeRoomBytes) but 160 KiB, named by the next word.
 */
const LEAVE_ROOM =
  `avail=$(( $(df --output=avail -B1 . | tail -1) - ${fullVolumeMarginBytes()} )); ` +
  `within=$(( ${LIMIT_MB * 1024 * 1024} - $(df --output=used -B1 . | tail -1) )); ` +
  'fallocate -l $(( (avail < within ? avail : within) - 160 * 1024 ))';

function workspace(): string {
  const folder = makeTempDir('disk-fill');
  fs.writeFileSync(path.join(folder, 'a.txt'), 'a');
  return folder;
}

function proc(script: string) {
  return { tool: 'proc.run', args: { command: 'sh', args: ['-c', script] } };
}

/** Bytes (allocated, and at their sizes) under `folder`. */
function bytesUnder(folder: string): { allocated: number; apparent: number } {
  let allocated = 0;
  let apparent = 0;
  for (const entry of fs.readdirSync(folder, { withFileTypes: true, recursive: true })) {
    const stat = fs.lstatSync(path.join(entry.parentPath, entry.name));
    allocated += stat.blocks * 512;
    if (stat.isFile()) apparent += stat.size;
  }
  return { allocated, apparent };
}

function bounded(task: { script: unknown[]; tools?: string[]; limits?: Record<string, unknown> }, folder: string) {
  const tools = task.tools ?? ['proc.run'];
  return {
    user: 'sam@example.com',
    intent: 'build the project',
    agent: { name: 'builder', model: { driver: 'scripted', script: task.script } },
    tools: { builtin: tools },
    grants: { tools, commands: COMMANDS },
    resources: { workspace: folder },
    limits: { toolTimeout: '300s', workspaceMb: LIMIT_MB, ...task.limits },
  };
}

describe('what one task tree adds to the host disk through its workspace', () => {
  // Each writes far more than 64 MiB (each file under the 256 MiB per-file limit).
  it.each([
    ['fallocate, many files under the per-file limit', 'i=0; while fallocate -l 8M fill-$i; do i=$((i+1)); [ $i -lt 100 ] || break; done'],
    ['one large plain write', 'head -c 200M /dev/zero > big'],
    ['many small files', 'head -c 200M /dev/zero | split -b 64K - part-'],
    ['sparse files (a commit writes them out whole)', 'for i in $(seq 1 40); do truncate -s 200M sparse-$i || break; done'],
    ['a file seeked far and written at the end', 'for i in $(seq 1 40); do dd if=/dev/zero of=seek-$i bs=1 count=1 seek=200M 2>/dev/null || break; done'],
    ['hard links to one file (a commit writes each out)', 'fallocate -l 30M one && for i in $(seq 1 20); do ln one link-$i || break; done'],
    ['copies of one file', 'head -c 30M /dev/zero > one && for i in $(seq 1 10); do cp one copy-$i || break; done'],
    ['writes spread over steps', ['fallocate -l 40M one', 'head -c 40M /dev/zero > two']],
  ])('is bounded by limits.workspaceMb: %s', async (_label, scripts) => {
    const folder = workspace();
    const calls = (Array.isArray(scripts) ? scripts : [scripts]).map(proc);
    const result = await env.runTask(bounded({ script: [...calls, { final: 'built' }] }, folder));
    const failed = result.steps.find((step) => step.error !== undefined);
    expect(failed?.error?.code, JSON.stringify(result.steps)).toBe('ERR_WORKSPACE_QUOTA');
    expect(failed?.error?.message).toMatch(/limits\.workspaceMb: 64 MiB; raise limits\.workspaceMb in the task file/);
    // Whatever was committed fits in the bound, allocated and written out.
    const { allocated, apparent } = bytesUnder(folder);
    expect(allocated).toBeLessThanOrEqual(LIMIT_MB * 1024 * 1024);
    expect(apparent).toBeLessThanOrEqual(LIMIT_MB * 1024 * 1024);
    // The volume went with the overlay.
    expect(fs.existsSync(overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(result.workflowId, result.runId)))).toBe(false);
  }, 600_000);

  it('lets a program write up to the limit, and commits it', async () => {
    const folder = workspace();
    const result = await env.runTask(bounded({ script: [proc('fallocate -l 40M build.out'), { final: 'built' }] }, folder));
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    expect(fs.statSync(path.join(folder, 'build.out')).size).toBe(40 * 1024 * 1024);
    expect(fs.existsSync(overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(result.workflowId, result.runId)))).toBe(false);
  }, 600_000);

  it('refuses an fs.write that does not fit in the volume, before the file changes', async () => {
    const folder = workspace();
    // The program leaves about 160 KiB above the full margin (room past the limit, never written
    // by a call that succeeds); the fs.write of 200 KiB over a.txt is refused whole.
    const fill = `${LEAVE_ROOM} fill`;
    const result = await env.runTask(
      bounded({ tools: ['proc.run', 'fs.write'], script: [proc(fill), { tool: 'fs.write', args: { path: 'a.txt', content: 'b'.repeat(200 * 1024) } }, { final: 'built' }] }, folder),
    );
    expect(result.steps[0]?.error, JSON.stringify(result.steps[0])).toBeUndefined();
    expect(result.steps[1]?.error?.code, JSON.stringify(result.steps[1])).toBe('ERR_WORKSPACE_QUOTA');
    expect(fs.readFileSync(path.join(folder, 'a.txt'), 'utf8')).toBe('a');
  }, 600_000);

  it('bounds a stdio MCP server writing in the overlay (the same volume)', async () => {
    const folder = workspace();
    // A program leaves about 160 KiB above the full margin; the server's 400 KiB file takes the
    // volume into the margin: the call fails and its file is taken back out.
    const fill = `${LEAVE_ROOM} fill && rm -f nothing`;
    const result = await env.runTask({
      ...bounded({ tools: ['proc.run'], script: [proc(fill), { tool: 'files.write_file', args: { path: '/workspace/server.txt', content: 's'.repeat(400 * 1024) } }, { final: 'built' }], limits: { onDeny: 'continue' } }, folder),
      tools: { builtin: ['proc.run'], mcp: { files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] } } },
      grants: { tools: ['proc.run', 'files.write_file'], commands: COMMANDS },
    });
    expect(result.steps[0]?.error, JSON.stringify(result.steps[0])).toBeUndefined();
    const step = result.steps[1];
    expect(step, JSON.stringify(result).slice(0, 3000)).toBeDefined();
    expect(step?.error?.code, JSON.stringify(step)).toBe('ERR_WORKSPACE_QUOTA');
    expect(step?.error?.message).toMatch(/limits\.workspaceMb: 64 MiB/);
    expect(step?.undone).toEqual(['server.txt']);
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    expect(fs.existsSync(path.join(folder, 'server.txt'))).toBe(false);
  }, 600_000);

  it('bounds fs.write alone (a tree without programs: its plain overlay is measured)', () => {
    const folder = workspace();
    const upper = path.join(makeTempDir('disk-fill-overlay'), 'upper');
    const capability = createFsCapability({ root: folder, read: true, write: true, list: true, overlay: upper, workspaceBytes: 100 * 1024 });
    capability.write('one', 'c'.repeat(40 * 1024));
    // Rewriting a file counts its new size only.
    capability.write('one', 'c'.repeat(45 * 1024));
    capability.write('two', 'c'.repeat(40 * 1024));
    let refused: unknown;
    try {
      capability.write('three', 'c'.repeat(40 * 1024));
    } catch (error) {
      refused = error;
    }
    expect(refused).toMatchObject({ code: 'ERR_WORKSPACE_QUOTA', message: expect.stringMatching(/limits\.workspaceMb: 0 MiB; raise limits\.workspaceMb in the task file/) });
    expect(fs.existsSync(path.join(upper, 'three'))).toBe(false);
  });
});
