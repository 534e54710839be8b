/**
 * Attack: a program runs into the workspace volume's bound and the step still shows ok.
 *
 * `dd if=/dev/zero of=big.bin bs=1M count=64` with `limits.workspaceMb: 16` stopped with "No space
 * left on device" after 9 MiB, exit code 1, and the step was ok: the volume counted as full only
 * under 64 KiB free, and the kernel refuses a whole 1 MiB buffered write with 0.9 MiB free (ext4
 * allocates a write a folio at a time). The task completed and committed the truncated 9 MiB file.
 * The volume also held far less than the limit (journal, inode tables, Warden's reserve came out
 * of it).
 *
 * Fixed (recovery/overlay-volume.ts): the volume is made larger than the limit by its overhead,
 * Warden's reserve and a full margin (twice the largest page-cache folio, at least 4 MiB); a call
 * that ends with less than that margin free has run into the bound, whatever its block size,
 * and fails ERR_WORKSPACE_QUOTA; its writes are undone like any failed call's. A workspace of
 * exactly `limits.workspaceMb` MiB of files fits and commits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overlayVolumeImageOf } from '../../recovery/overlay-volume';
import { taskKeyOf } from '../../recovery/recovery-paths';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env);
});
afterAll(async () => {
  await env?.close();
  // Every volume this file made was unmounted with its overlay.
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(TEST_STATE_DIR));
  expect(mounts).toEqual([]);
});

const COMMANDS = ['sh', 'dd', 'head', 'split', 'mkdir', 'python3', 'node'];

/** Writers that try to write four times the limit, each as its own program. */
function writers(limitMb: number): Array<[string, { command: string; args: string[] }]> {
  const sh = (script: string) => ({ command: 'sh', args: ['-c', script] });
  const bytes = limitMb * 4 * 1024 * 1024;
  return [
    ['dd bs=1M', sh(`dd if=/dev/zero of=big.bin bs=1M count=${limitMb * 4}`)],
    ['dd bs=64K', sh(`dd if=/dev/zero of=big.bin bs=64K count=${limitMb * 64}`)],
    ['dd bs=4K', sh(`dd if=/dev/zero of=big.bin bs=4K count=${limitMb * 1024}`)],
    ['dd bs=8M, one short write', sh(`dd if=/dev/zero of=big.bin bs=8M count=${limitMb / 2}`)],
    ['many files of 16 KiB', sh(`mkdir parts && head -c ${bytes} /dev/zero | split -b 16K - parts/big-`)],
    ['empty files until no inode is left', sh('mkdir parts && cd parts && i=0; while [ $i -lt 1000000 ] && : > f$i; do i=$((i+1)); done')],
    ['python writing 100 kB at a time', { command: 'python3', args: ['-c', `f = open('big.bin', 'wb')\nfor _ in range(${Math.ceil(bytes / 100_000)}): f.write(b'x' * 100_000)`] }],
    [
      'node writing 1 MiB at a time',
      { command: 'node', args: ['-e', `const fs = require('fs'); const fd = fs.openSync('big.bin', 'w'); const b = Buffer.alloc(1 << 20, 120); for (let i = 0; i < ${limitMb * 4}; i++) fs.writeSync(fd, b);`] },
    ],
  ];
}

function task(limitMb: number, call: { command: string; args: string[] }, folder: string) {
  return {
    user: 'sam@example.com',
    intent: 'build the project',
    agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: call }, { final: 'built' }] } },
    tools: { builtin: ['proc.run'] },
    grants: { tools: ['proc.run'], commands: COMMANDS },
    resources: { workspace: folder },
    limits: { toolTimeout: '300s', workspaceMb: limitMb, processMemoryMb: 1024 },
  };
}

function workspace(): string {
  const folder = makeTempDir('disk-fill-writers');
  fs.writeFileSync(path.join(folder, 'a.txt'), 'a');
  return folder;
}

// A failed call is the step's error, not the task's end: the agent goes on and the task completes,
// without what the failed call added.
// The cases run together, a few at a time: each has its own workspace, task and volume.
describe.concurrent.each([16, 64])('a program that runs into a %i MiB workspace', (limitMb) => {
  it.each(writers(limitMb))('fails ERR_WORKSPACE_QUOTA and commits nothing: %s', async (_label, call) => {
    const folder = workspace();
    const result = await env.runTask(task(limitMb, call, folder));
    const step = result.steps[0];
    expect(step?.error?.code, JSON.stringify(result.steps).slice(0, 3000)).toBe('ERR_WORKSPACE_QUOTA');
    expect(step?.error?.message).toMatch(new RegExp(`limits\\.workspaceMb: ${limitMb} MiB; raise limits\\.workspaceMb in the task file`));
    expect(step?.undone, JSON.stringify(step)).toContain(call.command === 'sh' && call.args[1]!.includes('parts') ? 'parts' : 'big.bin');
    expect(result.status, `${result.reason} ${JSON.stringify(result.steps).slice(0, 3000)}`).toBe('completed');
    // Nothing the program wrote reached the workspace: no truncated file.
    expect(fs.readdirSync(folder)).toEqual(['a.txt']);
    expect(fs.existsSync(overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(result.workflowId, result.runId)))).toBe(false);
  }, 600_000);

  it(`commits a file of exactly ${limitMb} MiB (the limit is usable in full)`, async () => {
    const folder = workspace();
    const result = await env.runTask(task(limitMb, { command: 'dd', args: ['if=/dev/zero', 'of=build.out', 'bs=1M', `count=${limitMb}`] }, folder));
    expect(result.steps[0]?.error, JSON.stringify(result.steps[0])).toBeUndefined();
    expect(result.steps[0]?.output).toMatchObject({ exitCode: 0 });
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    expect(fs.statSync(path.join(folder, 'build.out')).size).toBe(limitMb * 1024 * 1024);
    expect(fs.existsSync(overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(result.workflowId, result.runId)))).toBe(false);
  }, 600_000);
});
