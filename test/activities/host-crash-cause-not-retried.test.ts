/**
 * A tool call that crashes the shared sandbox host itself runs once: its activity does not run it
 * again to crash the replacement host (the host every task of the worker shares). Was an open
 * finding (s15, atk15, medium, `host-crash-retried-as-not-run.test.ts`): since 071cdc0 a call lost
 * with its host that had reached no capability was answered ERR_SANDBOX_CRASHED retryable, the
 * call that caused the loss included, so `runTool` ran it three times. The host now names the call
 * whose isolate V8 lost before it aborts (SandboxCrashedNotice) and the client answers that call
 * not retryable (test/sandbox/host-crash-cause-named.test.ts has the client's answers).
 * Should the first attempt's out-of-memory be contained (ERR_SANDBOX_MEMORY), it is not retried
 * either, and this passes.
 *
 * Real parts: a real Temporal server and worker (its own sandbox host), the scripted model.
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

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
