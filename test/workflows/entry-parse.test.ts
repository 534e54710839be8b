/**
 * The workflow's entry parse runs without zod's compiled fast path (workflows/agent-task.ts
 * `ONE_PARSE`: each run evaluates its own schemas, so compiling a parser per schema cost more than
 * the one parse it served). It must accept, reject and return exactly what the default parse
 * does: checked on every input a committed history started with (both loops, sub-agents too),
 * the same inputs with their members in reverse order, and broken variants of each.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { ONE_PARSE } from '../../workflows/agent-task';
import { AgentTaskFlowInputSchema } from '../../task/data-flow';
import { AgentTaskInputSchema } from '../../task/task-run';
import { REPO_ROOT } from '../support/warden-test-env';

const HISTORY_DIR = join(REPO_ROOT, 'test', 'history-files');

function startedInputs(): [string, Record<string, unknown>][] {
  return readdirSync(HISTORY_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const stored = JSON.parse(readFileSync(join(HISTORY_DIR, file), 'utf8')) as { history: object };
      const first = temporal.api.history.v1.History.fromObject(stored.history).events?.[0]?.workflowExecutionStartedEventAttributes;
      return [file, defaultPayloadConverter.fromPayload(first!.input!.payloads![0]!) as Record<string, unknown>];
    });
}

function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]));
}

function broken(input: Record<string, unknown>): [string, unknown][] {
  const task = input.task as Record<string, unknown>;
  return [
    ['no task', { ...input, task: undefined }],
    ['an unknown member', { ...input, extra: 1 }],
    ['a task member of the wrong type', { ...input, task: { ...task, limits: 'none' } }],
    ['an unknown task member', { ...input, task: { ...task, surprise: true } }],
    ['not an object', [input]],
  ];
}

describe.each([
  ['agentTask input', AgentTaskInputSchema],
  ['data-flow input', AgentTaskFlowInputSchema],
] as const)('%s: the entry parse without the compiled fast path', (_name, schema) => {
  const inputs = startedInputs();
  it('has inputs from the committed histories, some of them valid', () => {
    expect(inputs.length).toBeGreaterThanOrEqual(4);
    expect(inputs.filter(([, input]) => schema.safeParse(input, ONE_PARSE).success).length).toBeGreaterThanOrEqual(2);
  });
  it.each(inputs)('%s: the same result as the default parse (members in either order, broken variants)', (_file, input) => {
    for (const [what, candidate] of [['as recorded', input], ['members reversed', reversed(input)], ...broken(input)] as [string, unknown][]) {
      const plain = schema.safeParse(candidate);
      const once = schema.safeParse(candidate, ONE_PARSE);
      expect({ what, success: once.success }).toEqual({ what, success: plain.success });
      if (plain.success && once.success) expect(once.data).toStrictEqual(plain.data);
      else expect(once.error?.issues).toEqual(plain.error?.issues);
    }
  });
});
