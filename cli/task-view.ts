/**
 * What the CLI shows of one task: Temporal's description of the workflow plus Warden's own view,
 * the task state (query, while it runs) or the task result (once it closed). Shared by `status`,
 * `logs`, `cancel` and `list`, so they agree on what a task's status is.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { describeTask } from '../client/task-not-found';
import type { TaskResult, TaskState, TaskStatus } from '../task/task-run';
import { taskStateQuery } from '../workflows/definitions';
import { agentTaskResult } from '../client/start-agent-task';

/** How long a running task may take to answer the state query (its worker may be gone). */
export const STATE_QUERY_TIMEOUT_MS = 3_000;

export interface TaskView {
  workflowId: string;
  runId: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT... */
  execution: string;
  /** Warden's status: the result's, `running`, or undefined when neither can be read. */
  status: TaskStatus | undefined;
  taskQueue: string;
  startTime: string;
  closeTime?: string;
  /** Who started it for whom (set by `startAgentTask`). */
  agent?: string;
  user?: string;
  /** The task state while it runs (undefined when no worker answered). */
  state?: TaskState;
  /** The result once it completed. */
  result?: TaskResult;
  /** Why state or result is missing. */
  note?: string;
}

function memoString(description: WorkflowExecutionDescription, key: string): string | undefined {
  const value = description.memo?.[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Describes `workflowId` and reads Warden's view of it: the state query while it runs (bounded by
 * `queryTimeoutMs`), the result after it completed.
 * @throws TaskNotFoundError when Temporal does not know the workflow.
 */
export async function readTaskView(client: Client, workflowId: string, options: { queryTimeoutMs?: number } = {}): Promise<TaskView> {
  const handle = client.workflow.getHandle(workflowId);
  const description: WorkflowExecutionDescription = await describeTask(client, workflowId);
  const agent = memoString(description, 'agent');
  const user = memoString(description, 'user');
  const view: TaskView = {
    workflowId,
    runId: description.runId,
    execution: description.status.name,
    status: undefined,
    taskQueue: description.taskQueue,
    startTime: description.startTime.toISOString(),
    ...(description.closeTime === undefined ? {} : { closeTime: description.closeTime.toISOString() }),
    ...(agent === undefined ? {} : { agent }),
    ...(user === undefined ? {} : { user }),
  };
  if (description.status.name === 'RUNNING') {
    view.status = 'running';
    try {
      view.state = await client.withDeadline(Date.now() + (options.queryTimeoutMs ?? STATE_QUERY_TIMEOUT_MS), () => handle.query(taskStateQuery));
      view.agent ??= view.state.agent;
    } catch {
      view.note = `no worker answered within ${((options.queryTimeoutMs ?? STATE_QUERY_TIMEOUT_MS) / 1000).toFixed(0)}s: is a worker polling task queue ${description.taskQueue}? (warden worker)`;
    }
  } else if ((view.result = await closedTaskResult(handle, description.status.name)) !== undefined) {
    view.status = view.result.status;
    view.agent ??= view.result.agent;
  } else {
    view.note = `the workflow ended ${description.status.name.toLowerCase()} in Temporal without a Warden result`;
    if (description.status.name === 'CANCELLED') view.status = 'cancelled';
    else if (description.status.name === 'TIMED_OUT') view.status = 'timed_out';
    else view.status = 'failed';
  }
  return view;
}

/**
 * The Warden result of a closed task: a completed workflow's return value, or the result a task
 * that did not complete carries in its closing failure (`ERR_TASK_<STATUS>`). Undefined when the
 * workflow closed without one (terminated, failed on a bad input, an unreadable payload).
 */
export async function closedTaskResult(handle: { result(): Promise<unknown> }, status: string): Promise<TaskResult | undefined> {
  if (status !== 'COMPLETED' && status !== 'FAILED') return undefined;
  try {
    return await agentTaskResult(handle as Parameters<typeof agentTaskResult>[0]);
  } catch {
    return undefined;
  }
}
