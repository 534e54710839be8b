/**
 * Attack (issue 11, workspace quota): hide files from the quota's size walk behind a path longer
 * than PATH_MAX.
 *
 * After each program call and before the commit, Warden sums the sizes of the overlay's files
 * (`apparentBytesOf`, recovery/overlay-volume.ts) because sparse files cost the volume nothing but
 * are written out whole by a commit. The walk joins absolute paths and skips any folder it cannot
 * read. A program (working with relative paths, as the kernel allows) makes a chain of folders
 * whose full path is past 4096 bytes and puts sparse files of 200 MiB each at the bottom: the
 * walk cannot open that folder, counts 0 bytes there, and the step passes. The tree should be
 * bounded (ERR_WORKSPACE_QUOTA) whatever the depth, the commit should not fail on a raw
 * ENAMETOOLONG, and the volume should not be left behind.
 * Found: a raw `Error` ENAMETOOLONG naming `<state folder>/overlays/<task key>/upper/...`. Fixed:
 * every walk of the overlay refuses a path past WORKSPACE_DEPTH_MAX folders or
 * WORKSPACE_PATH_MAX_BYTES (recovery/overlay-layer.ts) and fails closed on a folder it cannot read,
 * ERR_WORKSPACE_QUOTA naming the workspace-relative path (test/recovery/workspace-walk-bounds.test.ts).
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
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(path.join(TEST_STATE_DIR, 'overlays')));
  expect(mounts).toEqual([]);
});

const COMMANDS = ['sh', 'mkdir', 'truncate', 'seq', 'echo'];

describe('files past PATH_MAX in the workspace overlay', () => {
  it('count toward limits.workspaceMb', async () => {
    const folder = makeTempDir('deep-fill');
    fs.writeFileSync(path.join(folder, 'a.txt'), 'a');
    // 100 folders of 50 characters: the bottom is about 5,100 bytes below /workspace.
    const name = 'd'.repeat(50);
    const deep = `for i in $(seq 1 100); do mkdir ${name} && cd ${name} || exit 3; done; for i in $(seq 1 10); do truncate -s 200M sparse-$i || exit 4; done; echo done`;
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'build the project',
      agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', deep] } }, { final: 'built' }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: COMMANDS },
      resources: { workspace: folder },
      limits: { toolTimeout: '300s', workspaceMb: 64 },
    });
    const report = JSON.stringify({ status: result.status, error: (result as { error?: unknown }).error, steps: result.steps.map((s) => ({ output: s.output, error: s.error })) }).slice(0, 4000);
    // The program's step itself ran into the bound (2 GB of files in a 64 MiB workspace).
    expect(result.steps[0]?.error?.code, report).toBe('ERR_WORKSPACE_QUOTA');
    expect(report).not.toMatch(/ENAMETOOLONG/);
    // The error names workspace-relative paths only: never Warden's state folder or the task key.
    expect(report).not.toContain(TEST_STATE_DIR);
    expect(report).not.toContain(taskKeyOf(result.workflowId, result.runId));
    expect(fs.existsSync(overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(result.workflowId, result.runId))), report).toBe(false);
  }, 600_000);
});
