/**
 * Large tool outputs on the original loop (issue 12, item 4): a task that cannot take the data
 * flow (it has a sub-agent, or does not opt in) and whose tool returns 50 outputs of 900 KB. Each
 * output used to go into history whole, and every policy check carried all earlier outputs, so
 * Temporal terminated the task a few steps in (`Input exceeds size limit`: no saga, no result).
 * Now (patch `warden-claim-check-outputs`) the activity checks an output over 16 KiB into the
 * blob store and history holds its claim check; the model, the policy checks and the client read
 * the real value. The model here is an OpenAI-compatible server on loopback: it records the
 * SHA-256 of every tool result it was sent, so the test knows the model saw the real outputs.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import { isClaimCheckRef } from '../../task/data-refs';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { historiesOfRuns, replayAllRuns } from '../support/replay-runs';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer, type RecordedRequest } from '../support/fake-openai-server';

const { History } = temporal.api.history.v1;
const OUTPUT_CHARS = 900 * 1024;
const BIG_TOOL = {
  name: 'big',
  description: '900 KB of output',
  input: { type: 'object' },
  source: `return 'x'.repeat(${OUTPUT_CHARS} - 16) + String(input.n).padStart(16, '0');`,
};

/** What the tool returns for `n`, and what the model must be sent for it (the OpenAI `tool` message's content). */
const outputOf = (n: number) => 'x'.repeat(OUTPUT_CHARS - 16) + String(n).padStart(16, '0');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const sentDigestOf = (n: number) => sha256(JSON.stringify({ output: outputOf(n) }));

let env: WardenTestEnv;
let model: FakeOpenAIServer;
beforeAll(async () => {
  env = await startWardenTestEnv();
  model = await startFakeOpenAIServer();
});
afterAll(async () => {
  await env?.close();
  await model?.close();
});

/** Digests of the tool results each model request carried, in request order (the bodies are dropped: they are tens of MB). */
const received: string[][] = [];
function recording(reply: ReturnType<typeof toolCallsReply>) {
  return (request: RecordedRequest) => {
    const body = request.body as { messages: { role: string; content: string | null }[] };
    received.push(body.messages.filter((m) => m.role === 'tool').map((m) => sha256(m.content ?? '')));
    request.body = undefined;
    request.rawBody = '';
    return reply;
  };
}

const bigCalls = (from: number, count: number) => Array.from({ length: count }, (_, i) => toolCall('big', { n: from + i }));

interface Ran {
  workflowId: string;
  result: TaskResult;
  raw: TaskResult;
  historyBytes: number;
  seconds: number;
}

