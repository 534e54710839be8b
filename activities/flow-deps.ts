/**
 * What the activities of the data flow take from the worker: its data-plane services, the folder
 * recovery records live in (shared by every worker), and a task given by reference or inline.
 */
import type { DataPlaneServices } from '../dataplane/data-plane-services';
import { DataPlaneError } from '../errors';
import type { Task } from '../task/task-schema';
import type { ActivityDeps } from './index';

/** A task as an activity input: by reference (the data flow) or inline (older workflows). */
export type TaskInput = { taskRef: string; task?: undefined } | { task: Task; taskRef?: undefined };

export function dataPlaneOf(deps: ActivityDeps): DataPlaneServices {
  if (deps.dataPlane === undefined) throw new TypeError('this worker was created without data-plane services');
  return deps.dataPlane;
}

export function stateDirOfDeps(deps: ActivityDeps): string {
  if (deps.stateDir === undefined) throw new TypeError('this worker was created without a state folder');
  return deps.stateDir;
}

/**
 * Where journals, snapshots and the compensation ledger live: the shared folder, so that the
 * worker a task moves to can undo what the previous one did. The state folder without one.
 */
export function recoveryDirOf(deps: ActivityDeps): string {
  return deps.dataPlane?.sharedDir ?? stateDirOfDeps(deps);
}

/** The task of an activity input. */
export async function taskOf(deps: ActivityDeps, input: { task?: Task | undefined; taskRef?: string | undefined }): Promise<Task> {
  if (input.task !== undefined) return input.task;
  if (input.taskRef === undefined) throw new TypeError('an activity input names neither a task nor a task reference');
  return dataPlaneOf(deps).tasks.get(input.taskRef);
}

/**
 * A local activity meant for the data plane ran on the worker of the workflow task, which may be
 * another: it must then do nothing, and say so, so the workflow sends it to the data plane's queue.
 */
export function assertOnWorker(deps: ActivityDeps, workerId: string | undefined): void {
  if (workerId === undefined) return;
  const here = deps.dataPlane?.workerId;
  if (here !== workerId) throw new DataPlaneError('ERR_DATA_PLANE_ELSEWHERE', `this is worker ${here ?? '?'}, not ${workerId} which holds the task's data plane`);
}
