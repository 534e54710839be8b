/**
 * Starting and following an agent task from any Temporal client. This is what `warden run`
 * uses, and what users' own programs can use instead of calling the client by hand.
 */
import { checkTaskQueueName } from '../dataplane/shared-storage';
import { checkNewWorkflowId } from './workflow-id';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { BlobStore } from '../dataplane/blob-store';
import { assembleTaskResult, type AssembleOptions } from './assemble-task-result';
import { durationToMs } from '../task/duration';
import type { PendingApproval, StepRecord, TaskResult, TaskState } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { agentTask } from '../workflows/agent-task';
import { subagentWorkflowId, TASK_QUEUE, taskStateQuery } from '../workflows/definitions';
import { taskSearchAttributes } from '../workflows/search-attributes';
import { taskResultOfFailure } from '../workflows/task-close';
import { taskDetails, taskSummary } from '../workflows/ui-summaries';
import { registeredSearchAttributes } from './registered-search-attributes';
import { setLongTimeout } from '../long-timer';

/** How deep `followAgentTask` looks into running sub-agents. */
const MAX_FOLLOW_DEPTH = 10;

export interface StartAgentTaskOptions {
  /**
   * The new task's workflow id (default {@link newTaskWorkflowId}). It may not hold `/` or `#`,
   * the separators of ids Warden derives from a task's (a sub-agent is `<parent>/<sub-agent>-<step>`):
   * client/workflow-id.ts `newWorkflowIdProblem`.
   */
  workflowId?: string;
  taskQueue?: string;
  /**
   * Set Warden's search attributes (`WardenUser`, `WardenAgent`, `WardenModel`, `WardenPacks`,
   * `WardenStatus`) on the task: `auto` (default) sets those the namespace has registered,
   * `false` none.
   */
  searchAttributes?: 'auto' | false;
}

/** A fresh workflow id that says whose task it is: `warden-<agent>-<uuid>`. */
export function newTaskWorkflowId(task: Task): string {
  return `warden-${task.agent.name}-${randomUUID()}`;
}

/**
 * Starts `task` as an `agentTask` workflow, named for the Temporal UI (static summary and
 * details) and searchable by user, agent, model, packs and status (see `options.searchAttributes`).
 * @throws WardenError ERR_WORKFLOW_ID_INVALID, before any call, for an `options.workflowId` a new
 *   task may not have (client/workflow-id.ts); ConfigError for a bad `options.taskQueue`.
 */
export async function startAgentTask(client: Client, task: Task, options: StartAgentTaskOptions = {}): Promise<WorkflowHandleWithFirstExecutionRunId<typeof agentTask>> {
  // '@' would name a worker's private data-plane queue (dataplane/worker-naming.ts).
  if (options.taskQueue !== undefined) checkTaskQueueName(options.taskQueue, 'startAgentTask: taskQueue');
  // '/' would make it read as another task's sub-agent (rollback, snapshots, custody): refused before anything starts.
  if (options.workflowId !== undefined) checkNewWorkflowId(options.workflowId);
  const registered = options.searchAttributes === false ? new Set<string>() : await registeredSearchAttributes(client);
  return client.workflow.start<typeof agentTask>('agentTask', {
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    workflowId: options.workflowId ?? newTaskWorkflowId(task),
    args: [{ task }],
    // Shown by `warden list` without reading each history.
    memo: { agent: task.agent.name, user: task.user },
    // Backstop only: the workflow ends itself at the task deadline and reports why.
    workflowExecutionTimeout: durationToMs(task.limits.deadline) + 5 * 60_000,
    staticSummary: taskSummary(task),
    staticDetails: taskDetails(task),
    typedSearchAttributes: taskSearchAttributes(task, registered),
  });
}

/**
 * The task's result, however its workflow closed: a completed task's return value, or the result
 * a task that did not complete carries in its closing failure (`workflows/task-close.ts`), so
 * callers see the same shape (`warden run --json`) for every status.
 * @throws WorkflowFailedError when the workflow failed for another reason (e.g. a bad input).
 */
export async function agentTaskResult(handle: Pick<WorkflowHandle<typeof agentTask>, 'result'>): Promise<TaskResult> {
  try {
    return await handle.result();
  } catch (error) {
    const result = error instanceof WorkflowFailedError ? taskResultOfFailure(error) : undefined;
    if (result === undefined) throw error;
    return result;
  }
}

/** Something new seen while following a task: a finished step, or an action now held for approval. */
export type ProgressEvent =
  /** `workflowId`: the (sub-)task the step belongs to; `path` names its agents, which repeat when a sub-agent is spawned twice. */
  | { kind: 'step'; step: StepRecord; path: string[]; workflowId: string }
  | { kind: 'approval'; pending: PendingApproval; workflowId: string; path: string[] };

function collectEvents(state: TaskState | TaskResult, path: string[], out: ProgressEvent[]): void {
  for (const step of state.steps) if (step.executed || step.decision === 'deny') out.push({ kind: 'step', step, path, workflowId: state.workflowId });
  for (const pending of 'pendingApprovals' in state ? (state.pendingApprovals ?? []) : []) out.push({ kind: 'approval', pending, workflowId: state.workflowId, path });
  for (const child of state.children) collectEvents(child, [...path, child.agent], out);
}

