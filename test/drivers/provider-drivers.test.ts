/**
 * Every provider driver meets one contract, checked against a loopback server speaking that
 * provider's real protocol (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages):
 * tools offered and calls decoded the same way, a multi-turn transcript the server accepts,
 * token usage per turn, the key only in its header and never in a turn or an error (even when
 * the server echoes it back), and the same error codes for the same HTTP failures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver } from '../../drivers/create-driver';
import type { DriverInput, ToolSpec } from '../../drivers/model-driver';
import type { ModelTurn, StepRecord } from '../../task/task-run';
import { TaskSchema, type Task } from '../../task/task-schema';
import {
  anthropicError,
  anthropicHttpReply,
  messageReply,
  startFakeAnthropicServer,
  text,
  toolUse,
  type FakeAnthropicServer,
  type RecordedRequest as AnthropicRequest,
} from '../support/fake-anthropic-server';
import { httpReply, startFakeOpenAIServer, textReply, toolCall, toolCallsReply, type FakeOpenAIServer, type RecordedRequest as OpenAIRequest } from '../support/fake-openai-server';

const KEY = 'sk-provider-test-9c8b7a6d5e4f3a2b1c0d';
const ENV = { TEST_MODEL_API_KEY: KEY };
const TOOLS: ToolSpec[] = [{ name: 'fs.read', description: 'Read a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } }];

type Request = OpenAIRequest | AnthropicRequest;

/** One provider: how to point a task at it and how to script its answers. */
interface Provider {
  name: string;
  model(): Record<string, unknown>;
  requests(): Request[];
  path: string;
  /** The header carrying the key, and its value. */
  authHeader: [string, string];
  callReply(name: string, args: Record<string, unknown>, id: string, usage?: { input: number; output: number }): void;
  textReply(value: string, options?: { model?: string; usage?: { input: number; output: number } }): void;
  rawReply(status: number, body: string, headers?: Record<string, string>): void;
  /** A reply computed from the request (to echo a header). */
  echoReply(make: (request: Request) => { text: string; args: Record<string, unknown>; model: string }): void;
  /** The function-call ids of the request's transcript, in order, with their results' ids. */
  transcriptIds(request: Request): { calls: string[]; results: string[] };
}

let openai: FakeOpenAIServer;
let anthropic: FakeAnthropicServer;

beforeAll(async () => {
  openai = await startFakeOpenAIServer();
  anthropic = await startFakeAnthropicServer();
});
afterAll(async () => {
  await openai?.close();
  await anthropic?.close();
});

/** A bound on a hung request, not a speed check: the fake servers answer at once, but on a loaded machine that can take seconds. */
const REQUEST_TIMEOUT = '60s';

function openaiProvider(api: 'chat' | 'responses'): Provider {
  return {
    name: `openai ${api}`,
    model: () => ({ driver: 'openai', api, id: 'gpt-test', baseUrl: openai.url, apiKeyEnv: 'TEST_MODEL_API_KEY', requestTimeout: REQUEST_TIMEOUT }),
    requests: () => openai.requests,
    path: api === 'chat' ? '/v1/chat/completions' : '/v1/responses',
    authHeader: ['authorization', `Bearer ${KEY}`],
    callReply: (name, args, id, usage) => openai.enqueue({ ...toolCallsReply([toolCall(name, args, id)]), ...(usage ? { usage } : {}) }),
    textReply: (value, options = {}) => openai.enqueue({ ...textReply(value, options.model === undefined ? {} : { model: options.model }), ...(options.usage ? { usage: options.usage } : {}) }),
    rawReply: (status, body, headers) => openai.enqueue(httpReply(status, body, headers)),
    echoReply: (make) =>
      openai.enqueue((request) => {
        const echo = make(request);
        return { ...toolCallsReply([toolCall('fs__read', echo.args, 'call_echo')], { content: echo.text, model: echo.model }) };
      }),
    transcriptIds: (request) => {
      const body = request.body as { messages?: { role: string; tool_calls?: { id: string }[]; tool_call_id?: string }[]; input?: { type?: string; call_id?: string }[] };
      if (body.messages !== undefined) {
        return {
          calls: body.messages.flatMap((m) => (m.tool_calls ?? []).map((c) => c.id)),
          results: body.messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id!),
        };
      }
      return {
        calls: (body.input ?? []).filter((i) => i.type === 'function_call').map((i) => i.call_id!),
        results: (body.input ?? []).filter((i) => i.type === 'function_call_output').map((i) => i.call_id!),
      };
    },
  };
}

