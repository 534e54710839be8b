/**
 * Open finding: a block (here `warden kill`) cancels a stdio MCP server's call in flight only on
 * the client side. The MCP client sends `notifications/cancelled` and the activity ends as
 * cancelled at once (mcp/mcp-connection.ts `callTool`), but nothing makes the server stop: a server
 * that ignores the notification goes on running the tool (here a child process it waits for). A
 * task that rolls back keeps its MCP servers until its compensations have run (agent-task.ts
 * `closeFirst`), so the saga (the overlay's discard) runs while the tool still runs and writes,
 * which the patch `warden-stop-calls-in-flight` promises never happens for a `proc.run` program
 * (test/workflows/calls-in-flight.test.ts).
 *
 * Observed from the worker (test/support/run-tool-watch.ts): when the task's first end activity
 * (`compensate`) starts, which processes of the tool's job are alive (host /proc). Expected: none.
 * No timing assertion: on the current code the job waits two minutes and is alive then.
 * Suggested fix: a cancelled call of a stdio server ends the server's process tree (or the session)
 * before the activity reports cancellation, as proc.run does; an HTTP server's call, which Warden
 * cannot kill, at least closes its session before the saga.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killTask } from '../../../client/kill-task';
import { followAgentTask } from '../../../client/start-agent-task';
import { issueApproverKey, type ApproverKeyFile } from '../../../identity/approval-decision';
import { openApproverStore } from '../../../identity/approver-registry';
import { parseTask } from '../../../task/load-task-file';
import { processesWith, runToolWatchInterceptor, until, watchRunToolOf, watchTaskEndOf } from '../../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';

const FIXTURES = join(__dirname, 'fixtures');

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor], mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
});

it('warden kill stops a stdio MCP tool that ignores notifications/cancelled before the saga runs', async () => {
  const marker = `warden-deaf-${randomUUID()}`;
  const workspace = await mkdtemp(join(tmpdir(), 'warden-deaf-mcp-'));
  const task = parseTask(
    {
      user: 'dana@example.com',
      intent: 'wait for the job',
      agent: { name: 'waiter', model: { driver: 'scripted', script: [{ tool: 'deaf.wait', args: { marker } }, { final: 'done' }] } },
      tools: { mcp: { deaf: { command: 'node', args: [join(FIXTURES, 'cancel-deaf-server.mjs')] } } },
      grants: { tools: ['deaf.wait'] },
      // The foundation pack refuses an MCP tool that does not declare its effects.
      policyPacks: [],
      limits: { toolTimeout: '900s' },
      resources: { workspace },
    },
    'deaf-mcp.yaml',
    REPO_ROOT,
  );
  const workflowId = `deaf-mcp-kill-${randomUUID()}`;
  const ended = watchRunToolOf(workflowId, marker);
  const taskEnd = watchTaskEndOf(workflowId, marker);
  const handle = await env.start(task, workflowId);
  // The tool's job runs (or the task ended first: its result says why).
  const early = followAgentTask(handle);
  const first = await Promise.race([until(() => processesWith(marker).length > 0, 'the tool started its job').then(() => undefined), early]);
  expect(first, JSON.stringify(first)).toBeUndefined();

  expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
  const result = await early;

  expect(result.status).toBe('blocked');
  expect(await ended).toMatchObject({ outcome: 'failed', error: 'CancelledFailure' });
  // The saga's first activity: the tool's job is dead by then.
  expect(await taskEnd).toMatchObject({ activity: 'compensate', runToolEnded: true, alive: [] });
}, 600_000);
