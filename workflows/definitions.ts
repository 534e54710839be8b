/**
 * Names shared by workflows, workers and clients. Defined once here so a client script, the CLI
 * and the workflow cannot disagree on a query name or a task queue.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { TaskState } from '../task/task-run';

/** The task queue Warden's workers poll for agent tasks. */
export const TASK_QUEUE = 'warden-agent-tasks';

/** Workflow type name of an agent task (the exported function is `agentTask`). */
export const AGENT_TASK_WORKFLOW = 'agentTask';

/** The workflow id of the sub-agent a spawn step starts: `<parent>/<sub-agent>-<step index>`. */
export function subagentWorkflowId(parentWorkflowId: string, subagent: string, stepIndex: number): string {
  return `${parentWorkflowId}/${subagent}-${stepIndex}`;
}

/** Current state of a running task: steps so far, children, status. */
export const taskStateQuery = defineQuery<TaskState>('warden.taskState');

/** A human's decision on an action held for approval. */
export interface ApprovalDecision {
  requestId: string;
  approved: boolean;
  /** Who decided, e.g. `user:alice`. */
  approver: string;
  reason?: string;
}

/** Decides an action the policy engine held for approval. */
export const approvalSignal = defineSignal<[ApprovalDecision]>('warden.approval');
