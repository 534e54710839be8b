/**
 * OpenTelemetry export of a real run, received by a real OTLP/HTTP receiver on loopback: a
 * `warden run` process (its own worker, on the test Temporal server) runs a task whose agent is an
 * OpenAI-compatible model (a real HTTP server speaking the chat completions protocol) and whose
 * sub-agent is scripted, with OTEL_EXPORTER_OTLP_ENDPOINT pointing at the receiver. What arrives
 * must read in the GenAI conventions' terms:
 * - `invoke_agent <agent>` per agent, the sub-agent's inside the parent's trace;
 * - `chat <model>` (CLIENT) with the provider, server, request and response model, conversation id;
 * - `execute_tool <tool>` with the model's tool call id; policy checks as `check_policy <tool>`
 *   with no `gen_ai.*` operation (tool calls are not counted twice);
 * - `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` on the resource;
 * - no span of the CLI following the task (queries);
 * - GenAI metrics: operation duration, agent and tool durations, policy decisions;
 * and the custody ledger of the run still verifies with those spans in it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../custody/verify-ledger';
import { LedgerReader } from '../../custody/ledger-reader';
import type { TaskResult } from '../../task/task-run';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const API_KEY = 'sk-test-otlp-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
let receiver: OtlpReceiver;
let model: FakeOpenAIServer;
let dir: string;
let stateDir: string;
let result: TaskResult;
let exitCode: number | null;
let stderr = '';

function runWarden(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  model = await startFakeOpenAIServer();
  dir = await mkdtemp(join(tmpdir(), 'warden-otlp-'));
  stateDir = join(dir, 'state');
  await mkdir(join(dir, 'workspace'));
  await writeFile(join(dir, 'workspace', 'notes.txt'), 'alpha beta gamma');
  await writeFile(
    join(dir, 'task.yaml'),
    `user: carol@example.com
intent: Read notes.txt and have the workspace reviewed.
agent:
  name: planner
  model: { driver: openai-compatible, id: gpt-otlp, version: "2026-02", baseUrl: "${model.url}", apiKeyEnv: OTLP_TEST_MODEL_KEY }
tools: { builtin: [fs.read, fs.list] }
grants: { tools: [fs.read, fs.list], subagents: [reviewer] }
resources: { workspace: ./workspace }
subagents:
  reviewer:
    intent: List the workspace.
    agent: { name: reviewer, model: { driver: scripted, id: scripted-reviewer, script: [ { tool: fs.list, args: { path: . } }, { final: listed } ] } }
    tools: { builtin: [fs.list] }
    grants: { tools: [fs.list] }
`,
  );
  model.enqueue(
    toolCallsReply([toolCall('fs__read', { path: 'notes.txt' }, 'call_read_1')]),
    toolCallsReply([toolCall('spawn_subagent', { name: 'reviewer' }, 'call_spawn_2')]),
    toolCallsReply([toolCall('final_answer', { answer: 'notes read and reviewed', claims: ['read notes.txt'] }, 'call_final_3')]),
  );
  const { address, namespace } = testTemporalAddress();
  const run = await runWarden(['run', join(dir, 'task.yaml'), '--json', '--worker'], {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    WARDEN_STATE_DIR: stateDir,
    OTLP_TEST_MODEL_KEY: API_KEY,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'warden-otlp-e2e',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci,service.name=overridden-by-OTEL_SERVICE_NAME',
  });
  exitCode = run.code;
  stderr = run.stderr;
  result = JSON.parse(run.stdout) as TaskResult;
}, 300_000);

afterAll(async () => {
  // What was received, for people to look at (not asserted on): `.warden-test/otlp-sample.json`.
  if (receiver !== undefined) await writeFile(join(REPO_ROOT, '.warden-test', 'otlp-sample.json'), `${JSON.stringify({ spans: receiver.spans, metrics: receiver.metrics }, null, 1)}\n`);
  await receiver?.close();
  await model?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const named = (name: string) => receiver.spans.filter((s) => s.name === name);
const one = (name: string): ReceivedSpan => {
  const spans = named(name);
  expect(spans, `spans named ${name}: ${receiver.spans.map((s) => s.name).join(', ')}`).toHaveLength(1);
  return spans[0] as ReceivedSpan;
};
const parentOf = (span: ReceivedSpan) => receiver.spans.find((s) => s.spanId === span.parentSpanId);
/** The nearest ancestor (parent, grandparent, ...) named `prefix...`. */
const ancestorNamed = (span: ReceivedSpan, prefix: string): ReceivedSpan | undefined => {
  for (let at = parentOf(span); at !== undefined; at = parentOf(at)) if (at.name.startsWith(prefix)) return at;
  return undefined;
};

