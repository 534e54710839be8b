import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DriverInput, ToolSpec } from '../../drivers/model-driver';
import { decodeToolName, encodeToolName, redactSecret } from '../../drivers/model-transcript';
import { OpenAIDriver as OpenAICompatibleDriver, type OpenAIModel as OpenAICompatibleModel } from '../../drivers/openai-driver';
import { createDriver } from '../../drivers/create-driver';
import type { StepRecord } from '../../task/task-run';
import { TaskSchema, type Task } from '../../task/task-schema';
import {
  delayed,
  httpReply,
  startFakeOpenAIServer,
  textReply,
  toolCall,
  toolCallsReply,
  type FakeOpenAIServer,
} from '../support/fake-openai-server';

const KEY = 'sk-test-4f9a8b7c6d5e4f3a2b1c0d9e';
const ENV = { TEST_MODEL_API_KEY: KEY };

const TOOLS: ToolSpec[] = [
  { name: 'fs.read', description: 'Read a file in the workspace.', inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
  { name: 'fs.write', description: 'Write a file in the workspace.', inputSchema: { type: 'object' } },
];
const SUBAGENTS = [{ name: 'researcher', intent: 'find sources' }];

let server: FakeOpenAIServer;
beforeEach(async () => {
  server = await startFakeOpenAIServer();
});
afterEach(async () => {
  await server.close();
});

function makeTask(model: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Task {
  return TaskSchema.parse({
    user: 'alice',
    intent: 'Summarise notes.md',
    agent: {
      name: 'main',
      instructions: 'Be brief.',
      model: { driver: 'openai-compatible', id: 'gpt-test', version: '2025-01', baseUrl: server.url, apiKeyEnv: 'TEST_MODEL_API_KEY', requestTimeout: '60s', ...model },
    },
    tools: { builtin: ['fs.read', 'fs.write'] },
    grants: { tools: ['fs.read'], subagents: ['researcher'] },
    subagents: {
      researcher: { intent: 'find sources', agent: { name: 'researcher', model: { driver: 'scripted', script: [{ final: 'sources' }] } } },
    },
    ...extra,
  });
}

function modelOf(task: Task): OpenAICompatibleModel {
  if (task.agent.model.driver !== 'openai-compatible') throw new Error('expected an openai-compatible model');
  return task.agent.model;
}

function driverFor(task: Task, env: Record<string, string | undefined> = ENV): OpenAICompatibleDriver {
  return new OpenAICompatibleDriver(modelOf(task), { env });
}

function input(task: Task, turn = 0, steps: StepRecord[] = [], overrides: Partial<DriverInput> = {}): DriverInput {
  return { task, turn, steps, tools: TOOLS, subagents: SUBAGENTS, ...overrides };
}

function step(fields: Pick<StepRecord, 'index' | 'turn' | 'tool'> & Partial<StepRecord>): StepRecord {
  return {
    kind: 'tool',
    args: {},
    decision: 'allow',
    reason: 'granted',
    executed: true,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 1,
    ...fields,
  };
}

async function failure(promise: Promise<unknown>): Promise<Error & { code: string; retryable: boolean; details: Record<string, unknown> }> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  return error as Error & { code: string; retryable: boolean; details: Record<string, unknown> };
}

interface SentBody {
  model: string;
  temperature: number;
  tool_choice: string;
  messages: { role: string; content: unknown }[];
  tools: { type: string; function: { name: string; description: string; parameters: Record<string, unknown> } }[];
}
const sent = (i: number): SentBody => server.requests[i]!.body as SentBody;

describe('OpenAICompatibleDriver: one tool call round trip', () => {
  it('sends a well-formed request and maps the call back to a Warden tool action', async () => {
    server.enqueue({ ...(toolCallsReply([toolCall('fs__read', { path: 'notes.md' }, 'call_abc')], { model: 'gpt-test-2025-01-01' })), usage: { input: 321, output: 12 } });
    const turn = await driverFor(makeTask()).proposeTurn(input(makeTask()));

    expect(turn).toStrictEqual({
      actions: [{ type: 'tool', tool: 'fs.read', args: { path: 'notes.md' }, callId: 'call_abc' }],
      model: { id: 'gpt-test-2025-01-01', version: '2025-01' },
      usage: { inputTokens: 321, outputTokens: 12 },
    });
    expect(server.requests).toHaveLength(1);
    const request = server.requests[0]!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.headers['authorization']).toBe(`Bearer ${KEY}`);
    expect(request.headers['content-type']).toBe('application/json');

    const body = sent(0);
    expect(body.model).toBe('gpt-test');
    expect(body.temperature).toBe(0);
    expect(body.tool_choice).toBe('auto');
    expect(body.messages.map((m) => m.role)).toStrictEqual(['system', 'user']);
    const system = body.messages[0]!.content as string;
    expect(system).toContain('"alice"');
    expect(system).toContain('final_answer');
    expect(system.endsWith('\n\nBe brief.')).toBe(true);
    expect(body.messages[1]).toStrictEqual({ role: 'user', content: 'Summarise notes.md' });
    expect(body.tools.map((t) => t.function.name)).toStrictEqual(['fs__read', 'fs__write', 'spawn_subagent', 'state_claim', 'final_answer']);
    expect(body.tools[0]).toStrictEqual({
      type: 'function',
      function: { name: 'fs__read', description: 'Read a file in the workspace.', parameters: TOOLS[0]!.inputSchema },
    });
    expect(body.tools[2]!.function.parameters).toMatchObject({ properties: { name: { enum: ['researcher'] } }, required: ['name'] });
    expect(body.tools[3]!.function.parameters).toMatchObject({ required: ['kind'] });
    expect(body.tools[4]!.function.parameters).toMatchObject({ required: ['answer', 'claims'] });
  });

  it('falls back to the configured id when the response has no model, and sends the temperature', async () => {
    server.enqueue(() => httpReply(200, { choices: [{ message: { role: 'assistant', content: 'hi' } }] }));
    const task = makeTask({ temperature: 0.7 });
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(turn.model).toStrictEqual({ id: 'gpt-test', version: '2025-01' });
    expect(sent(0).temperature).toBe(0.7);
  });

  it('offers spawn_subagent only when there are sub-agents', async () => {
    server.enqueue(textReply('done'));
    const task = makeTask();
    await driverFor(task).proposeTurn(input(task, 0, [], { subagents: [] }));
    expect(sent(0).tools.map((t) => t.function.name)).toStrictEqual(['fs__read', 'fs__write', 'state_claim', 'final_answer']);
    expect(sent(0).messages[0]!.content).not.toContain('spawn_subagent');
  });

  it('sends no Authorization header when no apiKeyEnv is configured', async () => {
    server.enqueue(textReply('done'));
    const task = makeTask({ apiKeyEnv: undefined });
    await driverFor(task, {}).proposeTurn(input(task));
    expect(server.requests[0]!.headers['authorization']).toBeUndefined();
  });
});

