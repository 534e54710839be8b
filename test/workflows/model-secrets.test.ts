/**
 * A model endpoint that echoes the request's Authorization header back in everything it
 * answers (text, tool arguments, the final answer, its claims, the model name) cannot put the
 * API key anywhere Warden keeps: not in any workflow history (the task's or a sub-agent's), not
 * in the result, not in `warden run --json` nor its log lines. One case per provider protocol,
 * on the real Temporal server; token usage is recorded per turn on the way.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { messageReply, startFakeAnthropicServer, text, toolUse, type FakeAnthropicServer } from '../support/fake-anthropic-server';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const KEY = 'sk-echo-test-0a1b2c3d4e5f6a7b8c9d0e1f';
/** The key, its tail, and a run from its middle: none may appear anywhere. */
const FRAGMENTS = [KEY, KEY.slice(-12), KEY.slice(8, 20)];

let env: WardenTestEnv;
let openai: FakeOpenAIServer;
let anthropic: FakeAnthropicServer;
let workspace: string;

beforeAll(async () => {
  openai = await startFakeOpenAIServer();
  anthropic = await startFakeAnthropicServer();
  env = await startWardenTestEnv({ ...process.env, ECHO_MODEL_KEY: KEY });
  workspace = await mkdtemp(join(tmpdir(), 'warden-echo-'));
  await writeFile(join(workspace, 'notes.txt'), 'hello');
});

afterAll(async () => {
  await env?.close();
  await openai?.close();
  await anthropic?.close();
});

/** What the echoing server says, built from the header it received. */
function echoed(header: string) {
  return { path: 'notes.txt', note: `auth was ${header}`, tail: header.slice(-12), answer: `done (${header})`, claims: [`key ${header}`], model: `echo-${header}` };
}

interface Case {
  name: string;
  model: () => Record<string, unknown>;
  script: () => void;
}

const CASES: Case[] = [
  ...(['chat', 'responses'] as const).map((api) => ({
    name: `openai ${api}`,
    model: () => ({ driver: 'openai', api, id: 'gpt-echo', baseUrl: openai.url, apiKeyEnv: 'ECHO_MODEL_KEY' }),
    script: () =>
      openai.enqueue(
        (request) => {
          const e = echoed(String(request.headers.authorization));
          return toolCallsReply([toolCall('fs__read', { path: e.path, note: e.note, tail: e.tail }, 'call_1')], { content: e.note, model: e.model });
        },
        (request) => {
          const e = echoed(String(request.headers.authorization));
          return toolCallsReply([toolCall('final_answer', { answer: e.answer, claims: e.claims }, 'call_2')], { content: e.note, model: e.model });
        },
      ),
  })),
  {
    name: 'anthropic',
    model: () => ({ driver: 'anthropic', id: 'claude-echo', baseUrl: anthropic.url, apiKeyEnv: 'ECHO_MODEL_KEY' }),
    script: () =>
      anthropic.enqueue(
        (request) => {
          const e = echoed(String(request.headers.authorization ?? request.headers['x-api-key']));
          return messageReply([text(e.note), toolUse('fs__read', { path: e.path, note: e.note, tail: e.tail }, 'toolu_1')], { model: e.model });
        },
        (request) => {
          const e = echoed(String(request.headers.authorization ?? request.headers['x-api-key']));
          return messageReply([text(e.note), toolUse('final_answer', { answer: e.answer, claims: e.claims }, 'toolu_2')], { model: e.model });
        },
      ),
  },
];

/** Every workflow id of a task tree. */
function workflowIdsOf(result: TaskResult): string[] {
  return [result.workflowId, ...result.children.flatMap(workflowIdsOf)];
}

function expectNoKey(where: string, text: string): void {
  for (const fragment of FRAGMENTS) expect(text.includes(fragment), `${where} holds ${fragment === KEY ? 'the key' : 'part of the key'}`).toBe(false);
}

describe.each(CASES)('$name: an endpoint that echoes the key', (c) => {
  it('reaches no history, no result, and usage is recorded per turn', async () => {
    c.script();
    const result = await env.runTask({
      user: 'erin@example.com',
      intent: 'Read my notes',
      agent: { name: 'reader', model: c.model() },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
      resources: { workspace },
      limits: { onDeny: 'continue' },
    });
    expect(result.status).toBe('completed');
    // The echo arrived (so the test can fail) and was redacted.
    expect(result.final?.answer).toContain('[redacted]');
    expect(result.steps[0]?.args['note']).toContain('[redacted]');
    expectNoKey('the result', JSON.stringify(result));
    for (const workflowId of workflowIdsOf(result)) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      expectNoKey(`the history of ${workflowId}`, JSON.stringify(history));
    }
    expect(result.turns?.map((t) => t.index)).toEqual([0, 1]);
    for (const turn of result.turns ?? []) {
      expect(turn.usage?.inputTokens).toBeGreaterThan(0);
      expect(turn.usage?.outputTokens).toBeGreaterThan(0);
    }
  });
});

describe('warden run --json with an echoing endpoint', () => {
  it('prints no part of the key on stdout or stderr, and no history of the run holds it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-echo-cli-'));
    const file = join(dir, 'echo.yaml');
    await writeFile(
      file,
      [
        'user: erin@example.com',
        'intent: Read my notes',
        'agent:',
        '  name: reader',
        `  model: { driver: openai-compatible, id: gpt-echo, baseUrl: "${openai.url}", apiKeyEnv: ECHO_MODEL_KEY }`,
        'tools: { builtin: [fs.read] }',
        'grants: { tools: [fs.read] }',
        `resources: { workspace: "${workspace}" }`,
        'limits: { onDeny: continue }',
        '',
      ].join('\n'),
    );
    CASES[0]!.script();
    const port = testTemporalAddress().address.split(':').pop();
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', file, '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, ECHO_MODEL_KEY: KEY },
      maxBuffer: 16 * 1024 * 1024,
    });
    expectNoKey('stdout', stdout);
    expectNoKey('stderr', stderr);
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    expect(result.final?.answer).toContain('[redacted]');
    for (const workflowId of workflowIdsOf(result)) {
      expectNoKey(`the history of ${workflowId}`, JSON.stringify(await env.client.workflow.getHandle(workflowId).fetchHistory()));
    }
  }, 120_000);
});