const anthropicProvider: Provider = {
  name: 'anthropic',
  model: () => ({ driver: 'anthropic', id: 'claude-test', baseUrl: anthropic.url, apiKeyEnv: 'TEST_MODEL_API_KEY', requestTimeout: REQUEST_TIMEOUT }),
  requests: () => anthropic.requests,
  path: '/v1/messages',
  // @anthropic-ai/sdk 1.x sends an API key as a bearer token.
  authHeader: ['authorization', `Bearer ${KEY}`],
  callReply: (name, args, id, usage) => anthropic.enqueue(messageReply([toolUse(name, args, id)], usage ? { usage } : {})),
  textReply: (value, options = {}) => anthropic.enqueue(messageReply([text(value)], options)),
  rawReply: (status, body, headers) => anthropic.enqueue(anthropicHttpReply(status, body, headers)),
  echoReply: (make) =>
    anthropic.enqueue((request) => {
      const echo = make(request);
      return messageReply([text(echo.text), toolUse('fs__read', echo.args, 'toolu_echo')], { model: echo.model });
    }),
  transcriptIds: (request) => {
    const body = request.body as { messages: { role: string; content: string | { type: string; id?: string; tool_use_id?: string }[] }[] };
    const blocks = body.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content));
    return { calls: blocks.filter((b) => b.type === 'tool_use').map((b) => b.id!), results: blocks.filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id!) };
  },
};

const PROVIDERS: Provider[] = [openaiProvider('chat'), openaiProvider('responses'), anthropicProvider];

function taskFor(provider: Provider): Task {
  return TaskSchema.parse({
    user: 'alice',
    intent: 'Summarise notes.md',
    agent: { name: 'main', instructions: 'Be brief.', model: provider.model() },
    tools: { builtin: ['fs.read'] },
    grants: { tools: ['fs.read'] },
  });
}

function step(fields: Pick<StepRecord, 'index' | 'turn' | 'tool'> & Partial<StepRecord>): StepRecord {
  return { kind: 'tool', args: {}, decision: 'allow', reason: 'granted', executed: true, startedAt: '2026-01-01T00:00:00.000Z', durationMs: 1, ...fields };
}

function input(task: Task, steps: StepRecord[] = []): DriverInput {
  return { task, turn: steps.length, steps, tools: TOOLS, subagents: [] };
}

async function failure(promise: Promise<unknown>): Promise<Error & { code: string; retryable: boolean; details: Record<string, unknown> }> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { code: string; retryable: boolean; details: Record<string, unknown> },
  );
}

