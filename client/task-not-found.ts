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

/**
 * The longest workflow id this checks through: Temporal's default `limit.maxIDLength` (1,000
 * characters, dynamic config; the server refuses longer ids on start). A longer id names no task,
 * and gRPC calls carrying one were seen to be dropped without an answer (the command then ended
 * with exit 0 and no output).
 */
export const MAX_WORKFLOW_ID_LENGTH = 1_000;

/**
 * Why `workflowId`, as a user gave it, can name no workflow: empty, longer than
 * {@link MAX_WORKFLOW_ID_LENGTH}, or holding a control character (C0, DEL, C1: a line break
 * would also forge a line of this command's output); undefined when it can.
 */
export function workflowIdProblem(workflowId: string): string | undefined {
  if (workflowId.length === 0) return 'the workflow id is empty';
  if (workflowId.length > MAX_WORKFLOW_ID_LENGTH) return `the workflow id has ${workflowId.length} characters; Temporal takes at most ${MAX_WORKFLOW_ID_LENGTH}`;
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(workflowId);
  if (control !== null) return `the workflow id holds a control character (U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at character ${control.index + 1})`;
  return undefined;
}

/**
 * `workflowId` when it can name a workflow.
 * @throws WardenError ERR_WORKFLOW_ID_INVALID (a usage error: exit 2) naming what is wrong with it.
 */
export function checkWorkflowId(workflowId: string): string {
  const problem = workflowIdProblem(workflowId);
  if (problem !== undefined) throw new WardenError('ERR_WORKFLOW_ID_INVALID', problem, { details: { length: workflowId.length } });
  return workflowId;
}

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
