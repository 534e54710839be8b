/**
 * One answer, for every client path, to "Temporal does not know this workflow id": the SDK says it
 * two ways, `WorkflowNotFoundError` from a handle's describe, query, signal or result, and a raw
 * gRPC `NOT_FOUND` service error (status 5) from `fetchHistory`. Both become
 * {@link TaskNotFoundError}, `ERR_TASK_NOT_FOUND`, naming the id, so `status`, `logs`, `cancel`,
 * `replay`, `receipt`, `approve`, `deny` and `policy test --against` print the same line.
 */
import { isGrpcServiceError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { WardenError } from '../errors';
import { AGENT_TASK_WORKFLOW } from '../workflows/definitions';
import { checkWorkflowId } from './workflow-id';

/** gRPC's NOT_FOUND status code (grpc/status.proto). */
const GRPC_NOT_FOUND = 5;

/**
 * A workflow id Temporal does not know, or one of a workflow that is not a Warden task (another
 * type, `workflowType`): a clear line instead of the SDK's error, and no command acting on a
 * workflow Warden did not start.
 */
export class TaskNotFoundError extends WardenError {
  constructor(workflowId: string, cause?: unknown, workflowType?: string) {
    super(
      'ERR_TASK_NOT_FOUND',
      workflowType === undefined
        ? `no task with workflow id ${workflowId} on this Temporal server (warden list shows the tasks)`
        : `workflow ${workflowId} is a ${workflowType} workflow, not a Warden task (warden list shows the tasks)`,
      { details: { workflowId, ...(workflowType === undefined ? {} : { workflowType }) }, ...(cause === undefined ? {} : { cause }) },
    );
  }
}

/**
 * Temporal's description of the Warden task `workflowId` (its latest run).
 * @throws WardenError ERR_WORKFLOW_ID_INVALID for an id no workflow can have; TaskNotFoundError
 *   when Temporal does not know it, or it is not an `agentTask` workflow (workflows/definitions.ts).
 */
export async function describeTask(client: Client, workflowId: string): Promise<WorkflowExecutionDescription> {
  const description = await withTaskOf(workflowId, () => client.workflow.getHandle(workflowId).describe());
  if (description.type !== AGENT_TASK_WORKFLOW) throw new TaskNotFoundError(workflowId, undefined, description.type);
  return description;
}

/** Whether a failure is Temporal saying the workflow (or the run asked for) does not exist. */
export function isWorkflowNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError || (error as { name?: string } | undefined)?.name === 'WorkflowNotFoundError') return true;
  return isGrpcServiceError(error) && error.code === GRPC_NOT_FOUND;
}

/**
 * What `call` resolves to; its failure as {@link TaskNotFoundError} when Temporal does not know
 * `workflowId`, any other failure as it was.
 * @throws WardenError ERR_WORKFLOW_ID_INVALID before `call` when `workflowId` can name no workflow.
 */
export async function withTaskOf<T>(workflowId: string, call: () => Promise<T>): Promise<T> {
  checkWorkflowId(workflowId);
  try {
    return await call();
  } catch (error) {
    if (isWorkflowNotFound(error)) throw new TaskNotFoundError(workflowId, error);
    throw error;
  }
}
