/**
 * Starting and following an agent task from any Temporal client. This is what `warden run`
 * uses, and what users' own programs can use instead of calling the client by hand.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { durationToMs } from '../task/duration';
import type { BlobStore } from '../dataplane/blob-store';
import type { StepRecord, TaskResult, TaskState } from '../task/task-run';
import { assembleTaskResult, type AssembleOptions } from './assemble-task-result';
import type { Task } from '../task/task-schema';
import type { agentTask } from '../workflows/agent-task';
import { TASK_QUEUE, taskStateQuery } from '../workflows/definitions';

export interface StartAgentTaskOptions {
  workflowId?: string;
  taskQueue?: string;
}

/** A fresh workflow id that says whose task it is: `warden-<agent>-<uuid>`. */
export function newTaskWorkflowId(task: Task): string {
  return `warden-${task.agent.name}-${randomUUID()}`;
}

export async function startAgentTask(client: Client, task: Task, options: StartAgentTaskOptions = {}): Promise<WorkflowHandleWithFirstExecutionRunId<typeof agentTask>> {
  return client.workflow.start<typeof agentTask>('agentTask', {
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    workflowId: options.workflowId ?? newTaskWorkflowId(task),
    args: [{ task, depth: 0, lineage: [] }],
    // Backstop only: the workflow ends itself at the task deadline and reports why.
    workflowExecutionTimeout: durationToMs(task.limits.deadline) + 5 * 60_000,
  });
}

/** One new step or child event seen while following a task. */
export type ProgressEvent = { kind: 'step'; step: StepRecord; path: string[] };

function collectSteps(state: TaskState | TaskResult, path: string[], out: { step: StepRecord; path: string[] }[]): void {
  for (const step of state.steps) out.push({ step, path });
  for (const child of state.children) collectSteps(child, [...path, child.agent], out);
}

export interface FollowOptions extends AssembleOptions {
  /**
   * The deployment's blob store (`openBlobStore(sharedDirOf(env, stateDir))`): with it the result
   * is assembled (earlier runs' steps put back, claim checks resolved, see assemble-task-result.ts).
   */
  blobs?: BlobStore;
}

/**
 * Waits for the task's result, calling `onProgress` for each step that finished since the last
 * poll (by querying the running workflow). Queries are best-effort; the result is authoritative.
 * A task that continued as new is followed to its last run.
 */
export async function followAgentTask(
  handle: WorkflowHandle<typeof agentTask>,
  onProgress?: (event: ProgressEvent) => void,
  pollMs = 250,
  options: FollowOptions = {},
): Promise<TaskResult> {
  const seen = new Set<string>();
  const report = (state: TaskState | TaskResult) => {
    const all: { step: StepRecord; path: string[] }[] = [];
    collectSteps(state, [], all);
    for (const { step, path } of all) {
      const key = `${path.join('/')}#${step.index}`;
      if (!seen.has(key) && (step.executed || step.decision === 'deny')) {
        seen.add(key);
        onProgress?.({ kind: 'step', step, path });
      }
    }
  };
  const blobs = options.blobs;
  const resultPromise = handle.result().then((result) => (blobs === undefined ? result : assembleTaskResult(result, blobs, options)));
  if (onProgress === undefined) return resultPromise;
  let done = false;
  const poller = (async () => {
    while (!done) {
      try {
        report(await handle.query(taskStateQuery));
      } catch {
        // The workflow may not have started yet, or has just closed.
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  try {
    const result = await resultPromise;
    report(result);
    return result;
  } finally {
    done = true;
    await poller;
  }
}