describe('OTLP export of a real run', () => {
  it('completes, and every export request decoded', () => {
    expect(exitCode, stderr).toBe(0);
    expect(result.status).toBe('completed');
    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(receiver.requests.filter((r) => !r.ok)).toEqual([]);
  });

  it('names agents, model calls and tool calls in GenAI terms, in one trace', () => {
    const root = result.workflowId;
    const child = `${root}/reviewer-1`;
    const planner = one('invoke_agent planner');
    const reviewer = one('invoke_agent reviewer');
    expect(planner.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner', 'gen_ai.agent.id': root, 'gen_ai.conversation.id': root, 'warden.outcome': 'completed' });
    expect(reviewer.attributes).toMatchObject({ 'gen_ai.agent.id': child, 'gen_ai.conversation.id': root, 'warden.agent.depth': 1 });
    expect(new Set(receiver.spans.filter((s) => s.attributes['warden.task.id'] === root).map((s) => s.traceId))).toEqual(new Set([planner.traceId]));
    expect(reviewer.traceId).toBe(planner.traceId);
    expect(ancestorNamed(reviewer, 'invoke_agent ')).toBe(planner);

    const chats = named('chat gpt-otlp');
    expect(chats).toHaveLength(3);
    for (const chat of chats) {
      expect(chat.kind).toBe('CLIENT');
      expect(chat.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-otlp',
        'gen_ai.response.model': 'gpt-otlp',
        'gen_ai.agent.name': 'planner',
        'gen_ai.conversation.id': root,
        'server.address': '127.0.0.1',
        'server.port': Number(new URL(model.url).port),
      });
      expect(ancestorNamed(chat, 'invoke_agent ')).toBe(planner);
    }
    const scriptedChats = named('chat scripted-reviewer');
    expect(scriptedChats).toHaveLength(2);
    for (const chat of scriptedChats) {
      expect(chat.attributes['gen_ai.provider.name']).toBe('warden.scripted');
      expect(ancestorNamed(chat, 'invoke_agent ')).toBe(reviewer);
    }

    const read = one('execute_tool fs.read');
    expect(read.kind).toBe('INTERNAL');
    expect(read.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'fs.read',
      'gen_ai.tool.type': 'function',
      // The model's own id for the call, as the OpenAI-compatible endpoint gave it.
      'gen_ai.tool.call.id': 'call_read_1',
      'warden.credential.jti': result.steps[0]?.credential?.jti,
    });
    expect(ancestorNamed(read, 'invoke_agent ')).toBe(planner);
    expect(ancestorNamed(one('execute_tool fs.list'), 'invoke_agent ')).toBe(reviewer);
  });

  it('records policy checks as their own operation, so tool executions are counted once', () => {
    const checks = receiver.spans.filter((s) => s.name.startsWith('check_policy '));
    expect(checks.map((s) => s.name).sort()).toEqual(['check_policy fs.list', 'check_policy fs.read', 'check_policy spawn:reviewer']);
    for (const check of checks) {
      expect(check.attributes).toMatchObject({ 'warden.operation.name': 'check_policy', 'warden.policy.decision': 'allow' });
      expect(Object.keys(check.attributes).filter((k) => k.startsWith('gen_ai.'))).toEqual([]);
    }
    expect(receiver.spans.filter((s) => s.attributes['gen_ai.operation.name'] === 'execute_tool')).toHaveLength(2);
  });

  it('honours OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and sends no polling spans', () => {
    expect(new Set(receiver.spans.map((s) => s.resource['service.name']))).toEqual(new Set(['warden-otlp-e2e']));
    expect(receiver.spans.every((s) => s.resource['deployment.environment.name'] === 'ci')).toBe(true);
    expect(receiver.spans.filter((s) => /^(QueryWorkflow|HandleQuery|DescribeWorkflow)/.test(s.name))).toEqual([]);
    // Attribute values are what OpenTelemetry allows: no workflow info objects (memo, search attributes) leave the process.
    const objects = receiver.spans.flatMap((s) => Object.entries(s.attributes).filter(([, v]) => typeof v === 'object' && !Array.isArray(v)).map(([k]) => `${s.name}: ${k}`));
    expect(objects).toEqual([]);
    // A bounded number of spans: the task's own work, not one per poll (the CLI polls every 250 ms).
    expect(receiver.spans.length).toBeLessThan(60);
  });

  it('sends GenAI metrics derived from the spans', () => {
    const metric = (name: string) => receiver.metrics.filter((m) => m.name === name);
    const durations = metric('gen_ai.client.operation.duration').flatMap((m) => m.points);
    expect(metric('gen_ai.client.operation.duration')[0]).toMatchObject({ unit: 's', type: 'histogram' });
    const openai = durations.find((p) => p.attributes['gen_ai.provider.name'] === 'openai');
    expect(openai).toMatchObject({ count: 3, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-otlp', 'server.address': '127.0.0.1' } });
    expect(openai?.attributes).not.toHaveProperty('warden.task.id');
    const agents = metric('gen_ai.invoke_agent.duration').flatMap((m) => m.points);
    expect(agents.map((p) => p.attributes['gen_ai.agent.name']).sort()).toEqual(['planner', 'reviewer']);
    const tools = metric('gen_ai.execute_tool.duration').flatMap((m) => m.points);
    expect(tools.map((p) => [p.attributes['gen_ai.tool.name'], p.count]).sort()).toEqual([
      ['fs.list', 1],
      ['fs.read', 1],
    ]);
    expect(metric('warden.policy.decisions').flatMap((m) => m.points)).toEqual([expect.objectContaining({ value: 3, attributes: { 'warden.policy.decision': 'allow' } })]);
    expect(receiver.metrics.every((m) => m.resource['service.name'] === 'warden-otlp-e2e')).toBe(true);
  });

  it('keeps the custody ledger verifiable, with the same spans in it, and no API key anywhere', () => {
    expect(verifyLedger({ stateDir }, { taskId: result.workflowId })).toMatchObject({ ok: true });
    const reader = LedgerReader.open({ stateDir });
    let names: string[];
    try {
      names = reader.records(result.workflowId).map((r) => (r.body as { name: string }).name);
    } finally {
      reader.close();
    }
    expect(names).toEqual(expect.arrayContaining(['invoke_agent planner', 'invoke_agent reviewer', 'chat gpt-otlp', 'execute_tool fs.read', 'check_policy fs.read']));
    expect(JSON.stringify(receiver.spans)).not.toContain(API_KEY);
  });
});