describe('OpenAICompatibleDriver: transcript reconstruction', () => {
  const turn0Steps: StepRecord[] = [
    step({ index: 0, turn: 0, tool: 'fs.read', args: { path: 'notes.md' }, callId: 'call_a', output: { content: 'hello' } }),
    step({
      index: 1,
      turn: 0,
      tool: 'fs.write',
      args: { path: 'out.md', content: 'x' },
      callId: 'call_b',
      decision: 'deny',
      reason: 'tool fs.write is not granted',
      executed: false,
      error: { code: 'ERR_TOOL_NOT_GRANTED', message: 'tool fs.write is not granted' },
    }),
  ];
  const turn1Steps: StepRecord[] = [
    step({
      index: 2,
      turn: 1,
      kind: 'spawn',
      tool: 'spawn:researcher',
      args: { subagent: 'researcher', intent: 'find three sources' },
      callId: 'call_c',
      output: { status: 'completed', final: { answer: 'sources', claims: [] } },
    }),
    step({ index: 3, turn: 1, tool: 'evil.tool', args: {}, callId: 'call_d', decision: 'deny', reason: 'unknown tool evil.tool', executed: false }),
    step({ index: 4, turn: 1, tool: 'fs.read', args: { path: 'missing.md' }, error: { code: 'ERR_PATH_NOT_FOUND', message: 'missing.md does not exist' } }),
  ];

  const head = (body: SentBody) => body.messages.slice(0, 2);

  it('replays every past turn as assistant tool_calls followed by one tool message per call', async () => {
    const task = makeTask();
    const driver = driverFor(task);
    server.enqueue(
      toolCallsReply([toolCall('fs__read', { path: 'notes.md' }, 'call_a'), toolCall('fs__write', { path: 'out.md', content: 'x' }, 'call_b')]),
      toolCallsReply([
        toolCall('spawn_subagent', { name: 'researcher', intent: 'find three sources' }, 'call_c'),
        toolCall('evil__tool', {}, 'call_d'),
        toolCall('fs__read', { path: 'missing.md' }, ''),
      ]),
      toolCallsReply([toolCall('final_answer', { answer: 'Summary', claims: ['read notes.md'] }, 'call_e')]),
    );

    const first = await driver.proposeTurn(input(task, 0, []));
    expect(first.actions).toHaveLength(2);

    // Turn 2: the first turn's calls with an output and a denial.
    const second = await driver.proposeTurn(input(task, 1, turn0Steps));
    expect(sent(1).messages.slice(2)).toStrictEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'fs__read', arguments: '{"path":"notes.md"}' } },
          { id: 'call_b', type: 'function', function: { name: 'fs__write', arguments: '{"path":"out.md","content":"x"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"output":{"content":"hello"}}' },
      { role: 'tool', tool_call_id: 'call_b', content: '{"denied":"tool fs.write is not granted"}' },
    ]);
    expect(second.actions).toStrictEqual([
      { type: 'spawn', subagent: 'researcher', intent: 'find three sources', callId: 'call_c' },
      // Unknown names are decoded and passed on: the workflow, not the driver, denies them.
      { type: 'tool', tool: 'evil.tool', args: {}, callId: 'call_d' },
      { type: 'tool', tool: 'fs.read', args: { path: 'missing.md' } },
    ]);

    // Turn 3: adds a spawn, a denied unknown tool, and an error on a call without a model id.
    const third = await driver.proposeTurn(input(task, 2, [...turn0Steps, ...turn1Steps]));
    expect(head(sent(2))).toStrictEqual(head(sent(0)));
    expect(sent(2).messages.slice(2)).toStrictEqual([
      ...sent(1).messages.slice(2),
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_c', type: 'function', function: { name: 'spawn_subagent', arguments: '{"name":"researcher","intent":"find three sources"}' } },
          { id: 'call_d', type: 'function', function: { name: 'evil__tool', arguments: '{}' } },
          { id: 'call_4', type: 'function', function: { name: 'fs__read', arguments: '{"path":"missing.md"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_c', content: '{"output":{"status":"completed","final":{"answer":"sources","claims":[]}}}' },
      { role: 'tool', tool_call_id: 'call_d', content: '{"denied":"unknown tool evil.tool"}' },
      { role: 'tool', tool_call_id: 'call_4', content: '{"error":{"code":"ERR_PATH_NOT_FOUND","message":"missing.md does not exist"}}' },
    ]);
    expect(third.actions).toStrictEqual([{ type: 'final', answer: 'Summary', claims: ['read notes.md'] }]);
  });

  it('is deterministic: the same input produces the same request bytes', async () => {
    const task = makeTask();
    server.enqueue(textReply('a'), textReply('a'));
    await driverFor(task).proposeTurn(input(task, 2, [...turn0Steps, ...turn1Steps]));
    await driverFor(task).proposeTurn(input(task, 2, [...turn1Steps, ...turn0Steps]));
    expect(server.requests[1]!.rawBody).toBe(server.requests[0]!.rawBody);
  });

  it('keeps a transcript OpenAI accepts even when the history holds hostile names and repeated ids', async () => {
    const task = makeTask();
    const long = `acme.${'x'.repeat(80)}`;
    server.enqueue(textReply('fine'));
    const turn = await driverFor(task).proposeTurn(
      input(task, 2, [
        step({ index: 0, turn: 0, tool: 'Bad Name!', callId: 'dup', decision: 'deny', reason: 'unknown tool', executed: false }),
        step({ index: 1, turn: 0, tool: long, callId: 'call_2', decision: 'deny', reason: 'unknown tool', executed: false }),
        step({ index: 2, turn: 1, tool: 'fs.read', callId: 'dup', output: 'x' }),
      ]),
    );
    // The fake server answers 400 to an invalid transcript, so reaching a turn is the assertion.
    expect(turn.actions).toStrictEqual([{ type: 'final', answer: 'fine', claims: [] }]);
    const calls = sent(0).messages.flatMap((m) => ((m as { tool_calls?: { id: string; function: { name: string } }[] }).tool_calls ?? []));
    expect(calls.map((c) => c.id)).toStrictEqual(['dup', 'call_2', 'call_2_1']);
    expect(calls.map((c) => c.function.name)).toStrictEqual([encodeToolName('Bad Name!'), encodeToolName(long), 'fs__read']);
  });
});

