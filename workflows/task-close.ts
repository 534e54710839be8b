/**
 * How an agent task closes in Temporal, so the UI and `temporal workflow list` tell a task that
 * did what it was asked from one that did not:
 * - `completed`: the workflow completes with the task's result;
 * - any other status (`denied`, `failed`, `cancelled`, `timed_out`, `limit_exceeded`, `refuted`, `blocked`): the
 *   workflow fails with a non-retryable `ApplicationFailure` of type `ERR_TASK_<STATUS>` whose
 *   message is the reason and whose first detail is the task's result, unchanged. Guardrail
 *   outcomes (all but `failed`) are `BENIGN`: expected, not an error of Warden's.
 * and `WardenStatus` is set to the status when the task started with it (the namespace has it).
 *
 * The result is never lost: `taskResultOfFailure` recovers it from the failure, for the parent of
 * a sub-agent (`ChildWorkflowFailure`) and for clients (`WorkflowFailedError`) alike. Histories
 * recorded before this (the task completed whatever its status) replay unchanged: both the status
 * update and the failing close sit behind patches decided in the first activation
 * (`workflow-patches.ts`).
 *
 * Deterministic; also imported by client code (no workflow-only APIs in `taskResultOfFailure`).
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { TaskResult, TaskStatus } from '../task/task-run';

/** `ApplicationFailure.type` of a task that ended with each status other than `completed`. */
export const TASK_FAILURE_TYPES = {
  failed: 'ERR_TASK_FAILED',
  denied: 'ERR_TASK_DENIED',
  cancelled: 'ERR_TASK_CANCELLED',
  timed_out: 'ERR_TASK_TIMED_OUT',
  limit_exceeded: 'ERR_TASK_LIMIT_EXCEEDED',
  /** Completed and committed, but Warden found a claim of its agents false (attestation/). */
  refuted: 'ERR_TASK_REFUTED',
  blocked: 'ERR_TASK_BLOCKED',
} as const satisfies Record<Exclude<TaskStatus, 'running' | 'completed'>, string>;

const FAILURE_TYPE_SET: ReadonlySet<string> = new Set(Object.values(TASK_FAILURE_TYPES));

/**
 * The message of a task's closing failure (`<status>: <reason>`). Logs see the failure only as
 * a copy (the workflow runs in a worker thread), its type lost: they recognise it by this.
 */
export const TASK_END_MESSAGE = new RegExp(`^(${Object.keys(TASK_FAILURE_TYPES).join('|')}): `);

/** Patch ids of the two changes to how a task closes (decided in `workflow-patches.ts`). */
export const CLOSE_PATCHES = {
  statusSearchAttribute: 'warden-status-search-attribute',
  closeAsFailed: 'warden-close-not-completed-as-failed',
} as const;

/** The failure a task that did not complete closes with (its result as the first detail). */
export function taskEndFailure(result: TaskResult): ApplicationFailure {
  const status = result.status as keyof typeof TASK_FAILURE_TYPES;
  return ApplicationFailure.create({
    type: TASK_FAILURE_TYPES[status],
    message: `${result.status}: ${result.reason ?? `the task ended ${result.status}`}`,
    details: [result],
    nonRetryable: true,
    ...(result.status === 'failed' ? {} : { category: ApplicationFailureCategory.BENIGN }),
  });
}

function looksLikeTaskResult(value: unknown): value is TaskResult {
  const r = value as Partial<TaskResult> | null | undefined;
  return typeof r === 'object' && r !== null && typeof r.workflowId === 'string' && typeof r.status === 'string' && Array.isArray(r.steps) && Array.isArray(r.children);
}

/**
 * The task result a failure carries, when it is (or wraps, as `WorkflowFailedError` and
 * `ChildWorkflowFailure` do) a task's closing failure; undefined for any other failure.
 */
export function taskResultOfFailure(error: unknown): TaskResult | undefined {
  let at: unknown = error;
  for (let depth = 0; depth < 4 && at !== undefined && at !== null; depth += 1) {
    if (at instanceof ApplicationFailure && at.type !== undefined && at.type !== null && FAILURE_TYPE_SET.has(at.type)) {
      const [result] = at.details ?? [];
      return looksLikeTaskResult(result) ? result : undefined;
    }
    at = (at as { cause?: unknown }).cause;
  }
  return undefined;
}
