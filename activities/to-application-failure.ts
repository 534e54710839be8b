/**
 * The activity boundary: a Warden error becomes an ApplicationFailure whose `type` is the stable
 * error code, non-retryable unless retrying could help. Anything else is rethrown untouched so
 * Temporal retries it as an infrastructure failure.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WardenError } from '../errors';

export function toApplicationFailure(error: unknown): unknown {
  if (error instanceof WardenError) {
    return ApplicationFailure.create({
      type: error.code,
      message: error.message,
      nonRetryable: !error.retryable,
      details: Object.keys(error.details).length > 0 ? [error.details] : undefined,
    });
  }
  return error;
}

/** Runs `fn`, converting Warden errors at the boundary. */
export async function atActivityBoundary<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toApplicationFailure(error);
  }
}
