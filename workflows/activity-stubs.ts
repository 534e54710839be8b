/**
 * The activities the agent workflow calls, with the timeouts and retries each needs. One place, so
 * the retry semantics of every side effect can be read together.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';

/** Asking the model, issuing a task's grant, delegating to a sub-agent. */
export const { proposeTurn, beginTask, delegateGrant } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '2 minutes',
  // The worker heartbeats for every activity (worker/heartbeat-interceptor.ts): a dead worker's
  // model call is retried after this, not after the whole start-to-close timeout.
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
});

/** Checking an approver's signed decision (run from the approval Update's handler). */
export const { verifyApproval } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1s' },
});

/** Revoking the task's grant when it ends. */
export const { endTask } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  // Revocation must happen: keep retrying well past transient failures.
  retry: { maximumAttempts: 20, initialInterval: '1s', maximumInterval: '10s' },
});

/** Policy decisions run as local activities: fast, and recorded in history like any result. */
export const { checkPolicy } = proxyLocalActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

/** Approval notices (the worker's webhook): retried for a few minutes, then given up on. */
export const { notifyApproval } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 6, initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Preparing the workspace overlay, committing it, and the saga's compensations. */
export const { prepareTask, commitTask, compensate, restorePreTaskSnapshot } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  // Recovery is idempotent and must finish: retry through transient failures.
  retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '30s' },
});

/** Opening a task's MCP servers (start, initialise, list and pin) and closing them. */
export const { openToolSources, closeToolSources } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
});

/** Room past a tool's own timeout for the credential, overlay and sandbox host start-up. */
const TOOL_ACTIVITY_MARGIN_MS = 10_000;

export interface ToolActivities {
  runTool: WardenActivities['runTool'];
  /** The activity's start-to-close timeout, also the ceiling of the call's credential lifetime. */
  activityTimeoutMs: number;
}

/** Activity stub for tool calls; its timeout follows the task's per-call limit. */
export function toolActivities(task: Task): ToolActivities {
  // The sandbox enforces the real limit; this is the backstop if a worker dies mid-call, and how
  // soon another worker retries the call (idempotently, by call id).
  const activityTimeoutMs = durationToMs(task.limits.toolTimeout) + TOOL_ACTIVITY_MARGIN_MS;
  const { runTool } = proxyActivities<WardenActivities>({
    startToCloseTimeout: activityTimeoutMs,
    heartbeatTimeout: '20 seconds',
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
  });
  return { runTool, activityTimeoutMs };
}
