/**
 * Attack (issue 11, workspace quota): end a task tree while its program runs, and look for the
 * loop-mounted volume left behind.
 *
 * Cancelling the workflow runs the saga, which unmounts the volume and deletes its image (held).
 * Terminating it (`temporal workflow terminate`, the Web UI's button, a workflow execution timeout,
 * a reset) runs no workflow code: the tree's volume stays loop-mounted under the state folder and
 * its image stays on disk, after the worker stops too. Each such task keeps a loop device and up to
 * `limits.workspaceMb` of disk until someone unmounts it by hand; nothing (a restarted worker, a
 * sweep) releases the volumes of trees whose workflow is closed.
 * Fixed: a volume's owner (root workflow id, first run id) is recorded beside its image, and the
 * worker sweeps at start and every few minutes (recovery/volume-sweep.ts): a closed tree's volume
 * is unmounted and deleted, an open one's kept. Here the sweep is called as the worker calls it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overlayVolumeImageOf } from '../../recovery/overlay-volume';
import { taskKeyOf } from '../../recovery/recovery-paths';
import { describeNewestRunVia, sweepClosedVolumes, volumeOwnerFileOf } from '../../recovery/volume-sweep';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env);
});
afterAll(async () => {
  await env?.close();
  expect(overlayMounts()).toEqual([]);
});

const overlayMounts = () => fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(path.join(TEST_STATE_DIR, 'overlays')));

async function until(check: () => boolean | Promise<boolean>, what: string, tries = 2400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never: ${what}`);
}

describe('a task tree ended while its program runs', () => {
  it.each(['cancel', 'terminate'] as const)('leaves no volume mounted and no image (%s)', async (how) => {
    const folder = makeTempDir('cancel-volume');
    fs.writeFileSync(path.join(folder, 'a.txt'), 'a');
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'build the project',
        agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', 'echo started > started.txt; sleep 60'] } }, { final: 'built' }] } },
        tools: { builtin: ['proc.run'] },
        grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
        resources: { workspace: folder },
        limits: { toolTimeout: '900s', workspaceMb: 32 },
      },
      'cancel.yaml',
      REPO_ROOT,
    );
    const before = new Set(overlayMounts());
    const handle = await env.start(task, `cancel-volume-${how}-${Date.now()}`);
    const runId = (await handle.describe()).runId;
    const image = overlayVolumeImageOf(TEST_STATE_DIR, taskKeyOf(handle.workflowId, runId));
    // The program is running: its file is in the overlay's upper layer on the volume.
    await until(() => overlayMounts().some((line) => !before.has(line)) && fs.existsSync(path.join(TEST_STATE_DIR, 'overlays', taskKeyOf(handle.workflowId, runId), 'upper', 'started.txt')), 'the program started');
    const sweep = () => sweepClosedVolumes(TEST_STATE_DIR, describeNewestRunVia(env.client.workflowService, env.client.options.namespace));
    // While the tree runs, the sweep keeps its volume.
    expect(fs.existsSync(volumeOwnerFileOf(TEST_STATE_DIR, taskKeyOf(handle.workflowId, runId)))).toBe(true);
    expect(await sweep()).not.toContain(taskKeyOf(handle.workflowId, runId));
    expect(fs.existsSync(image)).toBe(true);
    if (how === 'cancel') {
      await handle.cancel();
      await handle.result().catch(() => undefined);
    } else {
      await handle.terminate('operator');
      // No workflow code runs: the worker's sweep (at start and every few minutes) releases it.
      expect(await sweep()).toContain(taskKeyOf(handle.workflowId, runId));
    }
    // Bounded wait (a loaded machine): the worker's cleanup of the cancelled call.
    await until(() => !fs.existsSync(image) && !overlayMounts().some((line) => !before.has(line)), `the volume of ${handle.workflowId} released (${how})`, 1200).catch(() => undefined);
    const left = { image: fs.existsSync(image), mounts: overlayMounts().filter((line) => !before.has(line)) };
    // Clean up what the fault leaves, so the machine keeps no mount of this test.
    for (const line of left.mounts) spawnSync('umount', ['-l', line.split(' ')[1]!]);
    fs.rmSync(image, { force: true });
    if (left.mounts.length > 0) fs.rmSync(path.join(TEST_STATE_DIR, 'overlays', taskKeyOf(handle.workflowId, runId)), { recursive: true, force: true });
    expect(left).toEqual({ image: false, mounts: [] });
  }, 600_000);
});
