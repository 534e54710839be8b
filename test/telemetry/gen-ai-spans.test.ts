/**
 * The GenAI shape of a task's activity spans, and the attributes a model's answer adds: span
 * names, kinds and attributes per the OpenTelemetry GenAI conventions, tested as tables.
 */
import { SpanKind } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { activitySpanOf } from '../../telemetry/gen-ai-spans';
import { modelResponseAttributes, modelServerAttributes, providerNameOf, usageOfTurn } from '../../telemetry/warden-span-attributes';
import { parseTask } from '../../task/load-task-file';
import type { ModelTurn } from '../../task/task-run';

const task = parseTask(
  {
    user: 'erin@example.com',
    intent: 'tidy the notes',
    agent: { name: 'tidy', model: { driver: 'openai-compatible', id: 'gpt-4o-mini', baseUrl: 'https://api.example.com:8443/v1' } },
    tools: { builtin: ['fs.read'], custom: [{ name: 'shout', description: 'Upper-cases a text.', source: 'return input.text.toUpperCase();' }] },
    grants: { tools: ['fs.read', 'shout'] },
    resources: { workspace: '.' },
  },
  'task.yaml',
  '/tmp',
);

describe('activitySpanOf', () => {
  it.each([
    ['proposeTurn', { task, workflowId: 'wf-1', turn: 0, steps: [] }, 'chat gpt-4o-mini', SpanKind.CLIENT, { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'server.address': 'api.example.com', 'server.port': 8443 }],
    ['runTool', { task, workflowId: 'wf-1/sub-2', rootWorkflowId: 'wf-1', tool: 'fs.read', args: { path: 'a' }, modelCallId: 'call_9' }, 'execute_tool fs.read', SpanKind.INTERNAL, { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'fs.read', 'gen_ai.tool.call.id': 'call_9', 'gen_ai.tool.type': 'function', 'warden.task.id': 'wf-1', 'gen_ai.conversation.id': 'wf-1', 'gen_ai.agent.id': 'wf-1/sub-2' }],
    ['runTool', { task, workflowId: 'wf-1', tool: 'shout', args: { text: 'x' } }, 'execute_tool shout', SpanKind.INTERNAL, { 'gen_ai.tool.description': 'Upper-cases a text.' }],
    ['checkPolicy', { task, workflowId: 'wf-1', tool: 'spawn:helper', args: {} }, 'check_policy spawn:helper', SpanKind.INTERNAL, { 'warden.operation.name': 'check_policy', 'warden.policy.tool': 'spawn:helper' }],
  ])('%s runs in its GenAI span', (activityType, input, name, kind, attributes) => {
    const shape = activitySpanOf(activityType, input, '7');
    expect(shape).toMatchObject({ name, kind, attributes: { ...attributes, temporalActivityType: activityType, temporalActivityId: '7' } });
    // Every value is a valid attribute value: nothing undefined slips through.
    expect(Object.values(shape?.attributes ?? {}).every((v) => v !== undefined)).toBe(true);
  });

  it('puts no GenAI operation or tool attribute on a policy check', () => {
    const shape = activitySpanOf('checkPolicy', { task, workflowId: 'wf-1', tool: 'fs.read', args: {} }, '1');
    expect(Object.keys(shape?.attributes ?? {}).filter((k) => k.startsWith('gen_ai.'))).toEqual([]);
  });

  it.each([
    ['beginTask', { task, workflowId: 'wf-1' }],
    ['proposeTurn', { workflowId: 'wf-1' }],
    ['proposeTurn', { task: { agent: {} }, workflowId: 'wf-1' }],
    ['runTool', { task, workflowId: 'wf-1' }],
    ['proposeTurn', 'not an object'],
    ['proposeTurn', undefined],
  ])('leaves %s with input %j to Temporal\'s own span', (activityType, input) => {
    expect(activitySpanOf(activityType, input, '1')).toBeUndefined();
  });
});

describe('model attributes', () => {
  it.each([
    ['scripted', 'warden.scripted'],
    ['openai-compatible', 'openai'],
    ['anthropic', 'anthropic'],
    ['something-new', 'something-new'],
  ])('driver %s is provider %s', (driver, provider) => {
    expect(providerNameOf({ driver } as never)).toBe(provider);
  });

  it.each([
    ['http://127.0.0.1:11434/v1', { 'server.address': '127.0.0.1', 'server.port': 11434 }],
    ['https://api.openai.com/v1', { 'server.address': 'api.openai.com', 'server.port': 443 }],
    ['http://[::1]:8080/', { 'server.address': '::1', 'server.port': 8080 }],
    [undefined, {}],
  ])('baseUrl %s is server %j', (baseUrl, expected) => {
    expect(modelServerAttributes({ driver: 'openai-compatible', id: 'm', version: '1', ...(baseUrl === undefined ? {} : { baseUrl }) } as never)).toEqual(expected);
  });

  it.each([
    [{ usage: { inputTokens: 12, outputTokens: 3 } }, { inputTokens: 12, outputTokens: 3 }],
    [{ usage: { input_tokens: 5, output_tokens: 0 } }, { inputTokens: 5, outputTokens: 0 }],
    [{ usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } }, { inputTokens: 7, outputTokens: 2 }],
    [{ usage: { inputTokens: -1, outputTokens: 1.5 } }, {}],
    [{ usage: { inputTokens: '12' } }, {}],
    [{ usage: null }, {}],
    [{}, {}],
    [null, {}],
  ])('usage of %j is %j (absent, never zero, when not reported)', (turn, expected) => {
    expect(usageOfTurn(turn)).toEqual(expected);
  });

  it('describes the answer: response model, id, finish reasons and usage when the driver passes them on', () => {
    const base: ModelTurn = { actions: [{ type: 'final', answer: 'ok', claims: [] }], model: { id: 'gpt-4o-mini-2024-07-18', version: '1' } };
    expect(modelResponseAttributes(base)).toMatchObject({ 'gen_ai.response.model': 'gpt-4o-mini-2024-07-18' });
    expect(modelResponseAttributes(base)['gen_ai.usage.input_tokens']).toBeUndefined();
    const full = { ...base, responseId: 'chatcmpl-1', finishReasons: ['tool_calls'], usage: { inputTokens: 100, outputTokens: 20 } } as ModelTurn;
    expect(modelResponseAttributes(full)).toMatchObject({
      'gen_ai.response.id': 'chatcmpl-1',
      'gen_ai.response.finish_reasons': ['tool_calls'],
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 20,
    });
    const nested = { ...base, response: { id: 'msg_1', finishReasons: 'end_turn', model: 'claude-x' } } as unknown as ModelTurn;
    expect(modelResponseAttributes(nested)).toMatchObject({ 'gen_ai.response.id': 'msg_1', 'gen_ai.response.finish_reasons': ['end_turn'], 'gen_ai.response.model': 'claude-x' });
  });
});