describe('OpenAICompatibleDriver: state_claim', () => {
  it('maps state_claim calls to claim actions and structured final claims through unchanged', async () => {
    const task = makeTask();
    const claim = { kind: 'sql.count', database: 'app', table: 'items', equals: 3 };
    server.enqueue(toolCallsReply([toolCall('state_claim', claim, 'c1'), toolCall('final_answer', { answer: 'done', claims: ['a sentence', { kind: 'file.contains', path: 'a', text: 'b' }] }, 'c2')]));
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(turn.actions).toStrictEqual([
      { type: 'claim', claim, callId: 'c1' },
      { type: 'final', answer: 'done', claims: ['a sentence', { kind: 'file.contains', path: 'a', text: 'b' }] },
    ]);
  });

  it('answers each stated claim in the transcript, in its turn, and tells a malformed one why', async () => {
    const task = makeTask();
    server.enqueue(textReply('done'));
    await driverFor(task).proposeTurn(
      input(task, 2, [step({ index: 0, turn: 0, tool: 'fs.read', args: { path: 'a' }, callId: 'r1', output: 'x' })], {
        claims: [
          { turn: 0, callId: 'k1', claim: { kind: 'file.contains', path: 'a', text: 'x' } },
          { turn: 1, claim: { kind: 'sql.count', table: 'items' } },
        ],
      }),
    );
    const messages = sent(0).messages as { role: string; tool_calls?: { id: string; function: { name: string; arguments: string } }[]; tool_call_id?: string; content: unknown }[];
    const assistants = messages.filter((m) => m.role === 'assistant');
    expect(assistants.map((m) => m.tool_calls?.map((c) => `${c.function.name}:${c.id}`))).toEqual([['fs__read:r1', 'state_claim:k1'], ['state_claim:claim_1']]);
    const answers = Object.fromEntries(messages.filter((m) => m.role === 'tool').map((m) => [m.tool_call_id, JSON.parse(m.content as string)]));
    expect(answers['k1']).toEqual({ recorded: true, note: 'Warden will verify this claim after the task ends' });
    expect(answers['claim_1'].error.code).toBe('ERR_CLAIM_INVALID');
    expect(answers['claim_1'].error.message).toMatch(/database/);
    expect(sent(0).messages[0]!.content).toContain('state_claim');
  });
});

