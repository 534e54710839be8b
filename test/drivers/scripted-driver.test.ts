import { describe, expect, it } from 'vitest';
import { createDriver, pickDriver } from '../../drivers/create-driver';
import type { DriverInput } from '../../drivers/model-driver';
import { OpenAIDriver as OpenAICompatibleDriver } from '../../drivers/openai-driver';
import { ScriptedDriver, type ScriptedModel } from '../../drivers/scripted-driver';
import { TaskSchema, type Task } from '../../task/task-schema';

function scriptedTask(script: unknown[], model: Record<string, unknown> = {}): Task {
  return TaskSchema.parse({
    user: 'alice',
    intent: 'summarise the notes',
    agent: { name: 'main', model: { driver: 'scripted', script, ...model } },
    subagents: { researcher: { intent: 'find sources', agent: { name: 'researcher', model: { driver: 'scripted', script: [{ final: 'ok' }] } } } },
  });
}

function driverFor(task: Task): ScriptedDriver {
  if (task.agent.model.driver !== 'scripted') throw new Error('expected a scripted model');
  return new ScriptedDriver(task.agent.model);
}

function inputAt(task: Task, turn: number): DriverInput {
  return { task, turn, steps: [], tools: [], subagents: [] };
}

describe('ScriptedDriver', () => {
  const task = scriptedTask(
    [
      { tool: 'fs.read', args: { path: 'notes.md' } },
      { tool: 'fs.list' },
      { spawn: 'researcher', intent: 'find three sources' },
      { spawn: 'researcher' },
      { final: 'done', claims: ['read notes.md'] },
      { final: 'no claims' },
    ],
    { id: 'replay-model', version: '7' },
  );
  const driver = driverFor(task);

  it.each([
    [0, { type: 'tool', tool: 'fs.read', args: { path: 'notes.md' } }],
    [1, { type: 'tool', tool: 'fs.list', args: {} }],
    [2, { type: 'spawn', subagent: 'researcher', intent: 'find three sources' }],
    [3, { type: 'spawn', subagent: 'researcher' }],
    [4, { type: 'final', answer: 'done', claims: ['read notes.md'] }],
    [5, { type: 'final', answer: 'no claims', claims: [] }],
  ])('turn %i returns script[%i] as one action', async (turn, expected) => {
    const result = await driver.proposeTurn(inputAt(task, turn));
    expect(result).toStrictEqual({ actions: [expected], model: { id: 'replay-model', version: '7' } });
  });

  it('uses the schema defaults for id and version', async () => {
    const plain = scriptedTask([{ final: 'x' }]);
    expect((await driverFor(plain).proposeTurn(inputAt(plain, 0))).model).toStrictEqual({ id: 'scripted', version: '1' });
  });

  it('returns copies, so a caller cannot rewrite the script', async () => {
    const first = await driver.proposeTurn(inputAt(task, 0));
    const action = first.actions[0];
    if (action?.type !== 'tool') throw new Error('expected a tool action');
    action.args['path'] = '/etc/passwd';
    const again = await driver.proposeTurn(inputAt(task, 0));
    expect(again.actions[0]).toMatchObject({ args: { path: 'notes.md' } });
  });

  it('fails with ERR_SCRIPT_EXHAUSTED past the end, saying how long the script was', async () => {
    const error = await driver.proposeTurn(inputAt(task, 6)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_SCRIPT_EXHAUSTED', retryable: false, details: { actions: 6, turn: 6 } });
    expect((error as Error).message).toContain('6 actions');
  });

  it('says "1 action" for a one-line script', async () => {
    const one = scriptedTask([{ final: 'x' }]);
    await expect(driverFor(one).proposeTurn(inputAt(one, 1))).rejects.toThrow(/has 1 action;/);
  });
});

describe('createDriver', () => {
  it('picks the driver by model.driver', async () => {
    const task = scriptedTask([{ final: 'x' }]);
    expect(await pickDriver(task.agent.model)).toBeInstanceOf(ScriptedDriver);
    const openai = TaskSchema.parse({
      user: 'alice',
      intent: 'x',
      agent: { name: 'main', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: 'http://127.0.0.1:9/v1' } },
    });
    expect(await pickDriver(openai.agent.model, { env: {} })).toBeInstanceOf(OpenAICompatibleDriver);
  });

  it('builds a working scripted driver', async () => {
    const task = scriptedTask([{ tool: 'fs.read', args: { path: 'a' } }]);
    const model = task.agent.model as ScriptedModel;
    const turn = await createDriver(model).proposeTurn(inputAt(task, 0));
    expect(turn.actions).toStrictEqual([{ type: 'tool', tool: 'fs.read', args: { path: 'a' } }]);
  });

  it('makes every turn well-formed: a lone surrogate in a key or value becomes U+FFFD', async () => {
    const task = scriptedTask([{ tool: 'fs.read', args: { path: 'a\uD800', ['k\uDC00']: ['\uDC00\uD800'] } }]);
    const turn = await createDriver(task.agent.model as ScriptedModel).proposeTurn(inputAt(task, 0));
    expect(turn.actions).toStrictEqual([{ type: 'tool', tool: 'fs.read', args: { path: 'a\uFFFD', ['k\uFFFD']: ['\uFFFD\uFFFD'] } }]);
  });
});
