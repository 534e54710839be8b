/**
 * Attack: a program replaces a workspace file by a folder, or a folder by a file (what build
 * tools do every day: `rm -r build; touch build`). The kernel overlay records that; Warden's
 * commit cannot apply it. With the file→folder case the commit activity fails with a retryable
 * error after it has already replaced the files before it, and is retried until its attempts run
 * out: the workspace stays half-committed and the task hangs in `commitTask`. With the
 * folder→file case the commit fails at once (ERR_COMMIT_CONFLICT, although nobody else touched
 * the workspace) and the workflow fails with no task result, leaving its overlay behind.
 *
 * Expected: every task ends with a result (committed, or refused with the reason in the result)
 * and the workspace is all-or-nothing: never some of the task's files without the others.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

function listing(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? [`${e.name}/`, ...listing(path.join(dir, e.name)).map((x) => `${e.name}/${x}`)] : [e.name]))
    .sort();
}

describe('program writes the commit cannot apply', () => {
  it.each([
    ['a file replaced by a folder', 'echo new > a.txt; rm notes.txt; mkdir notes.txt; echo x > notes.txt/inner'],
    ['a folder replaced by a file', 'echo new > a.txt; rm -r dir; echo f > dir'],
  ])('%s: the task ends with a result and the workspace is all-or-nothing', async (_label, script) => {
    const workspace = makeTempDir('uncommittable');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'notes');
    fs.mkdirSync(path.join(workspace, 'dir'));
    fs.writeFileSync(path.join(workspace, 'dir', 'f'), 'f');
    const before = listing(workspace);
    const known = env.workflowIds.length;
    const run = env
      .runTask({
        user: 'sam@example.com',
        intent: 'rebuild the project',
        agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', script] } }, { final: 'done' }] } },
        tools: { builtin: ['proc.run'] },
        grants: { tools: ['proc.run'], commands: ['sh'] },
        resources: { workspace },
        limits: { toolTimeout: '30s' },
      })
      .then(
        (result) => ({ result, error: undefined as string | undefined }),
        (error: Error & { cause?: { message?: string } }) => ({ result: undefined, error: error.cause?.message ?? error.message }),
      );
    while (env.workflowIds.length === known) await new Promise((r) => setTimeout(r, 50));
    const workflowId = env.workflowIds.at(-1)!;
    const handle = env.client.workflow.getHandle(workflowId);
    // Wait for an event: the run ends, or its commit has failed and is being retried.
    let retrying: string | undefined;
    const ended = await Promise.race([
      run,
      (async () => {
        for (;;) {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          const commit = pending.find((a) => a.activityType?.name === 'commitTask' && (a.attempt ?? 0) >= 2);
          if (commit !== undefined) {
            retrying = `commitTask attempt ${commit.attempt}: ${commit.lastFailure?.message}`;
            return undefined;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })(),
    ]);
    const after = listing(workspace);
    if (retrying !== undefined) await handle.terminate('attack test cleanup');
    // (Only judged when the test did not terminate the workflow itself.)
    const overlayLeft = retrying === undefined && fs.existsSync(overlayPathsOf(TEST_STATE_DIR, taskKeyOf(workflowId)).dir);
    const allOrNothing = JSON.stringify(after) === JSON.stringify(before) || !after.includes('notes.txt') || (after.includes('a.txt') && !after.includes('dir/f'));
    expect({ stuckRetrying: retrying, workflowError: ended?.error, status: ended?.result?.status ?? null, partial: !allOrNothing ? after : false, overlayLeft }).toEqual({
      stuckRetrying: undefined,
      workflowError: undefined,
      status: expect.any(String),
      partial: false,
      overlayLeft: false,
    });
  }, 120_000);
});
