/**
 * Builds the task a sub-agent runs under. Pure: it runs in the workflow.
 *
 * The sub-agent asks for exactly the grants it declares; whether the parent may delegate them is
 * decided when its grant is issued (identity/delegation.ts), which refuses any widening by name
 * instead of silently narrowing. Limits can only shrink here, and the parent's policies always
 * apply to the child.
 */
import type { Task } from '../task/task-schema';
import { narrowSubagentTools } from '../tools/subagent-tools';

export function deriveSubagentTask(parent: Task, name: string, intent: string | undefined): Task {
  const sub = parent.subagents[name];
  if (sub === undefined) throw new TypeError(`sub-agent "${name}" is not declared`);
  const limits = { ...parent.limits, ...sub.limits };
  return {
    user: parent.user,
    intent: intent ?? sub.intent,
    agent: sub.agent,
    // A tool named like one of the parent's is the parent's definition, never wider.
    tools: narrowSubagentTools(parent.tools, sub.tools),
    grants: sub.grants,
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
    // The task tree has one pre-task snapshot, taken by the root.
    snapshot: false,
  };
}
