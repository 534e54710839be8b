/**
 * Regression (s13, atk13, was test/attacks/open/task-duration-over-24-days-overflows-timers.test.ts):
 * timers armed with a task's duration overflowed. Node's timers take at most 2^31 - 1 ms
 * (24.855 days) and set a longer delay to 1 ms (TimeoutOverflowWarning); task files allow
 * durations up to 30 days (`MAX_DURATION_MS`, task/task-file-limits.ts). So `limits.deadline: 600h`
 * on the data flow stopped the first call at once (`callStop`, activities/run-tool.ts), ending the
 * task `timed_out`; `limits.toolTimeout: 600h` failed every isolate call (run-in-isolate.ts's wall
 * clock) and every `proc.run` program (sandboxed-process.ts's wall-time timer) ERR_SANDBOX_TIMEOUT,
 * and the sandbox client's overrun timer SIGKILLed the host every task of the worker shares,
 * failing another task's call in flight ERR_SANDBOX_CRASHED; an MCP call's SDK timer and a model
 * request's SDK timer overflowed the same way.
 *
 * Now every such timer is a long timer (long-timer.ts: steps of at most 2^31 - 1 ms; scan in
 * test/long-timer-scan.test.ts), a library's own timer is given at most the cap
 * (`libraryTimeoutMs`), and the fields only a library times, a model's `requestTimeout` and an MCP
 * server's `timeout`, are refused past 24 days where the task file is read (exit 2, naming the field).
 *
 * Real parts: a real Temporal server and worker, the data flow, the built-in fs.write, proc.run in
 * bubblewrap, a real SandboxClient and host, server-everything over streamable HTTP, the OpenAI
 * SDK against a loopback server, the CLI. Rows at 24h and the original loop are controls.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { OpenAIDriver, type OpenAIModel } from '../drivers/openai-driver';
import { McpConnection } from '../mcp/mcp-connection';
import { McpHttpServerSchema } from '../mcp/mcp-server-config';
import { SandboxClient } from '../sandbox/sandbox-client';
import { TaskFileError } from '../errors';
import { loadTaskFile } from '../task/load-task-file';
import { TaskSchema } from '../task/task-schema';
import { startEverythingHttpServer, testStartContext, textOf } from './mcp/mcp-test-kit';
import { startFakeOpenAIServer, textReply } from './support/fake-openai-server';
import { until } from './support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from './support/warden-test-env';
import { codeOf, toolCall } from './sandbox/sandbox-test-kit';

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

it('an MCP call with a timeout of 25 days (600h) is answered', async () => {
  const server = await startEverythingHttpServer();
  let connection: McpConnection | undefined;
  try {
    connection = await McpConnection.open('everything', McpHttpServerSchema.parse({ url: server.url }), testStartContext({ lifetimeMs: 600 * 3_600_000 }));
    const result = await connection.callTool('echo', { message: 'far' }, { timeoutMs: 600 * 3_600_000, pin: connection.listing.hash });
    expect(textOf(result)).toContain('far');
  } finally {
    await connection?.close();
    await server.stop();
  }
}, 120_000);

it('a model request given a timeout of 25 days (600h) is answered (the SDK gets at most the cap)', async () => {
  const server = await startFakeOpenAIServer();
  try {
    const task = TaskSchema.parse({
      user: 'alice',
      intent: 'say hi',
      agent: { name: 'main', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: server.url, requestTimeout: '60s' } },
    });
    // Not through a task file (which is refused past 24 days): what a model given otherwise would reach the driver with.
    const model = { ...(task.agent.model as OpenAIModel), requestTimeout: '600h' };
    server.enqueue(textReply('hi'));
    const turn = await new OpenAIDriver(model, { env: {} }).proposeTurn({ task, turn: 0, steps: [], tools: [], subagents: [] });
    expect(turn.actions).toMatchObject([{ type: 'final', answer: 'hi' }]);
  } finally {
    await server.close();
  }
});

// Fields only a library's own timer measures: refused past 24 days where the task file is read.
const head = 'user: alice@example.com\nintent: say hi\nagent:\n  name: main\n';
const openaiModel = (timeout: string) => `${head}  model:\n    driver: openai-compatible\n    id: gpt-test\n    baseUrl: http://127.0.0.1:9/v1\n    requestTimeout: ${timeout}\n`;
const mcpServer = (timeout: string) => `${head}  model:\n    driver: scripted\n    script:\n      - final: hi\ntools:\n  mcp:\n    remote:\n      url: http://127.0.0.1:9/mcp\n      timeout: ${timeout}\n`;
it.each<[string, string, string | undefined]>([
  ['requestTimeout 577h', openaiModel('577h'), 'agent.model.requestTimeout'],
  ['requestTimeout 576h (24 days, control)', openaiModel('576h'), undefined],
  ["an MCP server's timeout 600h", mcpServer('600h'), 'tools.mcp.remote.timeout'],
  ["an MCP server's timeout 576h (control)", mcpServer('576h'), undefined],
])('a task file with %s is refused naming the field, or loads', async (_what, text, field) => {
  const dir = await mkdtemp(join(tmpdir(), 'warden-long-duration-'));
  const file = join(dir, 'task.yaml');
  await writeFile(file, text);
  const error = await loadTaskFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (field === undefined) return expect(error).toBeUndefined();
  expect(error).toBeInstanceOf(TaskFileError);
  expect((error as TaskFileError).issues.filter((i) => i.path === field).map((i) => i.message)).toEqual([expect.stringMatching(/at most 24 days \(576h\)/)]);
});

it('warden run refuses a requestTimeout over 24 days with exit 2 naming the field', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warden-long-duration-cli-'));
  await writeFile(join(dir, 'task.yaml'), openaiModel('600h'));
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TELEMETRY: '0' };
  const result = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'task.yaml'], { cwd: dir, env, timeout: 60_000 }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('agent.model.requestTimeout: at most 24 days (576h)');
}, 90_000);
