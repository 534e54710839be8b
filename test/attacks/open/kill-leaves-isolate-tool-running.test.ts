/**
 * Open finding: a block (here `warden kill`) does not stop a tool that runs in the isolate (a
 * custom tool, or a built-in such as http.fetch or sql.query): only `proc.run` programs and MCP
 * requests take the activity's cancellationSignal (activities/run-tool.ts -> executors/); the
 * sandbox host's isolate call does not (sandbox/sandbox-client.ts). Since the patch
 * `warden-stop-calls-in-flight` the workflow waits for the cancelled call to complete
 * (WAIT_CANCELLATION_COMPLETED), so the kill's end of the task, its saga and the grant's
 * revocation, waits for the tool's own timeout, while the tool goes on with its capabilities.
 *
 * The model's `http.fetch` reaches a granted host that holds the request open (a tarpit on
 * loopback); the task is killed once the request arrived. Observed from the worker
 * (test/support/run-tool-watch.ts): how `runTool` ended. Expected: as cancelled
 * (CancelledFailure), as a `proc.run` call does (test/workflows/calls-in-flight.test.ts). On the
 * current code the fetch goes on until the call's own timeout (60 s here; a task's `toolTimeout`
 * may be far longer) and the activity fails with the isolate's timeout (no timing assertion:
 * the outcome differs). Suggested fix: the sandbox client takes the activity's signal and, on
 * abort, disposes of the call's isolate (and its pending capability requests) and throws the
 * signal's reason, as executeProcessCall does.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killTask } from '../../../client/kill-task';
import { followAgentTask } from '../../../client/start-agent-task';
import { issueApproverKey, type ApproverKeyFile } from '../../../identity/approval-decision';
import { openApproverStore } from '../../../identity/approver-registry';
import { parseTask } from '../../../task/load-task-file';
import { runToolWatchInterceptor, watchRunToolOf, watchTaskEndOf } from '../../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';

/** A host that takes every request and never answers it (until the test ends). */
let tarpit: Server;
let requested: () => void;
const arrived = new Promise<void>((resolve) => (requested = resolve));

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
beforeAll(async () => {
  tarpit = createServer(() => requested());
  await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
  tarpit?.closeAllConnections();
  await new Promise((resolve) => tarpit?.close(resolve));
});

it('warden kill stops an http.fetch running in the isolate, and the task ends after it', async () => {
  const marker = `warden-isolate-${randomUUID()}`;
  const host = `127.0.0.1:${(tarpit.address() as AddressInfo).port}`;
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: `fetch the report at http://${host}/report`,
      agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${host}/report` } }, { final: 'done' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [host] },
      resources: { hosts: [host] },
      limits: { toolTimeout: '60s' },
    },
    'isolate-kill.yaml',
    REPO_ROOT,
  );
  const workflowId = `isolate-kill-${randomUUID()}`;
  const ended = watchRunToolOf(workflowId, marker);
  const taskEnd = watchTaskEndOf(workflowId, marker);
  const handle = await env.start(task, workflowId);
  // The request is held (or the task ended first: its result says why).
  const early = followAgentTask(handle);
  const first = await Promise.race([arrived.then(() => undefined), early]);
  expect(first, JSON.stringify(first)).toBeUndefined();

  expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
  const result = await early;

  expect(result.status).toBe('blocked');
  // The activity ended as cancelled: the isolate call was stopped, not left to its timeout.
  expect(await ended, JSON.stringify(result.steps.map((s) => s.error))).toMatchObject({ outcome: 'failed', error: 'CancelledFailure' });
  expect(await taskEnd).toMatchObject({ runToolEnded: true });
}, 600_000);
