/**
 * What waits for a human across running tasks: every running agent task is asked for its state,
 * each briefly and in parallel, so a task whose worker is gone cannot hold up the list.
 */
import type { Client } from '@temporalio/client';
import type { PendingApproval } from '../task/task-run';
import { AGENT_TASK_WORKFLOW, taskStateQuery } from '../workflows/definitions';

/** How long one task may take to answer. */
export const PENDING_QUERY_DEADLINE_MS = 2000;

export interface PendingApprovalOfTask extends PendingApproval {
  workflowId: string;
  /** The agent whose action waits. */
  agent: string;
}

/** Pending approvals of every running agent task (sub-agents included), oldest request first. */
export async function listPendingApprovals(client: Client): Promise<PendingApprovalOfTask[]> {
  const ids: string[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowType = "${AGENT_TASK_WORKFLOW}" AND ExecutionStatus = "Running"` })) ids.push(execution.workflowId);
  const answers = await Promise.all(
    ids.map(async (workflowId) => {
      try {
        const state = await client.withDeadline(Date.now() + PENDING_QUERY_DEADLINE_MS, () => client.workflow.getHandle(workflowId).query(taskStateQuery));
        return (state.pendingApprovals ?? []).map((p) => ({ workflowId, agent: state.agent, ...p }));
      } catch {
        return [];
      }
    }),
  );
  return answers.flat().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}
