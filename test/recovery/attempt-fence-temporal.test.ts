/**
 * The fault of test/recovery/attempt-fence.test.ts through a real Temporal server and worker: a
 * `runTool` attempt whose heartbeats do not reach the server (an overloaded worker, a partition)
 * goes on running its tool; the server times it out after the 20 s heartbeat timeout and starts
 * attempt 2 one second later, on the same worker, while attempt 1 still runs. Attempt 1's tool
 * then stops at its own tool timeout and attempt 1 undoes the call's records: before the call
 * lease, those were attempt 2's (its a.txt taken out of the overlay and never committed, though
 * attempt 2 completed and its step reads done). Now attempt 2 stops attempt 1 first, waits for it
 * to end and undoes what it left; attempt 1 is fenced. The committed workspace holds exactly
 * attempt 2's writes.
 *
 * Real parts: Temporal's dev server and the Warden worker (real activities, sandbox host,
 * overlay and commit). The only thing the test changes is what the worker sends: attempt 1's
 * heartbeats are dropped (its activity Context's `heartbeat`), the way a worker too loaded to
 * beat looks to the server. The tool: writes a.txt, works until a time read from deadline.txt
 * (attempt 1: past its tool timeout; attempt 2: a few seconds), then writes b.txt.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import { parseTask } from '../../task/load-task-file';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const WORKFLOW_PREFIX = 'attempt-fence-temporal-';
/** runTool attempts seen for the test's workflows (attempt numbers in order). */
const attempts: number[] = [];

/** Drops the heartbeats of attempt 1 of the test's runTool: the server times it out while it runs. */
function silentFirstAttempt(context: Context): { inbound: ActivityInboundCallsInterceptor } {
  const ours = context.info.activityType === 'runTool' && (context.info.workflowExecution?.workflowId ?? '').startsWith(WORKFLOW_PREFIX);
  if (ours) {
    attempts.push(context.info.attempt);
    if (context.info.attempt === 1) (context as { heartbeat: (details?: unknown) => void }).heartbeat = () => undefined;
  }
  return { inbound: { execute: (input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) => next(input) } };
}

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [silentFirstAttempt] });
}, 120_000);
afterAll(async () => env?.close());

it("attempt 1 timed out by the server while its tool runs: the committed workspace holds exactly attempt 2's writes", async () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-temporal-'));
  // Attempt 1 works until its tool timeout (25 s) stops it.
  fs.writeFileSync(path.join(workspace, 'deadline.txt'), String(Date.now() + 10 * 60_000));
  const task = parseTask(
    {
      user: 'alice@example.com',
      intent: 'write slowly',
      policyPacks: [],
      agent: { name: 'writer', model: { driver: 'scripted', script: [{ tool: 'slow-writer', args: {} }, { final: 'done' }] } },
      tools: {
        builtin: ['fs.read', 'fs.write'],
        custom: [
          {
            name: 'slow-writer',
            description: 'writes a.txt, works until deadline.txt, writes b.txt',
            capabilities: ['fs.read', 'fs.write'],
            input: { type: 'object' },
            source: "warden.fs.write('a.txt', 'written'); const until = Number(warden.fs.read('deadline.txt')); while (Date.now() < until) {} warden.fs.write('b.txt', 'written'); return 'ok';",
          },
        ],
      },
      grants: { tools: ['slow-writer', 'fs.read', 'fs.write'] },
      limits: { toolTimeout: '25s', deadline: '3m' },
      resources: { workspace },
    },
    'attempt-fence-temporal.yaml',
    workspace,
  );
  const workflowId = `${WORKFLOW_PREFIX}${Date.now()}`;
  const handle = await env.start(task, workflowId);
  const { upper } = overlayPathsOf(TEST_STATE_DIR, taskKeyOf(workflowId, handle.firstExecutionRunId));
  const started = Date.now();
  for (let i = 0; !fs.existsSync(path.join(upper, 'a.txt')); i++) {
    if (i > 600) throw new Error("attempt 1 never wrote a.txt");
    await new Promise((r) => setTimeout(r, 100));
  }
  // Attempt 1 read its deadline; attempt 2 (about 21 s in) works until 2 s after attempt 1's tool timeout stopped it.
  await new Promise((r) => setTimeout(r, 1000));
  fs.writeFileSync(path.join(workspace, 'deadline.txt'), String(started + 27_000));
  const result = await followAgentTask(handle);

  expect(attempts).toEqual([1, 2]);
  const step = result.steps.find((s) => s.tool === 'slow-writer');
  expect({ status: result.status, executed: step?.executed, output: step?.output }).toEqual({ status: 'completed', executed: true, output: 'ok' });
  // Committed: both of attempt 2's files, nothing lost.
  expect(fs.readdirSync(workspace).sort()).toEqual(['a.txt', 'b.txt', 'deadline.txt']);
}, 180_000);
