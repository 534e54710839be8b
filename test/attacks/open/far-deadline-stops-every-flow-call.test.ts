/**
 * Open finding (s13, atk13): on the data flow, a task whose deadline is more than 24.8 days away
 * has every tool call stopped at once with ERR_DEADLINE_EXCEEDED, and the task fails.
 *
 * The worker stops a data-flow call at the task's deadline (`callStop`, activities/run-tool.ts,
 * patch `warden-flow-call-deadline`) with `setTimeout(expire, deadlineAt - Date.now())`. Node's
 * timers take at most 2^31 - 1 ms (24.855 days); a longer delay prints a TimeoutOverflowWarning and
 * is set to 1 ms. The task file allows a deadline up to 30 days (`MAX_DURATION_MS`,
 * task/task-file-limits.ts; durations in ms/s/m/h, so `600h` = 25 days). So the call's "deadline"
 * fires a millisecond after it starts, the tool is stopped (its program killed, isolate disposed)
 * and the activity fails ERR_DEADLINE_EXCEEDED, not retryable: the task ends `timed_out`, 25 days
 * early (1 of 1; Node prints the warning on the worker's stderr). Same class: any
 * `setTimeout` whose delay comes from a task's duration (an approval's wait, a grant's or an MCP
 * session's expiry, `expiresAt * 1000 - now`) can overflow the same way.
 *
 * Real parts: a real Temporal server and worker, the data flow, the built-in fs.write. Rows: 600h
 * (25 days) on the data flow fails; 24h on the data flow and 600h on the original loop, controls,
 * complete.
 *
 * Suggested fix: a timer helper that waits in steps of at most 2^31 - 1 ms (or re-arms until the
 * instant is reached), used for every delay computed from a task's duration; or cap task
 * durations at 24 days in the schema. A property test over delays either side of 2^31 ms.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

it.each<[string, string, boolean]>([
  ['25 days (600h), data flow', '600h', true],
  ['24 hours, data flow (control)', '24h', true],
  ['25 days (600h), original loop (control)', '600h', false],
])('a task with a deadline of %s completes its one write', async (_what, deadline, dataFlow) => {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-far-deadline-'));
  const result = await env.runTask({
    user: 'dana@example.com',
    intent: 'write one note',
    agent: { name: 'scribe', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'note.txt', content: 'hello' } }, { final: 'written' }] } },
    tools: { builtin: ['fs.write'] },
    grants: { tools: ['fs.write'] },
    resources: { workspace },
    limits: { deadline },
    ...(dataFlow ? { dataFlow: true } : {}),
  });
  expect({ status: result.status, step: result.steps[0]?.error?.code ?? 'ok' }).toEqual({ status: 'completed', step: 'ok' });
});
