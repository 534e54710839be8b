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
 * `limits.toolTimeout` (also up to 30 days) has it worse: the sandbox client's overrun timer
 * (`setTimeout(#onDeadline, budget)`, sandbox/sandbox-client.ts) fires at once, answers the call
 * ERR_SANDBOX_TIMEOUT and SIGKILLs the sandbox host every task of the worker shares, so every other
 * task's call in flight there fails ERR_SANDBOX_CRASHED (an effect it made included, as in
 * cancel-kill-fails-other-calls-on-host.test.ts). One task file with `toolTimeout: 600h` and one
 * isolate call per step stops every task on that worker from running a tool. The MCP pool already
 * caps its timer (`MAX_TIMER_MS`, executors/mcp-connection-pool.ts); these two do not.
 *
 * Suggested fix: a timer helper that waits in steps of at most 2^31 - 1 ms (or re-arms until the
 * instant is reached), used for every delay computed from a task's duration; or cap task
 * durations at 24 days in the schema. A property test over delays either side of 2^31 ms.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import { until } from '../../support/run-tool-watch';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';
import { codeOf, toolCall } from '../../sandbox/sandbox-test-kit';

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

// The same class for `limits.toolTimeout`: the sandbox client's overrun timer (sandbox/sandbox-client.ts,
// `setTimeout(#onDeadline, budget)`) and the isolate's wall clock (sandbox/run-in-isolate.ts) take the
// tool's timeout as their delay; so does a program's wall-time timer (sandbox/os/sandboxed-process.ts).
const CALLS = {
  'fs.write (isolate)': { call: { tool: 'fs.write', args: { path: 'note.txt', content: 'hello' } }, grants: {} },
  'proc.run (program)': { call: { tool: 'proc.run', args: { command: 'echo', args: ['hello'] } }, grants: { commands: ['echo'] } },
};
it.each<[string, keyof typeof CALLS, string]>([
  ['25 days (600h)', 'fs.write (isolate)', '600h'],
  ['24 hours (control)', 'fs.write (isolate)', '24h'],
  ['25 days (600h)', 'proc.run (program)', '600h'],
  ['24 hours (control)', 'proc.run (program)', '24h'],
])('a tool call with a toolTimeout of %s completes: %s', async (_what, kind, toolTimeout) => {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-far-tool-timeout-'));
  const { call, grants } = CALLS[kind];
  const result = await env.runTask({
    user: 'dana@example.com',
    intent: 'write one note',
    agent: { name: 'scribe', model: { driver: 'scripted', script: [call, { final: 'written' }] } },
    tools: { builtin: [call.tool] },
    grants: { tools: [call.tool], ...grants },
    resources: { workspace },
    limits: { toolTimeout },
  });
  expect({ status: result.status, step: result.steps[0]?.error?.code ?? 'ok' }).toEqual({ status: 'completed', step: 'ok' });
});

it("one task's toolTimeout over 24.8 days does not fail another task's call on the shared sandbox host", async () => {
  // Every task on a worker shares one SandboxClient and host. Task B's call waits on a loopback
  // server; task A's call (toolTimeout 600h) is sent meanwhile.
  const waiting: ServerResponse[] = [];
  const server: Server = createServer((_req, res) => waiting.push(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = await SandboxClient.start();
  try {
    const b = client.run(toolCall('const r = await warden.http.fetch(input.url); return r.status;', { url: `http://${host}/` }, { http: { allowedHosts: [host] } }, { timeoutMs: 60_000 }));
    await until(() => waiting.length > 0, "task B's request arrived");
    const a = await client.run(toolCall('return "a";', null, {}, { timeoutMs: 600 * 3_600_000 }));
    waiting[0]!.end('ok');
    expect({ a: codeOf(a), b: codeOf(await b) }).toEqual({ a: 'ok: "a"', b: 'ok: 200' });
  } finally {
    await client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}, 180_000);
