/**
 * Open finding (s15, atk15), medium: a tool call that crashes the shared sandbox host itself is
 * answered "reached no capability, so nothing of it happened", retryable, and its activity runs it
 * again: the host every task of the worker shares is crashed once per attempt (3), and every other
 * call in flight on it each time is lost (one that had reached a capability fails, not retryable).
 *
 * Since 071cdc0 the client answers a call lost with its host ERR_SANDBOX_CRASHED *retryable* when
 * the host had sent no reached notice for it (`lostWithHost`, sandbox/sandbox-client.ts), and
 * `runTool` turns that into a retryable ToolError (activities/run-tool.ts). That reasoning holds
 * for a bystander (another call's overrun or cancel on a wedged host, an unrelated crash), not for
 * the call that crashed the host: a tool that exhausts its isolate's memory the way V8 cannot
 * contain (tool-oom-aborts-shared-sandbox-host.test.ts) aborts the host with no capability reached,
 * and is run again, on the replacement host, to crash it again. Before, such a call was answered
 * ERR_SANDBOX_CRASHED not retryable: one crash.
 *
 * Reproduce: `npx vitest run --config vitest.open-findings.config.mts test/attacks/open/host-crash-retried-as-not-run.test.ts`.
 * Seen (2 runs): 3 attempts of `runTool`; the first two crashed the host (2 host exits, the worker
 * started a new host each time), the third was contained (ERR_SANDBOX_MEMORY): which allocation V8
 * fails catastrophically varies, so a retry is also a retry of the crash.
 *
 * Suggested fix: tell the crashing call apart before the host aborts: `onCatastrophicError` is the
 * isolate's (IsolatePool knows which call leased it), so the host can write a notice for that call
 * on the notice pipe (synchronously, as the reached notices) before `process.abort()`; the client
 * answers that call ERR_SANDBOX_MEMORY (or ERR_SANDBOX_CRASHED) not retryable, and only the other
 * calls lost with the host retryable. Where the cause cannot be told (a crash with no notice),
 * answer every call that was running in an isolate at the time not retryable.
 *
 * Real parts: a real Temporal server and worker (its own sandbox host), the scripted model.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskResult } from '../../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

/** runTool attempts, by workflow id. */
const attempts = new Map<string, number[]>();
const countAttempts: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      if (ctx.info.activityType === 'runTool') {
        const id = ctx.info.workflowExecution?.workflowId ?? '';
        attempts.set(id, [...(attempts.get(id) ?? []), ctx.info.attempt]);
      }
      return next(input);
    },
  },
});

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [countAttempts] });
}, 300_000);
afterAll(async () => env?.close());

it('a call that crashes the shared sandbox host is not run again to crash it again', async () => {
  const name = `indexer-${Math.random().toString(36).slice(2, 8)}`;
  const workflowId = `test-${name}`;
  const exits = env.worker.sandbox.stats.hostExits;
  const result: TaskResult = await env.runTask(
    {
      user: 'erin@example.com',
      intent: 'index the words',
      agent: { name, model: { driver: 'scripted', script: [{ tool: 'index', args: { words: 'a b c' } }, { final: 'indexed' }] } },
      tools: {
        custom: [
          {
            name: 'index',
            description: 'indexes words (and, here, everything after them)',
            input: { type: 'object', properties: { words: { type: 'string' } }, required: ['words'] },
            source: 'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, input.words);',
          },
        ],
      },
      grants: { tools: ['index'] },
      limits: { toolTimeout: '60s' },
    },
    { workflowId },
  );
  // The call that crashed the host runs once: the host every task shares dies once, not per attempt.
  // (Should the first attempt's OOM be contained, ERR_SANDBOX_MEMORY, it is not retried either: this passes.)
  expect({ attempts: attempts.get(workflowId), atMostOneHostCrash: env.worker.sandbox.stats.hostExits - exits <= 1, step: result.steps[0]?.error?.code }).toEqual({
    attempts: [1],
    atMostOneHostCrash: true,
    step: expect.stringMatching(/^ERR_SANDBOX_(CRASHED|MEMORY)$/),
  });
}, 300_000);
