/**
 * Attack (issue 11, workspace quota): exhaust the volume's inodes instead of its blocks.
 *
 * A tree that runs programs has its overlay on a loop-mounted ext4 volume of `limits.workspaceMb`
 * MiB (recovery/overlay-volume.ts). The volume keeps a reserve of blocks for Warden (undo records,
 * the kernel overlay's work folder), but no reserve of inodes, and the check after a call looks at
 * free blocks and file sizes only. A program that creates empty files until the kernel says ENOSPC
 * fills the inode table with 0 bytes: its own step looks fine (no ERR_WORKSPACE_QUOTA), and the
 * tree's next program call cannot even make the kernel overlay's work folder. That call should
 * fail ERR_WORKSPACE_QUOTA naming the limit (as a block-full volume does), not a raw ENOSPC
 * naming Warden's state folder.
 * Fixed (h/quotafull, recovery/overlay-volume.ts): a call that leaves fewer than 64 free inodes
 * fails ERR_WORKSPACE_QUOTA and its added files are removed, so the tree's next calls can run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env);
});
afterAll(async () => {
  await env?.close();
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(path.join(TEST_STATE_DIR, 'overlays')));
  expect(mounts).toEqual([]);
});

const COMMANDS = ['sh', 'echo', 'df'];

function proc(script: string) {
  return { tool: 'proc.run', args: { command: 'sh', args: ['-c', script] } };
}

describe('a program that fills the workspace volume with inodes, not bytes', () => {
  it('is bounded, and the tree\'s next calls fail ERR_WORKSPACE_QUOTA without naming Warden\'s folders', async () => {
    const folder = makeTempDir('inode-fill');
    fs.writeFileSync(path.join(folder, 'a.txt'), 'a');
    // Empty files until the inode table is full (a 16 MiB ext4 has a few thousand inodes).
    const fill = 'i=0; while : > f$i 2>/dev/null; do i=$((i+1)); done; echo made $i; df -i . | tail -1';
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'build the project',
      agent: { name: 'builder', model: { driver: 'scripted', script: [proc(fill), proc('echo second'), { tool: 'fs.write', args: { path: 'b.txt', content: 'b' } }, { final: 'built' }] } },
      tools: { builtin: ['proc.run', 'fs.write'] },
      grants: { tools: ['proc.run', 'fs.write'], commands: COMMANDS },
      resources: { workspace: folder },
      limits: { toolTimeout: '300s', workspaceMb: 16, onDeny: 'continue' },
    });
    const steps = JSON.stringify(result.steps, null, 1).slice(0, 6000);
    // Every step that failed failed with the quota's error, naming the limit.
    const failed = result.steps.filter((step) => step.error !== undefined);
    // The filling call itself ran into the bound.
    expect(result.steps[0]?.error?.code, steps).toBe('ERR_WORKSPACE_QUOTA');
    expect(failed.length, steps).toBeGreaterThan(0);
    for (const step of failed) {
      expect(step.error?.code, steps).toBe('ERR_WORKSPACE_QUOTA');
      expect(step.error?.message, steps).toMatch(/limits\.workspaceMb/);
      expect(step.error?.message, steps).not.toContain(TEST_STATE_DIR);
    }
  }, 600_000);
});
