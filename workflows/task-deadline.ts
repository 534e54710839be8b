/**
 * The task's deadline: a sub-agent inherits its parent's when that is sooner. Operations that can
 * outlast it are raced against a timer and cancelled when the deadline wins, or (the data flow,
 * `timers: false`) bounded by the deadline through timeouts Temporal enforces itself (each
 * activity's schedule-to-close timeout, set from `remainingMs()`), which costs no timer events.
 * A data-flow tool call is the exception (patch `warden-flow-call-deadline`): its worker stops the
 * tool at `deadlineAt` and fails the call, its schedule-to-close a margin past the deadline, so the
 * task ends only once the tool has stopped (task-flow.ts, activities/run-tool.ts `callStop`).
 */
import { CancellationScope, sleep } from '@temporalio/workflow';
import { TaskEnded } from './task-ended';

export class TaskDeadline {
  /**
   * @param deadlineAt epoch ms (workflow clock) by which the task must end
   * @param limit the task file's deadline as written (e.g. "10m"), for messages
   */
  constructor(
    readonly deadlineAt: number,
    private readonly limit: string,
    /** False: no timer per operation; the operation must bound itself by `remainingMs()`. */
    private readonly timers = true,
  ) {}

  /** Milliseconds left (negative once past). */
  remainingMs(): number {
    return this.deadlineAt - Date.now();
  }

  /** The error that ends a task whose deadline passed. */
  exceeded(): TaskEnded {
    return new TaskEnded('timed_out', `deadline of ${this.limit} exceeded`);
  }

  /**
   * Runs an operation under the deadline: when the deadline wins, the operation is cancelled.
   * `settle` (a tool call, patch `warden-stop-calls-in-flight`): when the operation is cancelled,
   * by the deadline or by the task's own cancellation, this settles only once the operation has
   * (its activity ended as cancelled), so nothing after it runs beside the cancelled call.
   */
  async within<T>(operation: () => Promise<T>, settle = false): Promise<T> {
    const ms = this.remainingMs();
    if (ms <= 0) throw this.exceeded();
    if (!this.timers) {
      try {
        return await operation();
      } catch (error) {
        // The operation's own timeout fired at the deadline: the task timed out.
        if (this.remainingMs() <= 0 && !(error instanceof TaskEnded)) throw this.exceeded();
        throw error;
      }
    }
    const scope = new CancellationScope();
    let expired = false;
    let running: Promise<T> | undefined;
    try {
      return await scope.run(() =>
        Promise.race([
          settle ? (running = operation()) : operation(),
          sleep(ms, { summary: `deadline ${this.limit}` }).then(() => {
            expired = true;
            throw this.exceeded();
          }),
        ]),
      );
    } catch (error) {
      if (running !== undefined) {
        scope.cancel();
        await running.then(
          () => undefined,
          () => undefined,
        );
      }
      if (expired) throw this.exceeded();
      throw error;
    } finally {
      scope.cancel();
    }
  }
}
