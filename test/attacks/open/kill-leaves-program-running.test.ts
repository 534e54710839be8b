/**
 * Open finding: `warden kill` (and a monitor's block) stops no tool in flight. The kill blocks the
 * task (no further action starts, its grant is revoked) and remediates it, but the workflow never
 * requests the cancellation of the `runTool` activity it awaits: a `proc.run` program goes on to
 * its end (or `toolTimeout`), and only then are the compensations run. A cancel or terminate
 * does stop it (test/activities/run-tool-cancel-stops-program.test.ts).
 * Fix (a workflow change, behind patched()): run each tool step in its own CancellationScope and
 * cancel it from the block; the activity then ends as cancelled and its program is killed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killTask } from '../../../client/kill-task';
import { followAgentTask } from '../../../client/start-agent-task';
import { issueApproverKey, type ApproverKeyFile } from '../../../identity/approval-decision';
import { openApproverStore } from '../../../identity/approver-registry';
import { parseTask } from '../../../task/load-task-file';
import { processesWith, runToolWatchInterceptor, until, watchRunToolOf } from '../../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
});

it('warden kill stops the program the task is running', async () => {
  const marker = `warden-kill-${randomUUID()}`;
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'run a long program',
      agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', `sleep 120; : ${marker}`] } }, { final: 'done' }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
      limits: { toolTimeout: '900s' },
    },
    'kill-run.yaml',
    REPO_ROOT,
  );
  const workflowId = `kill-run-${randomUUID()}`;
  const ended = watchRunToolOf(workflowId, marker);
  const handle = await env.start(task, workflowId);
  await until(() => processesWith(marker).length > 0, 'the program started');
  expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
  // On the current code the activity ends only with the program (120 s later), and completes.
  expect(await ended).toEqual({ outcome: 'failed', error: 'CancelledFailure', alive: [] });
  expect((await followAgentTask(handle)).status).toBe('blocked');
}, 600_000);