describe('OpenAICompatibleDriver: spawn, final and text', () => {
  it('maps spawn_subagent and final_answer calls', async () => {
    const task = makeTask();
    server.enqueue(
      toolCallsReply([
        toolCall('spawn_subagent', { name: 'researcher' }, 'c1'),
        toolCall('spawn_subagent', { name: 'researcher', intent: '' }, 'c2'),
        toolCall('final_answer', { answer: 'All done', claims: ['wrote summary.md'] }, 'c3'),
        toolCall('final_answer', { answer: 'No claims' }, 'c4'),
      ]),
    );
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(turn.actions).toStrictEqual([
      { type: 'spawn', subagent: 'researcher', callId: 'c1' },
      { type: 'spawn', subagent: 'researcher', callId: 'c2' },
      { type: 'final', answer: 'All done', claims: ['wrote summary.md'] },
      { type: 'final', answer: 'No claims', claims: [] },
    ]);
  });

  it('turns plain text into a final answer without claims', async () => {
    const task = makeTask();
    server.enqueue({ ...(textReply('The notes say hello.')), usage: { input: 40, output: 5 } });
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(turn).toStrictEqual({
      actions: [{ type: 'final', answer: 'The notes say hello.', claims: [] }],
      model: { id: 'gpt-test', version: '2025-01' },
      text: 'The notes say hello.',
      usage: { inputTokens: 40, outputTokens: 5 },
    });
  });

  it('keeps text that accompanies tool calls', async () => {
    const task = makeTask();
    server.enqueue(toolCallsReply([toolCall('fs__read', { path: 'a' }, 'c1')], { content: 'Reading a first.' }));
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(turn.text).toBe('Reading a first.');
    expect(turn.actions).toHaveLength(1);
  });

  it.each([
    ['unparseable arguments', toolCallsReply([toolCall('fs__read', '{"path": ')])],
    ['arguments that are not an object', toolCallsReply([toolCall('fs__read', '[1,2]')])],
    ['final_answer without an answer', toolCallsReply([toolCall('final_answer', { claims: [] })])],
    ['spawn_subagent without a name', toolCallsReply([toolCall('spawn_subagent', { intent: 'x' })])],
    ['neither calls nor text', textReply(null)],
  ])('rejects %s with ERR_MODEL_PROTOCOL', async (_, reply) => {
    const task = makeTask();
    server.enqueue(reply);
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.retryable).toBe(false);
  });
});

