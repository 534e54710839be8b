/**
 * Open finding (low): a sub-agent's limits are "its own where it names them, each narrowed by the
 * parent's" (`narrowLimits`, permissions/task-narrowing.ts), so a limit it leaves out should be its
 * parent's. But `SubagentSchema.limits` is `LimitsSchema.partial()`, and zod 4 still fills each
 * field's default inside `.partial()` when the object is present: a sub-agent that names one limit
 * gets every other at the schema's default (toolTimeout 5s, deadline 10m, maxSteps 50), narrowed
 * below the parent's; one that names none gets `{}` from the task file, but the workflow parses its
 * input again on entry (`AgentTaskInputSchema`, workflows/agent-task.ts), `{}` is then present and
 * filled the same way. Seen in test/workflows/calls-in-flight.test.ts ("parent killed"): the
 * parent's toolTimeout 900s reached the sub-agent as 5s and its program's wall-time limit raced
 * the parent's kill. The safe direction (only narrower), but not what the task file says.
 * Suggested fix: a partial limits schema without defaults for sub-agents (and behind a patch, as
 * the parent derives the child's task in workflow code).
 */
import { describe, expect, it } from 'vitest';
import { deriveSubagentTask } from '../../../permissions/derive-subagent-task';
import { parseTask } from '../../../task/load-task-file';
import { AgentTaskInputSchema } from '../../../task/task-run';
import { REPO_ROOT } from '../../support/warden-test-env';

const parentLimits = { toolTimeout: '900s', deadline: '1h', maxSteps: 200 };

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

describe('a sub-agent inherits every limit it does not name', () => {
  it.each([
    ['names none, as loaded', undefined, false],
    ['names none, as the workflow parses its input', undefined, true],
    ['names maxSteps only, as loaded', { maxSteps: 10 }, false],
  ] as const)('%s', (_row, subLimits, reparsed) => {
    const loaded = taskWith(subLimits);
    const task = reparsed ? AgentTaskInputSchema.parse(JSON.parse(JSON.stringify({ task: loaded }))).task : loaded;
    const limits = deriveSubagentTask(task, 'child', 'work').limits;
    expect({ toolTimeout: limits.toolTimeout, deadline: limits.deadline, maxSteps: limits.maxSteps }).toEqual({ ...parentLimits, maxSteps: subLimits?.maxSteps ?? parentLimits.maxSteps });
  });
});
