/**
 * A sub-agent's limits are its own where it names them (each narrowed by its parent's) and its
 * parent's where it does not (`narrowLimits`, permissions/task-narrowing.ts). Was an open finding
 * (s14, final14): `SubagentSchema.limits` was `LimitsSchema.partial()`, and zod 4 fills each field's
 * default inside `.partial()` once the object is present, so a sub-agent naming one limit got the
 * schema's defaults for the rest (toolTimeout 5s under a parent's 900s), and one naming none got
 * them too once the workflow parsed its input again on entry (`AgentTaskInputSchema`). Now
 * `SubagentLimitsSchema` has no defaults; runs recorded before patch
 * `warden-subagent-limits-inherited` replay with the schema's defaults (`'schema-defaults'`).
 * Every subset of named limits, as loaded and as the workflow parses it.
 */
import { describe, expect, it } from 'vitest';
import { deriveSubagentTask } from '../../permissions/derive-subagent-task';
import { LIMIT_NARROWING } from '../../permissions/task-narrowing';
import { parseTask } from '../../task/load-task-file';
import { AgentTaskInputSchema } from '../../task/task-run';
import { SubagentLimitsSchema, type Limits } from '../../task/task-schema';
import { REPO_ROOT } from '../support/warden-test-env';

/** The parent's limits: none of them the schema's default. */
const parentLimits = { maxSteps: 200, deadline: '1h', toolTimeout: '900s', toolMemoryMb: 256, onDeny: 'continue', approvalTimeout: '1h', maxDepth: 5 } as const;
/** What a sub-agent may name instead: each narrower than the parent's and not the schema's default either. */
const childLimits = { maxSteps: 10, deadline: '20m', toolTimeout: '60s', toolMemoryMb: 32, onDeny: 'stop', approvalTimeout: '5m', maxDepth: 1 } as const;
const KEYS = Object.keys(parentLimits) as (keyof typeof parentLimits)[];

function taskWith(subLimits: Record<string, unknown> | undefined) {
  return parseTask(
    {
      user: 'sam@example.com',
      intent: 'delegate',
      agent: { name: 'parent', model: { driver: 'scripted', script: [{ spawn: 'child' }, { final: 'done' }] } },
      grants: { subagents: ['child'] },
      limits: parentLimits,
      subagents: { child: { intent: 'work', agent: { name: 'child', model: { driver: 'scripted', script: [{ final: 'done' }] } }, ...(subLimits === undefined ? {} : { limits: subLimits }) } },
    },
    'subagent-limits.yaml',
    REPO_ROOT,
  );
}

/** The task as the workflow sees it: its input after a JSON round trip, parsed again on entry. */
const asTheWorkflowParsesIt = (task: ReturnType<typeof taskWith>) => AgentTaskInputSchema.parse(JSON.parse(JSON.stringify({ task }))).task;

const pick = (limits: Limits) => Object.fromEntries(KEYS.map((k) => [k, limits[k]]));

/** Every subset of the seven limits with a default, by bit mask. */
const subsets = Array.from({ length: 1 << KEYS.length }, (_, mask) => KEYS.filter((_k, i) => mask & (1 << i)));

describe('a sub-agent inherits every limit it does not name', () => {
  it('the table covers every limit that has a default', () => {
    expect(KEYS.sort()).toEqual(Object.keys(LIMIT_NARROWING).filter((k) => !k.startsWith('process') && k !== 'workspaceMb').sort());
  });

  it.each([
    ['names none, as loaded', undefined, false],
    ['names none, as the workflow parses its input', undefined, true],
    ['names maxSteps only, as loaded', { maxSteps: 10 }, false],
    ['names maxSteps only, as the workflow parses its input', { maxSteps: 10 }, true],
  ] as const)('%s', (_row, subLimits, reparsed) => {
    const loaded = taskWith(subLimits);
    const task = reparsed ? asTheWorkflowParsesIt(loaded) : loaded;
    expect(pick(deriveSubagentTask(task, 'child', 'work').limits)).toEqual({ ...parentLimits, ...(subLimits ?? {}) });
  });

  it('for every subset of named limits, loaded and parsed again: named ones are its own, the rest its parent\'s', () => {
    for (const named of subsets) {
      const own = Object.fromEntries(named.map((k) => [k, childLimits[k]]));
      for (const reparsed of [false, true]) {
        const loaded = taskWith(own);
        const task = reparsed ? asTheWorkflowParsesIt(loaded) : loaded;
        expect(pick(deriveSubagentTask(task, 'child', 'work').limits), `${named.join(',') || 'none'}${reparsed ? ' (parsed again)' : ''}`).toEqual({ ...parentLimits, ...own });
      }
    }
  });

  it('the sub-agent limits schema fills nothing in', () => {
    expect(SubagentLimitsSchema.parse({})).toEqual({});
    expect(SubagentLimitsSchema.parse({ maxDepth: 1 })).toEqual({ maxDepth: 1 });
  });

  it('a run recorded before the patch replays with the schema defaults it had then', () => {
    const task = asTheWorkflowParsesIt(taskWith({ maxSteps: 10 }));
    expect(pick(deriveSubagentTask(task, 'child', 'work', 'schema-defaults').limits)).toEqual({ ...parentLimits, maxSteps: 10, toolTimeout: '5s', deadline: '10m', toolMemoryMb: 64, onDeny: 'stop', approvalTimeout: '15m', maxDepth: 3 });
  });
});