describe('tool name encoding', () => {
  it('maps "." to "__" and back', () => {
    expect(encodeToolName('fs.read')).toBe('fs__read');
    expect(encodeToolName('acme.crm.lookup-v2')).toBe('acme__crm__lookup-v2');
    expect(encodeToolName('summarize')).toBe('summarize');
    expect(decodeToolName('fs__read')).toBe('fs.read');
    expect(decodeToolName('acme__crm__lookup-v2')).toBe('acme.crm.lookup-v2');
  });

  it('shortens long or invalid names to a valid, distinct function name', () => {
    const a = encodeToolName(`a.${'x'.repeat(70)}`);
    const b = encodeToolName(`a.${'x'.repeat(71)}`);
    for (const name of [a, b, encodeToolName('Bad Name!'), encodeToolName('')]) expect(name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(a).not.toBe(b);
    expect(encodeToolName('a b')).not.toBe(encodeToolName('a_b'));
  });

  it('decodes offered names through the table, so a tool whose name holds "__" round-trips', async () => {
    const task = makeTask();
    const long = `acme.${'y'.repeat(70)}`;
    server.enqueue(toolCallsReply([toolCall('my__tool', {}, 'c1'), toolCall(encodeToolName(long), {}, 'c2')]));
    const turn = await driverFor(task).proposeTurn(
      input(task, 0, [], {
        tools: [
          { name: 'my__tool', description: 'd', inputSchema: { type: 'object' } },
          { name: long, description: 'd', inputSchema: { type: 'object' } },
        ],
      }),
    );
    expect(turn.actions).toStrictEqual([
      { type: 'tool', tool: 'my__tool', args: {}, callId: 'c1' },
      { type: 'tool', tool: long, args: {}, callId: 'c2' },
    ]);
  });

  it.each([
    ['two tools with the same function name', ['a.b', 'a__b']],
    ['a tool named like a reserved function', ['final_answer']],
  ])('refuses %s with ERR_MODEL_CONFIG before any request', async (_, names) => {
    const task = makeTask();
    const tools = names.map((name) => ({ name, description: 'd', inputSchema: { type: 'object' } }));
    const error = await failure(driverFor(task).proposeTurn(input(task, 0, [], { tools })));
    expect(error.code).toBe('ERR_MODEL_CONFIG');
    expect(server.requests).toHaveLength(0);
  });
});

describe('OpenAICompatibleDriver: the API key', () => {
  it('never puts the key in the error of a 401 whose body echoes it', async () => {
    const task = makeTask();
    server.enqueue((request) =>
      httpReply(401, {
        error: { message: `Incorrect API key provided: ${String(request.headers['authorization'])}`, type: 'invalid_request_error', code: 'invalid_api_key' },
      }),
    );
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('401');
    expect(error.message).toContain('TEST_MODEL_API_KEY');
    for (const text of [error.message, JSON.stringify(error), String(error.stack), JSON.stringify(error.details)]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(KEY.slice(-10));
    }
  });

  it('redacts the key, and parts of it, from other error bodies', async () => {
    const task = makeTask();
    server.enqueue(httpReply(400, { error: { message: `bad request from key ${KEY} (${KEY.slice(3, 15)}...)` } }));
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.message).toContain('HTTP 400');
    expect(error.message).toContain('bad request from key [redacted]');
    expect(error.message).not.toContain(KEY.slice(3, 15));
    expect(redactSecret(`x ${KEY} y`, KEY)).toBe('x [redacted] y');
  });

  it('never returns the key in a turn', async () => {
    const task = makeTask();
    server.enqueue(toolCallsReply([toolCall('fs__read', { path: 'a' }, 'c1')]));
    const turn = await driverFor(task).proposeTurn(input(task));
    expect(JSON.stringify(turn)).not.toContain(KEY);
  });

  it('fails with ERR_MODEL_CONFIG naming the variable when it is missing, without calling the server', async () => {
    const task = makeTask();
    for (const env of [{}, { TEST_MODEL_API_KEY: '' }]) {
      const error = await failure(driverFor(task, env).proposeTurn(input(task)));
      expect(error.code).toBe('ERR_MODEL_CONFIG');
      expect(error.message).toContain('TEST_MODEL_API_KEY');
    }
    expect(server.requests).toHaveLength(0);
  });

  it('reads the key at call time', async () => {
    const task = makeTask();
    const env: Record<string, string | undefined> = {};
    const driver = driverFor(task, env);
    expect((await failure(driver.proposeTurn(input(task)))).code).toBe('ERR_MODEL_CONFIG');
    env['TEST_MODEL_API_KEY'] = 'sk-rotated';
    server.enqueue(textReply('ok'));
    await driver.proposeTurn(input(task));
    expect(server.requests[0]!.headers['authorization']).toBe('Bearer sk-rotated');
  });

  it('is what createDriver passes the env to', async () => {
    const task = makeTask();
    server.enqueue(textReply('ok'));
    await createDriver(task.agent.model, { env: ENV }).proposeTurn(input(task));
    expect(server.requests[0]!.headers['authorization']).toBe(`Bearer ${KEY}`);
  });
});

