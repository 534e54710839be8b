/**
 * The activities the agent workflow calls, with the timeouts and retries each needs. One place, so
 * the retry semantics of every side effect can be read together.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities, type ActivityOptions, type LocalActivityOptions } from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import { SANDBOX_ANSWER_BOUND_PAST_TIMEOUT_MS } from '../sandbox/liveness-bounds';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';
import type { DataPlaneRoute } from './data-plane-affinity';

/** Asking the model, issuing a task's grant, delegating to a sub-agent, accepting a sub-agent's handoff. */
const MODEL_AND_GRANT: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  // The worker heartbeats for every activity (worker/heartbeat-interceptor.ts): a dead worker's
  // model call is retried after this, not after the whole start-to-close timeout.
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
};

/** Checking an approver's signed decision (run from the approval Update's handler). */
export const { verifyApproval } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1s' },
});

/** Revoking the task's grant when it ends. */
const REVOCATION: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  // Revocation must happen: keep retrying well past transient failures.
  retry: { maximumAttempts: 20, initialInterval: '1s', maximumInterval: '10s' },
};

/** Policy decisions run as local activities: fast, and recorded in history like any result. */
const POLICY: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
};

/** Approval notices (the worker's webhook): retried for a few minutes, then given up on. */
export const { notifyApproval } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 6, initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Preparing the workspace overlay, committing it, and the saga's compensations. */
const RECOVERY: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  // Recovery is idempotent and must finish: retry through transient failures.
  retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '30s' },
};

/** Opening a task's MCP servers (start, initialise, list and pin) and closing them. */
const TOOL_SOURCES: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
};
export const { openToolSources, closeToolSources } = proxyActivities<WardenActivities>(TOOL_SOURCES);

export const { proposeTurn, beginTask, delegateGrant, beginSubagent } = proxyActivities<WardenActivities>(MODEL_AND_GRANT);
export const { endTask } = proxyActivities<WardenActivities>(REVOCATION);
export const { checkPolicy } = proxyLocalActivities<WardenActivities>(POLICY);
export const { prepareTask, commitTask, compensate, restorePreTaskSnapshot } = proxyActivities<WardenActivities>(RECOVERY);

/**
 * The same activities, with a one-line summary the Temporal UI shows on this call instead of the
 * bare activity type (`chat gpt-4o, turn 2`, `policy: fs.write out/report.md`; see
 * `ui-summaries.ts`). A summary is user metadata: it does not change the command sequence.
 */
export const summarized = {
  proposeTurn: (summary: string) => proxyActivities<WardenActivities>({ ...MODEL_AND_GRANT, summary }).proposeTurn,
  beginTask: (summary: string) => proxyActivities<WardenActivities>({ ...MODEL_AND_GRANT, summary }).beginTask,
  delegateGrant: (summary: string) => proxyActivities<WardenActivities>({ ...MODEL_AND_GRANT, summary }).delegateGrant,
  beginSubagent: (summary: string) => proxyActivities<WardenActivities>({ ...MODEL_AND_GRANT, summary }).beginSubagent,
  endTask: (summary: string) => proxyActivities<WardenActivities>({ ...REVOCATION, summary }).endTask,
  checkPolicy: (summary: string) => proxyLocalActivities<WardenActivities>({ ...POLICY, summary }).checkPolicy,
  prepareTask: (summary: string) => proxyActivities<WardenActivities>({ ...RECOVERY, summary }).prepareTask,
  commitTask: (summary: string, on?: DataPlaneRoute) => proxyActivities<WardenActivities>({ ...RECOVERY, ...on, summary }).commitTask,
  compensate: (summary: string, on?: DataPlaneRoute) => proxyActivities<WardenActivities>({ ...RECOVERY, ...on, summary }).compensate,
  restorePreTaskSnapshot: (summary: string, on?: DataPlaneRoute) => proxyActivities<WardenActivities>({ ...RECOVERY, ...on, summary }).restorePreTaskSnapshot,
  openToolSources: (summary: string, on?: DataPlaneRoute) => proxyActivities<WardenActivities>({ ...TOOL_SOURCES, ...on, summary }).openToolSources,
  closeToolSources: (summary: string, on?: DataPlaneRoute) => proxyActivities<WardenActivities>({ ...TOOL_SOURCES, ...on, summary }).closeToolSources,
};


/** Room past a tool's own timeout for the credential, overlay and sandbox host start-up. */
const TOOL_SETUP_MARGIN_MS = 10_000;

/**
 * Room past a tool's own timeout for the activity: the setup, and the latest the sandbox answers a
 * call past its timeout (a host found wedged, or answering pings but not the call,
 * sandbox/liveness-bounds.ts). Shorter, the server timed out and retried a call whose host was
 * being checked, the retry sent to that host and the tool run again (atk19a:
 * test/attacks/wedged-host-outlasts-tool-activity.test.ts).
 */
const TOOL_ACTIVITY_MARGIN_MS = TOOL_SETUP_MARGIN_MS + SANDBOX_ANSWER_BOUND_PAST_TIMEOUT_MS;

export interface ToolActivities {
  runTool: WardenActivities['runTool'];
  /** `runTool` with a summary for the UI on this call (`fs.write out/report.md`), on the data plane's queue when `on` names it. */
  runToolSummarized(summary: string, on?: DataPlaneRoute): WardenActivities['runTool'];
  /** The activity's start-to-close timeout. */
  activityTimeoutMs: number;
  /**
   * The ceiling of the call's credential lifetime: the tool's timeout and its setup, not the
   * activity's room for the sandbox's liveness check (the credential is only presented at the
   * call's start, and is the deadline of an MCP call and the `{{credential}}` an outbound host gets).
   */
  credentialTtlCeilingMs: number;
}

/**
 * Activity stub for tool calls; its timeout follows the task's per-call limit. `waitCancelled`
 * (patch `warden-stop-calls-in-flight`): a cancelled call settles only once its activity has
 * ended as cancelled (its program killed), not as soon as the cancellation is requested.
 */
export function toolActivities(task: Task, waitCancelled = false): ToolActivities {
  // The sandbox enforces the real limit; this is the backstop if a worker dies mid-call, and how
  // soon another worker retries the call (idempotently, by call id).
  const activityTimeoutMs = durationToMs(task.limits.toolTimeout) + TOOL_ACTIVITY_MARGIN_MS;
  const options: ActivityOptions = {
    startToCloseTimeout: activityTimeoutMs,
    heartbeatTimeout: '20 seconds',
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
    ...(waitCancelled ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
  };
  const { runTool } = proxyActivities<WardenActivities>(options);
  const credentialTtlCeilingMs = durationToMs(task.limits.toolTimeout) + TOOL_SETUP_MARGIN_MS;
  return { runTool, runToolSummarized: (summary, on) => proxyActivities<WardenActivities>({ ...options, ...on, summary }).runTool, activityTimeoutMs, credentialTtlCeilingMs };
}
