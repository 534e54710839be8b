/**
 * `warden kill` for every front end (the CLI, a console, a program): block a running task now and
 * remediate it. The kill is the task's `warden.kill` Update: the workflow checks the operator in
 * an activity (`authorizeKill`), revokes the task's grant (its sub-agents' credentials stop with
 * it), stops issuing actions, tells running sub-agents, and runs the task's compensations.
 *
 * The operator is named, not yet proven: `authorizeKill` is the one place that will verify an
 * approver key's signature over the request once approver keys exist (issue 9); `signature` is
 * already part of the request for it.
 */
import { userInfo } from 'node:os';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { isErrorCode, MonitorError, WardenError } from '../errors';
import type { TaskResult } from '../task/task-run';
import { killUpdate, type KillOutcome } from '../workflows/definitions';

export interface KillTaskOptions {
  workflowId: string;
  /** `<kind>:<name>` (default: operatorOf(process.env)). */
  operator?: string;
  reason?: string;
}

/** Who kills: `WARDEN_APPROVER` (`alice` is read as `user:alice`), else `user:<login name>`. */
export function operatorOf(env: NodeJS.ProcessEnv): string {
  const named = env.WARDEN_APPROVER?.trim();
  if (named) return named.includes(':') ? named : `user:${named}`;
  return `user:${userInfo().username}`;
}

function killError(workflowId: string, error: unknown): WardenError {
  if (error instanceof WorkflowNotFoundError) return new MonitorError('ERR_KILL_REFUSED', `no running task ${workflowId}`, { details: { workflowId } });
  const cause = error instanceof WorkflowUpdateFailedError ? error.cause : error;
  if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) return new MonitorError(cause.type, cause.message, { details: { workflowId } });
  const message = (cause as Error)?.message ?? String(cause);
  if (/update.*(handler|not found|unknown|no handler)|unknown update|not registered/i.test(message)) {
    return new MonitorError('ERR_KILL_REFUSED', `${workflowId} runs code from before tasks could be killed; cancel it instead (its compensations run too)`, { details: { workflowId } });
  }
  if (/completed|not running|already/i.test(message)) return new MonitorError('ERR_KILL_REFUSED', `${workflowId} is not running (${message})`, { details: { workflowId } });
  return new MonitorError('ERR_KILL_REFUSED', `cannot kill ${workflowId}: ${message}`, { details: { workflowId } });
}

/**
 * Sends the kill and resolves when the task is blocked (its credentials revoked): `blockedAt`
 * says when. Throws MonitorError ERR_KILL_REFUSED when the task is not running, predates kill,
 * or the operator is refused.
 */
export async function killTask(client: Client, options: KillTaskOptions): Promise<KillOutcome & { requestedAt: string }> {
  const requestedAt = new Date().toISOString();
  const handle = client.workflow.getHandle(options.workflowId);
  try {
    const outcome = await handle.executeUpdate(killUpdate, {
      args: [{ operator: options.operator ?? operatorOf(process.env), requestedAt, ...(options.reason === undefined ? {} : { reason: options.reason }) }],
    });
    return { ...outcome, requestedAt };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      // Closed, or never started: say which.
      const status = await handle.describe().then((d) => d.status.name.toLowerCase(), () => undefined);
      if (status !== undefined) throw new MonitorError('ERR_KILL_REFUSED', `${options.workflowId} is not running (it is ${status})`, { details: { workflowId: options.workflowId, status } });
    }
    throw killError(options.workflowId, error);
  }
}

/** The killed task's result, once its compensations ran. */
export async function killedTaskResult(client: Client, workflowId: string): Promise<TaskResult> {
  return (await client.workflow.getHandle(workflowId).result()) as TaskResult;
}