describe('OpenAICompatibleDriver: HTTP failures', () => {
  it.each([500, 502, 503, 429, 408])('HTTP %i is ERR_MODEL_UNAVAILABLE and retryable', async (status) => {
    const task = makeTask();
    server.enqueue(httpReply(status, { error: { message: 'overloaded' } }, { 'retry-after': '2' }));
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ status, retryAfter: '2' });
  });

  it.each([400, 404, 422])('HTTP %i is ERR_MODEL_PROTOCOL, not retryable, with status and excerpt', async (status) => {
    const task = makeTask();
    server.enqueue(httpReply(status, { error: { message: 'Invalid value for temperature.' } }));
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`HTTP ${status}: Invalid value for temperature.`);
  });

  it('does not follow redirects', async () => {
    const task = makeTask();
    server.enqueue(httpReply(302, '', { location: 'http://127.0.0.1:9/steal' }));
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.message).toContain('302');
  });

  it.each([
    ['a body that is not JSON', httpReply(200, '{"choices": [')],
    ['an HTML page', httpReply(200, '<html>gateway</html>', { 'content-type': 'text/html' })],
    ['no choices', httpReply(200, { choices: [] })],
    ['a message of the wrong shape', httpReply(200, { choices: [{ message: { tool_calls: 'fs__read' } }] })],
  ])('%s is ERR_MODEL_PROTOCOL', async (_, reply) => {
    const task = makeTask();
    server.enqueue(reply);
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_PROTOCOL');
    expect(error.retryable).toBe(false);
  });

  it('a server slower than requestTimeout is ERR_MODEL_UNAVAILABLE and retryable', async () => {
    const task = makeTask({ requestTimeout: '200ms' });
    // The reply comes far later than any loaded machine delays the timeout: failing before it shows
    // the request was given up, not answered (no tighter bound: the wall time grows with the load).
    server.enqueue(delayed(textReply('too late'), 120_000));
    const started = Date.now();
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('200ms');
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('an unreachable server is ERR_MODEL_UNAVAILABLE and retryable', async () => {
    const gone = await startFakeOpenAIServer();
    await gone.close();
    const task = makeTask({ baseUrl: gone.url });
    const error = await failure(driverFor(task).proposeTurn(input(task)));
    expect(error.code).toBe('ERR_MODEL_UNAVAILABLE');
    expect(error.retryable).toBe(true);
  });

  it("rethrows the caller's abort reason, so cancellation stays cancellation", async () => {
    const task = makeTask();
    server.enqueue(delayed(textReply('too late'), 120_000));
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    setTimeout(() => controller.abort(reason), 100);
    await expect(driverFor(task).proposeTurn(input(task), controller.signal)).rejects.toBe(reason);
  });
});

describe('fake OpenAI server', () => {
  const post = (body: unknown) =>
    fetch(`${server.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const call = { id: 'c1', type: 'function', function: { name: 'fs__read', arguments: '{}' } };

  it.each([
    ['missing messages', { model: 'm' }],
    ['a tool message without a preceding call', { model: 'm', messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'c1', content: '{}' }] }],
    ['a tool message answering an unknown id', { model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: 'c2', content: '{}' }] }],
    ['an unanswered call', { model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [call] }, { role: 'user', content: 'x' }] }],
    ['a function name with a dot', { model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'fs.read' } }] }],
  ])('answers 400 to %s, like OpenAI', async (_, body) => {
    server.enqueue(textReply('should not be used'));
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect(server.pending()).toBe(1);
  });

  it('accepts a valid transcript', async () => {
    server.enqueue(textReply('ok'));
    const response = await post({ model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: 'c1', content: '{}' }] });
    expect(response.status).toBe(200);
  });
});