async function run(name: string, turns: ReturnType<typeof toolCallsReply>[], extra: Record<string, unknown> = {}): Promise<Ran> {
  const workspace = await mkdtemp(path.join(tmpdir(), `warden-${name}-`));
  received.length = 0;
  model.enqueue(...turns.map(recording));
  const task = parseTask(
    {
      user: 'ops@example.com',
      intent: `read fifty large outputs (${name})`,
      agent: { name: 'reader', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
      tools: { custom: [BIG_TOOL] },
      grants: { tools: ['big'] },
      limits: { maxSteps: 60, deadline: '1h', toolTimeout: '60s' },
      resources: { workspace },
      ...extra,
    },
    `${name}.yaml`,
    REPO_ROOT,
  );
  const workflowId = `original-loop-big-${name}-${Date.now()}`;
  const started = Date.now();
  const handle = await env.start(task, workflowId);
  const result = await followAgentTask(handle, undefined, { blobs: openBlobStore(TEST_STATE_DIR) });
  const seconds = (Date.now() - started) / 1000;
  const raw = (await env.client.workflow.getHandle(workflowId).result()) as TaskResult;
  const historyBytes = (await historiesOfRuns(env.client, workflowId)).reduce((sum, h) => sum + History.encode(h).finish().length, 0);
  process.stderr.write(`${name}: ${result.status} in ${seconds.toFixed(1)} s, ${historyBytes} history bytes, ${Math.round(historyBytes / 50)} B per step\n`);
  return { workflowId, result, raw, historyBytes, seconds };
}

describe('50 outputs of 900 KB on the original loop', () => {
  const ran: Ran[] = [];

  it('completes without the data flow; the model is sent every real output, history holds claim checks', async () => {
    const one = await run('plain', [toolCallsReply(bigCalls(0, 25)), toolCallsReply(bigCalls(25, 25)), toolCallsReply([toolCall('final_answer', { answer: 'read them all' })])]);
    ran.push(one);
    expect(one.result.status, one.result.reason).toBe('completed');
    expect(one.result.steps.map((s) => s.output)).toEqual(Array.from({ length: 50 }, (_, n) => outputOf(n)));
    expect(one.raw.steps.every((s) => isClaimCheckRef(s.output))).toBe(true);
    // The model's turns after the calls were sent the real values, in order.
    expect(received).toEqual([[], Array.from({ length: 25 }, (_, n) => sentDigestOf(n)), Array.from({ length: 50 }, (_, n) => sentDigestOf(n))]);
    // 50 x 900 KB is 46 MB; history holds references.
    expect(one.historyBytes).toBeLessThan(1024 * 1024);
  }, 900_000);

  it('completes when a sub-agent makes some of the calls (its outputs reach the client, not its parent\'s history)', async () => {
    const helper = {
      intent: 'read ten large outputs',
      agent: { name: 'helper', model: { driver: 'scripted', script: [...Array.from({ length: 10 }, (_, i) => ({ tool: 'big', args: { n: 100 + i } })), { final: 'helped' }] } },
      tools: { custom: [BIG_TOOL] },
      grants: { tools: ['big'] },
    };
    const two = await run(
      'subagent',
      [
        toolCallsReply(bigCalls(0, 20)),
        toolCallsReply([toolCall('spawn_subagent', { name: 'helper' })]),
        toolCallsReply(bigCalls(20, 20)),
        toolCallsReply([toolCall('final_answer', { answer: 'read them all' })]),
      ],
      { grants: { tools: ['big'], subagents: ['helper'] }, subagents: { helper } },
    );
    ran.push(two);
    expect(two.result.status, two.result.reason).toBe('completed');
    expect(two.result.steps.filter((s) => s.kind !== 'spawn').map((s) => s.output)).toEqual(Array.from({ length: 40 }, (_, n) => outputOf(n)));
    expect(two.result.children[0]?.steps.filter((s) => s.executed).map((s) => s.output)).toEqual(Array.from({ length: 10 }, (_, i) => outputOf(100 + i)));
    expect(two.raw.children[0]?.steps.filter((s) => s.executed).every((s) => isClaimCheckRef(s.output))).toBe(true);
    expect(received.at(-1)).toEqual(Array.from({ length: 41 }, (_, k) => (k === 20 ? received.at(-1)![20]! : sentDigestOf(k < 20 ? k : k - 1))));
    expect(two.historyBytes).toBeLessThan(2 * 1024 * 1024);
  }, 900_000);

  it('ends a task whose arguments would still exceed the payload limit with ERR_PAYLOAD_TOO_LARGE, and rolls it back', async () => {
    const workspace = await mkdtemp(path.join(tmpdir(), 'warden-too-large-'));
    model.enqueue(
      toolCallsReply([toolCall('fs__write', { path: 'first.txt', content: 'written before the large call' })]),
      // 1.7 MB of arguments: over Warden's budget, under Temporal's 2 MiB (proposeTurn refuses the turn, naming it).
      toolCallsReply([toolCall('big', { n: 1, pad: 'y'.repeat(1_700_000) })]),
      toolCallsReply([toolCall('final_answer', { answer: 'never reached' })]),
    );
    const task = parseTask(
      {
        user: 'ops@example.com',
        intent: 'write a file, then call a tool with huge arguments',
        agent: { name: 'writer', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
        tools: { builtin: ['fs.write'], custom: [BIG_TOOL] },
        grants: { tools: ['big', 'fs.write'] },
        limits: { deadline: '1h' },
        resources: { workspace },
      },
      'too-large.yaml',
      REPO_ROOT,
    );
    const workflowId = `original-loop-big-too-large-${Date.now()}`;
    const result = await followAgentTask(await env.start(task, workflowId));
    ran.push({ workflowId, result, raw: result, historyBytes: 0, seconds: 0 });
    expect({ status: result.status, reason: result.reason?.split(':')[0] }).toEqual({ status: 'failed', reason: 'ERR_PAYLOAD_TOO_LARGE' });
    expect(result.steps.map((s) => s.tool)).toEqual(['fs.write']);
    // The saga ran: the write of the step before is not committed.
    expect(existsSync(path.join(workspace, 'first.txt'))).toBe(false);
    expect((await env.client.workflow.getHandle(workflowId).describe()).status.name).not.toBe('TERMINATED');
  }, 600_000);

  it('judges a URL found in a claim-checked output as coming from a tool (provenance reads the real value)', async () => {
    const workspace = await mkdtemp(path.join(tmpdir(), 'warden-provenance-'));
    const url = 'http://127.0.0.1:9/claim-7f3a';
    const page = { name: 'page', description: 'a web page', input: { type: 'object' }, source: `return '.'.repeat(${20 * 1024}) + ' Great offer! Visit ${url} now';` };
    const task = parseTask(
      {
        user: 'ops@example.com',
        intent: 'read a page',
        agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'page', args: {} }, { tool: 'http.fetch', args: { url } }, { final: 'done' }] } },
        tools: { builtin: ['http.fetch'], custom: [page] },
        grants: { tools: ['http.fetch', 'page'], hosts: ['127.0.0.1:9'] },
        limits: { approvalTimeout: '1s', onDeny: 'continue', deadline: '10m' },
        resources: { workspace, hosts: ['127.0.0.1:9'] },
      },
      'provenance.yaml',
      REPO_ROOT,
    );
    const workflowId = `original-loop-big-provenance-${Date.now()}`;
    const raw = await followAgentTask(await env.start(task, workflowId));
    ran.push({ workflowId, result: raw, raw, historyBytes: 0, seconds: 0 });
    expect(raw.status, raw.reason).toBe('completed');
    expect(isClaimCheckRef(raw.steps[0]?.output)).toBe(true);
    const fetch = raw.steps.find((s) => s.tool === 'http.fetch');
    expect(fetch).toMatchObject({ policy: { decision: 'approval' }, executed: false, error: { code: 'ERR_APPROVAL_TIMEOUT' } });
    const reasons = fetch?.policy?.matched.map((m) => m.reason).join('; ') ?? '';
    expect(reasons).toContain('came from an earlier tool output');
    expect(reasons).not.toContain('was not given by the user');
  }, 600_000);

  it("hands a compensating tool the original call's real output when it was claim-checked", async () => {
    const workspace = await mkdtemp(path.join(tmpdir(), 'warden-compensate-'));
    const task = parseTask(
      {
        user: 'ops@example.com',
        intent: 'mark, then run out of script (the task fails and is compensated)',
        agent: { name: 'marker', model: { driver: 'scripted', script: [{ tool: 'mark', args: {} }] } },
        tools: {
          custom: [
            { name: 'mark', description: 'returns a 20 KB receipt', input: { type: 'object' }, compensate: 'unmark', source: "return 'R'.repeat(20000);" },
            // Refuses unless it was given the receipt itself (not a reference to it).
            { name: 'unmark', description: 'undoes a mark', input: { type: 'object' }, source: "if (input.original.output !== 'R'.repeat(20000)) throw new Error('not the receipt: ' + JSON.stringify(input.original.output).slice(0, 80)); return 'unmarked';" },
          ],
        },
        grants: { tools: ['mark', 'unmark'] },
        resources: { workspace },
      },
      'compensate.yaml',
      REPO_ROOT,
    );
    const workflowId = `original-loop-big-compensate-${Date.now()}`;
    const raw = await followAgentTask(await env.start(task, workflowId));
    ran.push({ workflowId, result: raw, raw, historyBytes: 0, seconds: 0 });
    expect(raw.status).toBe('failed');
    expect(isClaimCheckRef(raw.steps[0]?.output)).toBe(true);
    expect(raw.recovery?.rolledBack.find((r) => r.kind === 'tool')).toMatchObject({ kind: 'tool', forTool: 'mark', status: 'done' });
  }, 600_000);

  it('replays (the worker replayer and `warden replay`)', async () => {
    expect(ran).toHaveLength(5);
    const { failures } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    for (const { workflowId } of ran) {
      const replay = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'warden.js'), 'replay', workflowId], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, TEMPORAL_ADDRESS: testTemporalAddress().address, TEMPORAL_NAMESPACE: testTemporalAddress().namespace },
        timeout: 300_000,
      });
      expect({ status: replay.status, out: replay.status === 0 ? '' : replay.stderr + replay.stdout }).toEqual({ status: 0, out: '' });
    }
  }, 900_000);
});
