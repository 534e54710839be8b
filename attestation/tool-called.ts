/**
 * `tool.called`: did the agent really make the call it claims? Decided on the steps Warden
 * recorded (derived from workflow history), never on the agent's account. Only a call that was
 * allowed, ran, and did not fail counts; sub-agents' calls count for the tree.
 */
import type { StepRecord, TaskResult } from '../task/task-run';
import { canonicalize } from '../custody/canonical-json';

export interface ToolCallMatch {
  /** `<workflowId>#<step index>` of the first matching call, when there is one. */
  at?: string;
  /** Calls of the tool that ran (any arguments), to explain a refutation. */
  callsOfTool: number;
}

function argsMatch(actual: Record<string, unknown>, expected: Record<string, unknown>): boolean {
  return Object.entries(expected).every(([key, value]) => Object.hasOwn(actual, key) && canonicalize(actual[key]) === canonicalize(value));
}

function succeeded(step: StepRecord): boolean {
  return step.kind === 'tool' && step.decision === 'allow' && step.executed && step.error === undefined;
}

/** Searches the task tree (this task's steps, then its sub-agents', depth first). */
export function findToolCall(result: Pick<TaskResult, 'workflowId' | 'steps' | 'children'>, tool: string, args: Record<string, unknown>): ToolCallMatch {
  let callsOfTool = 0;
  let at: string | undefined;
  const visit = (node: Pick<TaskResult, 'workflowId' | 'steps' | 'children'>): void => {
    for (const step of node.steps) {
      if (step.tool !== tool || !succeeded(step)) continue;
      callsOfTool++;
      if (at === undefined && argsMatch(step.args, args)) at = `${node.workflowId}#${step.index}`;
    }
    for (const child of node.children) visit(child);
  };
  visit(result);
  return at === undefined ? { callsOfTool } : { at, callsOfTool };
}
