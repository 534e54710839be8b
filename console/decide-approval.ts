/**
 * The console's approval action: one call, the same path `warden approve|deny` takes (the
 * decision goes to the task as the approver the console was started for; the task checks it is
 * pending). Kept as one function so it follows the CLI's path when that changes.
 */
import type { Client } from '@temporalio/client';
import { approvalSignal, taskStateQuery } from '../workflows/definitions';

export interface ApprovalRequestRef {
  workflowId: string;
  requestId: string;
  approved: boolean;
  reason?: string;
}

export type ApprovalOutcome = 'sent' | 'not-pending';

/** Decides a held action as `approver` (e.g. `user:alice`). */
export type DecideApproval = (client: Client, approver: string, decision: ApprovalRequestRef) => Promise<ApprovalOutcome>;

export const decideApproval: DecideApproval = async (client, approver, decision) => {
  const handle = client.workflow.getHandle(decision.workflowId);
  const state = await handle.query(taskStateQuery);
  if (!(state.pendingApprovals ?? []).some((p) => p.requestId === decision.requestId)) return 'not-pending';
  await handle.signal(approvalSignal, {
    requestId: decision.requestId,
    approved: decision.approved,
    approver,
    ...(decision.reason === undefined ? {} : { reason: decision.reason }),
  });
  return 'sent';
};
