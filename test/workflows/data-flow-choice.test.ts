/**
 * Which tasks take the data flow (workflows/data-flow-choice.ts): opt-in, roots only, and only
 * tasks that use nothing the flow does not carry. Every other input runs on the original loop,
 * where a sub-agent's handoff is verified. A pure function of the input: replays decide the same.
 */
import { describe, expect, it } from 'vitest';
import { takesDataFlow } from '../../workflows/data-flow-choice';

const base = { user: 'dana@example.com', intent: 'x', agent: { name: 'a', model: { driver: 'scripted', script: [] } }, dataFlow: true };

describe('takesDataFlow', () => {
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['a root task that opts in', { task: base }, true],
    ['a root task with flow tuning', { task: base, flow: { maxRunEvents: 100 } }, true],
    ['the default (no dataFlow)', { task: { ...base, dataFlow: undefined } }, false],
    ['dataFlow: false', { task: { ...base, dataFlow: false } }, false],
    ['dataFlow as a string', { task: { ...base, dataFlow: 'true' } }, false],
    ['no task', {}, false],
    ["a sub-agent's handoff", { task: base, handoff: { grantId: 'g', depth: 1, lineage: ['p'], deadlineAt: 1 } }, false],
    ['a place below a root (older fields)', { task: base, lineage: ['p'], depth: 1 }, false],
    ['depth alone', { task: base, depth: 2 }, false],
    ['a task that may spawn (sub-agents declared)', { task: { ...base, subagents: { s: {} } } }, false],
    ['a task that may spawn (sub-agents granted)', { task: { ...base, grants: { subagents: ['s'] } } }, false],
    ['MCP tool sources', { task: { ...base, tools: { mcp: { fs: { command: 'x' } } } } }, false],
    ['an mcp serve session', { task: { ...base, agent: { name: 'a', model: { driver: 'mcp-client' } } } }, false],
    ['host code allowed into the workspace', { task: { ...base, resources: { allowHostCode: ['.envrc'] } } }, false],
    ['host code, an empty list', { task: { ...base, resources: { allowHostCode: [] } } }, false],
    // Warden's own fields on a root start take the flow, whose input check refuses them (data-flow.test.ts).
    ['a forged identity on a root start', { task: base, identity: { grantId: 'g' } }, true],
  ];
  it.each(cases)('%s', (_what, input, expected) => {
    expect(takesDataFlow(input)).toBe(expected);
  });
});
