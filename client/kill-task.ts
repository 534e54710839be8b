/**
 * `warden kill` for every front end (the CLI, a console, a program): block a running task now and
 * remediate it. The kill is the task's `warden.kill` Update, signed here like an approval decision
 * with a registered approver's key over exactly this run (identity/approval-decision.ts); the
 * workflow verifies the signature in an activity (`authorizeKill`), then revokes the task's grant
 * (its sub-agents' credentials stop with it), stops issuing actions, tells running sub-agents, and
 * runs the task's compensations.
 *
 * Invariant: the approver's private key never leaves this process; what travels (and lands in
 * history) is the signature over one kill of one run.
 */
import { describeTask } from './task-not-found';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { wellFormed } from '../custody/span-record';
import { isErrorCode, MonitorError, WardenError } from '../errors';
import { signApprovalDecision, type ApproverKeyFile } from '../identity/approval-decision';
import type { TaskResult } from '../task/task-run';
import { KILL_ACTION, KILL_REQUEST_ID, killUpdate, type KillOutcome } from '../workflows/definitions';
import type { agentTask } from '../workflows/agent-task';
import { agentTaskResult } from './start-agent-task';

export interface KillTaskOptions {
  workflowId: string;
  /** A registered approver's key file (`warden approvers add`; see client/approvals.ts `findApproverKeyFile`). */
  key: ApproverKeyFile;
  reason?: string;
}

function killError(workflowId: string, error: unknown): WardenError {
  if (error instanceof WardenError && (error.code === 'ERR_TASK_NOT_FOUND' || error.code === 'ERR_WORKFLOW_ID_INVALID')) return error;
  if (error instanceof WorkflowNotFoundError) return new MonitorError('ERR_KILL_REFUSED', `no running task ${workflowId}`, { details: { workflowId } });
  const cause = error instanceof WorkflowUpdateFailedError ? error.cause : error;
  if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) return new MonitorError(cause.type, cause.message, { details: { workflowId } });
  const message = (cause as Error)?.message ?? String(cause);
  if (/update.*(handler|not found|unknown|no handler)|unknown update|not registered/i.test(message)) {
    return new MonitorError('ERR_KILL_REFUSED', `${workflowId} runs code from before tasks could be killed; cancel it instead (its compensations run too)`, { details: { workflowId } });
  }
  return new MonitorError('ERR_KILL_REFUSED', `cannot kill ${workflowId}: ${message}`, { details: { workflowId } });
}

/**
 * Signs and sends the kill; resolves when the task is blocked (its credentials revoked, `blockedAt`
 * says when). Throws MonitorError ERR_KILL_REFUSED when the task is not running, predates kill, or
 * the key is not a registered approver's.
 */
export async function killTask(client: Client, options: KillTaskOptions): Promise<KillOutcome & { requestedAt: string }> {
  let runId: string;
  let status: string;
  try {
    const described = await describeTask(client, options.workflowId);
    runId = described.runId;
    status = described.status.name;
  } catch (error) {
    throw killError(options.workflowId, error);
  }
  if (status !== 'RUNNING') throw new MonitorError('ERR_KILL_REFUSED', `${options.workflowId} is not running (it is ${status.toLowerCase()})`, { details: { workflowId: options.workflowId, status } });
  // Mended before it is signed (a lone surrogate becomes U+FFFD), so what is signed is what the task stores.
  const reason = options.reason === undefined ? undefined : wellFormed(options.reason);
  const signature = await signApprovalDecision(options.key, {
    workflowId: options.workflowId,
    runId,
    requestId: KILL_REQUEST_ID,
    action: KILL_ACTION,
    approved: true,
    ...(reason === undefined ? {} : { reason }),
  });
  const requestedAt = new Date().toISOString();
  try {
    const outcome = await client.workflow.getHandle(options.workflowId, runId).executeUpdate(killUpdate, {
      args: [{ requestedAt, signature, ...(reason === undefined ? {} : { reason }) }],
    });
    return { ...outcome, requestedAt };
  } catch (error) {
    throw killError(options.workflowId, error);
  }
}

/** The killed task's result, once its compensations ran. */
export async function killedTaskResult(client: Client, workflowId: string): Promise<TaskResult> {
  // A task that did not complete closes as failed, carrying its result (workflows/task-close.ts).
  return agentTaskResult(client.workflow.getHandle<typeof agentTask>(workflowId));
}
