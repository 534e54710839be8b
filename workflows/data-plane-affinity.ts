/**
 * Data-plane affinity on the original loop (issue 12, item 2; `warden-ordinary-affinity` patch).
 *
 * A task tree's overlay, sandbox host, MCP stdio servers and the calls' undo records live on the
 * worker that ran the root's `prepareTask`: that activity reports the worker's own task queue
 * (`<taskQueue>@<workerId>`, which only that worker polls; dataplane/shared-storage.ts), and every
 * later activity that touches them (tool calls, MCP sources, the commit, compensations, the
 * snapshot restore) is sent there, with a schedule-to-start timeout (the data flow's
 * `dataPlaneStartTimeoutSeconds`, default 30). A sub-agent gets the queue in its handoff, which
 * its parent's grant signs (subagent-handoff.ts), and uses it only once `beginSubagent` verified it.
 *
 * When that worker is gone (the timeout fires), the task fails closed: the loop ends it `failed`
 * with ERR_DATA_PLANE_LOST, and the saga runs its compensations on any worker of the shared queue
 * (SQL undone from the shared journal; the overlay was never committed, so the workspace is as it
 * was). Nothing is committed from a worker that is gone.
 *
 * Deterministic: workflow code.
 */
import { ActivityFailure, TimeoutFailure } from '@temporalio/workflow';
import { TaskEnded } from './task-ended';

/** Seconds a data-plane activity may wait for its worker before that worker counts as lost (as the data flow). */
export const DEFAULT_DATA_PLANE_START_TIMEOUT_SECONDS = 30;

/** Where a data-plane activity goes: the holding worker's queue, and how long it may wait there. */
export interface DataPlaneRoute {
  taskQueue: string;
  scheduleToStartTimeout: number;
}

/** What a parent hands its sub-agent (signed with the rest of the handoff). */
export interface DataPlaneHandoff {
  taskQueue: string;
  startTimeoutSeconds: number;
}

/** A schedule-to-start timeout: nobody polls the queue, so the worker holding the data plane is gone. */
export function isScheduleToStartTimeout(error: unknown): boolean {
  return error instanceof ActivityFailure && error.cause instanceof TimeoutFailure && error.cause.timeoutType === 'SCHEDULE_TO_START';
}

export class DataPlaneAffinity {
  private queue: string | undefined;
  /** Why the data plane counts as lost (set once a call found its worker gone). */
  lost: string | undefined;

  constructor(
    /** The run took the patch; without it every call goes to the shared queue, as before. */
    readonly enabled: boolean,
    private startTimeoutSeconds: number = DEFAULT_DATA_PLANE_START_TIMEOUT_SECONDS,
  ) {}

  /** Pins the data plane: the root's from `prepareTask`, a sub-agent's from its verified handoff. */
  pin(taskQueue: string | undefined, startTimeoutSeconds?: number): void {
    if (!this.enabled || taskQueue === undefined || taskQueue === '') return;
    this.queue = taskQueue;
    if (startTimeoutSeconds !== undefined) this.startTimeoutSeconds = startTimeoutSeconds;
  }

  /** The queue a sub-agent is handed (undefined: none pinned). */
  handoff(): DataPlaneHandoff | undefined {
    return this.queue === undefined ? undefined : { taskQueue: this.queue, startTimeoutSeconds: this.startTimeoutSeconds };
  }

  /** The route of the next data-plane call; undefined (the shared queue) when none is pinned or it was lost. */
  route(): DataPlaneRoute | undefined {
    if (this.queue === undefined || this.lost !== undefined) return undefined;
    return { taskQueue: this.queue, scheduleToStartTimeout: this.startTimeoutSeconds * 1000 };
  }

  private lose(): string {
    this.lost ??= `the worker holding the task's data plane (task queue ${this.queue}) did not take work for ${this.startTimeoutSeconds}s`;
    return this.lost;
  }

  /**
   * A call of the loop: when its worker is gone, the task ends `failed` with ERR_DATA_PLANE_LOST
   * (`onLost` runs first, e.g. to register the call's undo: it may have run part-way before the
   * worker died).
   */
  async loop<T>(operation: (route: DataPlaneRoute | undefined) => Promise<T>, onLost?: () => void): Promise<T> {
    const route = this.route();
    try {
      return await operation(route);
    } catch (error) {
      if (route === undefined || !isScheduleToStartTimeout(error)) throw error;
      const why = this.lose();
      onLost?.();
      throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: ${why}; the task was rolled back`);
    }
  }

  /**
   * A call of the saga (commit, compensation, snapshot restore, closing MCP sources): on the data
   * plane while it is there; once it is lost, a compensation runs on any worker of the shared
   * queue (what it undoes is in shared storage), and a commit fails (`commit: true`: nothing is
   * committed from a worker that is gone).
   */
  async saga<T>(operation: (route: DataPlaneRoute | undefined) => Promise<T>, commit = false): Promise<T> {
    const route = this.route();
    if (route === undefined && commit && this.lost !== undefined) throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: ${this.lost}`);
    try {
      return await operation(route);
    } catch (error) {
      if (route === undefined || !isScheduleToStartTimeout(error)) throw error;
      const why = this.lose();
      if (commit) throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: ${why}`);
      return operation(undefined);
    }
  }
}
