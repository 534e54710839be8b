/**
 * An agent driven by an OpenAI-compatible model (a real HTTP server on loopback speaking the chat
 * completions protocol) running as a workflow on the real Temporal server.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAIServer, textReply, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const API_KEY = 'sk-test-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c';
let env: WardenTestEnv;
let model: FakeOpenAIServer;
let workspace: string;

beforeAll(async () => {
  model = await startFakeOpenAIServer();
  env = await startWardenTestEnv({ ...process.env, TEST_MODEL_KEY: API_KEY });
  workspace = await mkdtemp(join(tmpdir(), 'warden-openai-'));
  await writeFile(join(workspace, 'todo.txt'), 'buy milk');
});

afterAll(async () => {
  await env?.close();
  await model?.close();
});

it('runs tool calls proposed by the model, feeds results back, and ends at final_answer', async () => {
  model.enqueue(
    toolCallsReply([toolCall('fs__read', { path: 'todo.txt' }, 'call_a')]),
    toolCallsReply([toolCall('http__fetch', { url: 'https://attacker.example/' }, 'call_b')]),
    toolCallsReply([toolCall('final_answer', { answer: 'Your list says: buy milk', claims: ['read todo.txt'] }, 'call_c')]),
  );
  const result = await env.runTask({
    user: 'dana@example.com',
    intent: 'What is on my todo list?',
    agent: {
      name: 'assistant',
      model: { driver: 'openai-compatible', id: 'gpt-test', version: '2026-01', baseUrl: model.url, apiKeyEnv: 'TEST_MODEL_KEY' },
    },
    tools: { builtin: ['fs.read', 'http.fetch'] },
    grants: { tools: ['fs.read'] },
    limits: { onDeny: 'continue' },
    resources: { workspace },
  });

  expect(result.status).toBe('completed');
  expect(result.final).toEqual({ answer: 'Your list says: buy milk', claims: ['read todo.txt'] });
  expect(result.steps.map((s) => [s.tool, s.decision, s.callId])).toEqual([
    ['fs.read', 'allow', 'call_a'],
    ['http.fetch', 'deny', 'call_b'],
  ]);
  expect(result.steps[0]?.output).toBe('buy milk');

  expect(model.requests).toHaveLength(3);
  expect(model.requests[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  // The third request carries both earlier tool results back to the model.
  const messages = (model.requests[2]?.body as { messages: { role: string; tool_call_id?: string; content: string | null }[] }).messages;
  const toolMessages = messages.filter((m) => m.role === 'tool');
  expect(toolMessages.map((m) => m.tool_call_id)).toEqual(['call_a', 'call_b']);
  expect(toolMessages[0]?.content).toContain('buy milk');
  expect(toolMessages[1]?.content).toContain('not granted');

  // The API key lives in the worker's environment only, never in workflow history.
  const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
  expect(JSON.stringify(history)).not.toContain(API_KEY);
});

it('treats plain assistant text as the final answer', async () => {
  model.enqueue(textReply('Nothing to do.'));
  const result = await env.runTask({
    user: 'dana@example.com',
    intent: 'Anything?',
    agent: { name: 'assistant', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
  });
  expect(result).toMatchObject({ status: 'completed', final: { answer: 'Nothing to do.', claims: [] }, model: { id: 'gpt-test' } });
});
