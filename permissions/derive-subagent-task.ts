/**
 * Builds the task a sub-agent runs under. Pure: it runs in the workflow.
 *
 * Invariant: a sub-agent never holds more than its parent. Every grant is intersected with the
 * parent's, limits can only shrink, and the parent's policies always apply to the child.
 */
import type { Task } from '../task/task-schema';

function intersect(child: readonly string[], parent: readonly string[]): string[] {
  return child.filter((x) => parent.includes(x));
}

export function deriveSubagentTask(parent: Task, name: string, intent: string | undefined): Task {
  const sub = parent.subagents[name];
  if (sub === undefined) throw new TypeError(`sub-agent "${name}" is not declared`);
  const limits = { ...parent.limits, ...sub.limits };
  return {
    user: parent.user,
    intent: intent ?? sub.intent,
    agent: sub.agent,
    tools: sub.tools,
    grants: {
      tools: intersect(sub.grants.tools, parent.grants.tools),
      subagents: intersect(sub.grants.subagents, parent.grants.subagents),
      hosts: intersect(sub.grants.hosts, parent.grants.hosts),
      databases: intersect(sub.grants.databases, parent.grants.databases),
    },
    policies: [...parent.policies, ...sub.policies],
    limits: {
      ...limits,
      maxSteps: Math.min(limits.maxSteps, parent.limits.maxSteps),
      toolMemoryMb: Math.min(limits.toolMemoryMb, parent.limits.toolMemoryMb),
      maxDepth: Math.min(limits.maxDepth, parent.limits.maxDepth),
      onDeny: parent.limits.onDeny === 'stop' ? 'stop' : limits.onDeny,
    },
    resources: parent.resources,
    subagents: parent.subagents,
  };
}