function eventKey(event: ProgressEvent): string {
  return event.kind === 'step' ? `${event.workflowId}#${event.step.index}` : `${event.workflowId}?${event.pending.requestId}`;
}

/**
 * Waits for the task's result, calling `onProgress` once for each step that finished and each
 * action that became held for approval since the last poll, its running sub-agents' included
 * (by querying the running workflows). Queries are best-effort; the result is authoritative.
 * Aborting `options.signal` aborts every call in flight and rejects with the abort.
 */
export interface FollowOptions extends AssembleOptions {
  pollMs?: number;
  signal?: AbortSignal;
  /**
   * The deployment's blob store (`openBlobStore(sharedDirOf(env, stateDir))`): with it the result
   * is assembled (a long task's earlier runs' steps put back, claim checks resolved; see
   * assemble-task-result.ts). A task that continued as new is followed to its last run either way.
   */
  blobs?: BlobStore;
}

export async function followAgentTask(
  handle: WorkflowHandle<typeof agentTask>,
  onProgress?: (event: ProgressEvent) => void,
  options: FollowOptions = {},
): Promise<TaskResult> {
  const pollMs = options.pollMs ?? 250;
  // With a signal, every call of this follower is aborted with it: a caller that stops
  // following can then close its connection with nothing of ours still in flight on it.
  const signal = options.signal;
  // The SDK adds an 'abort' listener to the signal for each RPC and never removes it: every poll
  // on the caller's signal would add one (MaxListenersExceededWarning while a task waits for an
  // approval). Each call gets a signal of its own, linked to the caller's for as long as it runs;
  // the result's long polls (one every server long-poll timeout) stay on the one signal of that call.
  const bounded = <T>(call: () => Promise<T>, also?: AbortSignal): Promise<T> => {
    const signals = [signal, also].filter((s): s is AbortSignal => s !== undefined);
    if (signals.length === 0) return call();
    const aborted = signals.find((s) => s.aborted);
    if (aborted !== undefined) return Promise.reject(aborted.reason);
    const own = new AbortController();
    setMaxListeners(0, own.signal);
    const forward = (from: AbortSignal) => () => own.abort(from.reason);
    const forwards = signals.map((s) => [s, forward(s)] as const);
    for (const [s, listener] of forwards) s.addEventListener('abort', listener, { once: true });
    return handle.client.withAbortSignal(own.signal, call).finally(() => {
      for (const [s, listener] of forwards) s.removeEventListener('abort', listener);
    });
  };
  const seen = new Set<string>();
  const report = (state: TaskState | TaskResult) => {
    const events: ProgressEvent[] = [];
    collectEvents(state, [], events);
    for (const event of events) {
      const key = eventKey(event);
      if (!seen.has(key)) {
        seen.add(key);
        onProgress?.(event);
      }
    }
  };
  const blobs = options.blobs;
  // A task that did not complete closes as failed, carrying its result (agentTaskResult).
  const resultPromise = bounded(() => agentTaskResult(handle)).then((result) => (blobs === undefined ? result : assembleTaskResult(result, blobs, options)));
  if (onProgress === undefined) return resultPromise;
  const workflows = handle.client;
  // Once the result is in, the progress polls end at once: a query still in flight is aborted (the
  // result is authoritative) and the wait before the next poll is cleared, so neither holds the
  // caller, or the process's exit, for up to a query's round trip or a poll interval (issue 17:
  // the pending 250 ms timer alone kept `warden run` alive for up to a quarter second after the task).
  const pollsEnded = new AbortController();
  /** The state of a task and, for its sub-agents still running, theirs (they report to the parent only when done). */
  const stateWithRunning = async (workflowId: string, depth: number): Promise<TaskState> => {
    const state = await bounded(() => workflows.getHandle(workflowId).query(taskStateQuery), pollsEnded.signal);
    if (depth >= MAX_FOLLOW_DEPTH) return state;
    const running = state.steps.filter((s: StepRecord) => s.kind === 'spawn' && !s.executed && s.error === undefined && s.decision === 'allow');
    const children: TaskResult[] = [...state.children];
    for (const step of running) {
      const subagent = step.tool.slice('spawn:'.length);
      try {
        const child = await stateWithRunning(subagentWorkflowId(workflowId, subagent, step.index), depth + 1);
        // A running child has no run id to show yet; the events read only its steps and approvals.
        children.push({ ...child, runId: '', agent: subagent });
      } catch {
        // Not started yet, or just finished: seen on a later poll.
      }
    }
    return { ...state, children };
  };
  let done = false;
  let wake: (() => void) | undefined;
  const poller = (async () => {
    while (!done && signal?.aborted !== true) {
      try {
        report(await stateWithRunning(handle.workflowId, 0));
      } catch {
        // The workflow may not have started yet, or has just closed.
      }
      // Checked again here: a poll aborted because the result came in must not start another wait.
      if (done) break;
      await new Promise<void>((resolve) => {
        const timer = setLongTimeout(resolve, pollMs);
        wake = () => {
          timer.clear();
          resolve();
        };
      });
    }
  })();
  try {
    const result = await resultPromise;
    report(result);
    return result;
  } finally {
    done = true;
    pollsEnded.abort();
    wake?.();
    await poller;
  }
}
