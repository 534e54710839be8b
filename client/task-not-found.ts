/**
 * One answer, for every client path, to "Temporal does not know this workflow id": the SDK says it
 * two ways, `WorkflowNotFoundError` from a handle's describe, query, signal or result, and a raw
 * gRPC `NOT_FOUND` service error (status 5) from `fetchHistory`. Both become
 * {@link TaskNotFoundError}, `ERR_TASK_NOT_FOUND`, naming the id, so `status`, `logs`, `cancel`,
 * `replay`, `receipt`, `approve`, `deny` and `policy test --against` print the same line.
 */
import { isGrpcServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { WardenError } from '../errors';

/** gRPC's NOT_FOUND status code (grpc/status.proto). */
const GRPC_NOT_FOUND = 5;

/** A workflow id Temporal does not know: a clear line instead of the SDK's error. */
export class TaskNotFoundError extends WardenError {
  constructor(workflowId: string, cause?: unknown) {
    super('ERR_TASK_NOT_FOUND', `no task with workflow id ${workflowId} on this Temporal server (warden list shows the tasks)`, { details: { workflowId }, ...(cause === undefined ? {} : { cause }) });
  }
}

/** Whether a failure is Temporal saying the workflow (or the run asked for) does not exist. */
export function isWorkflowNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError || (error as { name?: string } | undefined)?.name === 'WorkflowNotFoundError') return true;
  return isGrpcServiceError(error) && error.code === GRPC_NOT_FOUND;
}

/**
 * What `call` resolves to; its failure as {@link TaskNotFoundError} when Temporal does not know
 * `workflowId`, any other failure as it was.
 */
export async function withTaskOf<T>(workflowId: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isWorkflowNotFound(error)) throw new TaskNotFoundError(workflowId, error);
    throw error;
  }
}
