/**
 * `dataFlow: true` in a task file is a request the user can see honoured or refused, never one
 * silently dropped: a task the data flow does not carry yet is a bad task file (exit 2) naming
 * what stands in the way and what to change. The workflow's own choice
 * (workflows/data-flow-choice.ts `takesDataFlow`) still falls back to the original loop for tasks
 * started another way; test/task/data-flow-eligibility.test.ts keeps the two in step.
 */
import type { TaskFileIssue } from '../errors';
import type { Task } from './task-schema';

/** What keeps `task` off the data flow, one issue per field; empty when it can take it (or did not ask). */
export function dataFlowIssues(task: Task): TaskFileIssue[] {
  if (task.dataFlow !== true) return [];
  const obstacles: { path: string; what: string }[] = [];
  if (task.agent.model.driver === 'mcp-client') obstacles.push({ path: 'agent.model.driver', what: 'an "mcp-client" agent (a `warden mcp serve` session)' });
  if (Object.keys(task.tools.mcp ?? {}).length > 0) obstacles.push({ path: 'tools.mcp', what: 'MCP servers as tool sources' });
  // A granted sub-agent is a declared one (the loader checks), so this covers grants.subagents too.
  if (Object.keys(task.subagents).length > 0) obstacles.push({ path: 'subagents', what: 'sub-agents (their verified handoffs are not ported to it yet)' });
  if (task.resources.allowHostCode !== undefined) obstacles.push({ path: 'resources.allowHostCode', what: 'host-code files allowed into the workspace' });
  return obstacles.map(({ path, what }) => ({
    path: 'dataFlow',
    message: `is true, but the data flow does not carry ${what} (${path}); remove \`dataFlow: true\` to run this task on the original loop, or remove ${path}`,
  }));
}
