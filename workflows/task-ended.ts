/**
 * How a task ends early, and how a failure becomes a step's error. Deterministic: workflow code.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/workflow';
import type { StepError, TaskStatus } from '../task/task-run';

/** Thrown inside the agent loop to end the task with a status other than `completed`. */
export class TaskEnded extends Error {
  constructor(
    readonly status: TaskStatus,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Error code and message out of an activity or child failure, as recorded in a step. */
export function stepErrorOf(error: unknown): StepError {
  const cause = error instanceof ActivityFailure || error instanceof ChildWorkflowFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) {
    return { code: cause.type ?? 'ERR_UNKNOWN', message: cause.message };
  }
  if (cause instanceof Error) return { code: 'ERR_UNKNOWN', message: cause.message };
  return { code: 'ERR_UNKNOWN', message: String(cause) };
}