describe.each(PROVIDERS)('$name driver', (provider) => {
  const propose = (task: Task, steps: StepRecord[] = [], env: Record<string, string> = ENV): Promise<ModelTurn> => createDriver(task.agent.model, { env }).proposeTurn(input(task, steps));
  const last = () => provider.requests().at(-1)!;

  it('offers the tools, sends the key only in its header, and decodes a call with its usage', async () => {
    const task = taskFor(provider);
    provider.callReply('fs__read', { path: 'notes.md' }, 'call_1', { input: 200, output: 9 });
    const turn = await propose(task);
    expect(turn.actions).toStrictEqual([{ type: 'tool', tool: 'fs.read', args: { path: 'notes.md' }, callId: 'call_1' }]);
    expect(turn.model).toStrictEqual({ id: task.agent.model.id, version: 'unversioned' });
    expect(turn.usage).toMatchObject({ inputTokens: 200, outputTokens: 9 });
    const request = last();
    expect(request.path).toBe(provider.path);
    expect(request.headers[provider.authHeader[0]]).toBe(provider.authHeader[1]);
    // The key is in its header and nowhere else of the request.
    expect(request.rawBody).not.toContain(KEY);
    const otherHeaders = Object.entries(request.headers).filter(([name]) => name !== provider.authHeader[0]);
    expect(JSON.stringify(otherHeaders)).not.toContain(KEY);
    expect(request.rawBody).toContain('fs__read');
    expect(request.rawBody).toContain('final_answer');
    expect(request.rawBody).toContain('Be brief.');
  });

  it('replays two past turns as calls answered by results, in a transcript the server accepts', async () => {
    const task = taskFor(provider);
    const steps = [
      step({ index: 0, turn: 0, tool: 'fs.read', args: { path: 'a' }, callId: 'call_a', output: 'A' }),
      step({ index: 1, turn: 0, tool: 'fs.read', args: { path: 'b' }, callId: 'call_b', decision: 'deny', reason: 'not granted', executed: false }),
      step({ index: 2, turn: 1, tool: 'fs.read', args: { path: 'c' }, callId: 'call a!', error: { code: 'ERR_PATH_NOT_FOUND', message: 'no c' } }),
    ];
    provider.textReply('done');
    const turn = await propose(task, steps);
    expect(turn.actions).toStrictEqual([{ type: 'final', answer: 'done', claims: [] }]);
    const ids = provider.transcriptIds(last());
    expect(ids.calls).toHaveLength(3);
    expect(ids.results).toStrictEqual(ids.calls);
    expect(ids.calls.slice(0, 2)).toStrictEqual(['call_a', 'call_b']);
    expect(last().rawBody).toContain('not granted');
    expect(last().rawBody).toContain('ERR_PATH_NOT_FOUND');
  });

  it('offers state_claim, decodes a call to a claim action, and answers past claims in a transcript the server accepts', async () => {
    const task = taskFor(provider);
    const claim = { kind: 'sql.count', database: 'app', table: 'items', equals: 3 };
    provider.callReply('state_claim', claim, 'call_k');
    const turn = await propose(task);
    expect(turn.actions).toStrictEqual([{ type: 'claim', claim, callId: 'call_k' }]);
    expect(last().rawBody).toContain('state_claim');
    // Turn 0: a tool call and a claim; turn 1: a malformed claim alone (its answer says what is missing).
    provider.textReply('done');
    await createDriver(task.agent.model, { env: ENV }).proposeTurn({
      ...input(task, [step({ index: 0, turn: 0, tool: 'fs.read', args: { path: 'a' }, callId: 'call_a', output: 'A' })]),
      turn: 2,
      claims: [
        { turn: 0, callId: 'call_k', claim },
        { turn: 1, claim: { kind: 'file.sha256', path: 'a' } },
      ],
    });
    const ids = provider.transcriptIds(last());
    expect(ids.calls).toStrictEqual(['call_a', 'call_k', 'claim_1']);
    expect(ids.results).toStrictEqual(ids.calls);
    expect(last().rawBody).toContain('Warden will verify this claim');
    expect(last().rawBody).toMatch(/ERR_CLAIM_INVALID.*sha256/);
  });

  it('removes the key from everything a turn carries when the server echoes it back', async () => {
    const task = taskFor(provider);
    provider.echoReply((request) => {
      const header = String(request.headers[provider.authHeader[0]]);
      return { text: `you sent ${header}`, args: { path: header, note: header.slice(-12) }, model: `model-${header}` };
    });
    const turn = await propose(task);
    const serialized = JSON.stringify(turn);
    expect(serialized).not.toContain(KEY);
    expect(serialized).not.toContain(KEY.slice(-12));
    expect(serialized).toContain('[redacted]');
    expect(turn.actions[0]).toMatchObject({ type: 'tool', tool: 'fs.read' });
  });

  it('uses the model that answered and counts its tokens', async () => {
    const task = taskFor(provider);
    provider.textReply('hi', { model: 'served-model-7', usage: { input: 11, output: 2 } });
    expect(await propose(task)).toMatchObject({ model: { id: 'served-model-7' }, usage: { inputTokens: 11, outputTokens: 2 } });
  });

  it.each([
    [429, 'ERR_MODEL_UNAVAILABLE', true],
    [500, 'ERR_MODEL_UNAVAILABLE', true],
    [529, 'ERR_MODEL_UNAVAILABLE', true],
    [400, 'ERR_MODEL_PROTOCOL', false],
    [404, 'ERR_MODEL_PROTOCOL', false],
  ])('HTTP %i is %s (retryable: %s), with the key removed from the message', async (status, code, retryable) => {
    const task = taskFor(provider);
    provider.rawReply(status, provider.name === 'anthropic' ? anthropicError('x_error', `bad key ${KEY}`) : JSON.stringify({ error: { message: `bad key ${KEY}` } }));
    const error = await failure(propose(task));
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.message).toContain(`HTTP ${status}`);
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(KEY.slice(4, 12));
  });

  it('says nothing of the body of a 401, naming the key variable instead', async () => {
    const task = taskFor(provider);
    provider.rawReply(401, JSON.stringify({ error: { message: `invalid key ${KEY}` } }));
    const error = await failure(propose(task));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.message).toContain('$TEST_MODEL_API_KEY');
    expect(error.message).not.toContain('invalid key');
  });

  it('does not follow a redirect (the key would go along)', async () => {
    const task = taskFor(provider);
    provider.rawReply(307, '', { location: 'http://127.0.0.1:9/steal' });
    const error = await failure(propose(task));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.message).toContain('redirected (not followed)');
  });

  it('fails with ERR_MODEL_CONFIG naming the variable when the key is missing, without calling the server', async () => {
    const task = taskFor(provider);
    const before = provider.requests().length;
    const error = await failure(propose(task, [], {}));
    expect(error.code).toBe('ERR_MODEL_CONFIG');
    expect(error.message).toContain('TEST_MODEL_API_KEY');
    expect(provider.requests()).toHaveLength(before);
  });

  it('an answer of the wrong shape is ERR_MODEL_PROTOCOL, not a crash', async () => {
    const task = taskFor(provider);
    provider.rawReply(200, JSON.stringify({ surprise: true }));
    const error = await failure(propose(task));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
  });
});

describe('SDK settings come from the task, not the worker environment', () => {
  it('ignores OPENAI_BASE_URL, OPENAI_ADMIN_KEY, ANTHROPIC_BASE_URL and ANTHROPIC_CUSTOM_HEADERS', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      OPENAI_ADMIN_KEY: 'sk-admin-should-never-travel',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      ANTHROPIC_CUSTOM_HEADERS: 'x-leak: yes',
    });
    try {
      for (const provider of PROVIDERS) {
        const task = taskFor(provider);
        provider.textReply('ok');
        await expect(createDriver(task.agent.model, { env: ENV }).proposeTurn(input(task))).resolves.toMatchObject({ actions: [{ type: 'final' }] });
        expect(JSON.stringify(provider.requests().at(-1)!.headers)).not.toContain('sk-admin-should-never-travel');
      }
    } finally {
      for (const name of ['OPENAI_BASE_URL', 'OPENAI_ADMIN_KEY', 'ANTHROPIC_BASE_URL', 'ANTHROPIC_CUSTOM_HEADERS']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });
});
