/**
 * The tool calls a run has in flight, each in its own CancellationScope, so that whatever ends the
 * task while one runs stops it (patch `warden-stop-calls-in-flight`).
 *
 * Why: a block (`warden kill`, a monitor's block or remediate response, a parent's block) ends the
 * task from a handler beside the loop, which awaits the `runTool` activity. Without a cancellation
 * request that activity went on: a `proc.run` program ran to its end or `toolTimeout`, and the
 * compensations ran only after it (test/workflows/calls-in-flight.test.ts). `stop` cancels every
 * call in flight; the tool activities of a run with the patch wait for the cancellation to complete
 * (`ActivityCancellationType.WAIT_CANCELLATION_COMPLETED`, activity-stubs.ts and task-flow.ts), so
 * the loop goes on, and the saga runs, only once the worker has killed the program (run-tool.ts
 * passes the activity's cancellationSignal to the executor).
 *
 * Deterministic (workflow code). Disabled (runs from before the patch), `run` calls through
 * untouched: the same promise, not one microtask more, so older histories replay.
 */
import { CancellationScope, CancelledFailure } from '@temporalio/workflow';

export class CallsInFlight {
  private readonly scopes = new Set<CancellationScope>();
  /** Why the calls were stopped (set by the first `stop`; no call starts after it). */
  private stoppedFor: string | undefined;

  /** @param enabled the run's `patches.stopCalls` (workflow-patches.ts) */
  constructor(readonly enabled: boolean) {}

  /** True once `stop` was called: a cancellation out of a call is the task's end, not the call's failure. */
  get stopped(): boolean {
    return this.stoppedFor !== undefined;
  }

  /** Runs one tool call's activity in a scope `stop` cancels; resolves or rejects as it does. */
  run<T>(call: () => Promise<T>): Promise<T> {
    if (!this.enabled) return call();
    return this.inScope(call);
  }

  /** Cancels every call in flight (and refuses later ones). */
  stop(reason: string): void {
    if (!this.enabled) return;
    this.stoppedFor ??= reason;
    for (const scope of this.scopes) scope.cancel();
  }

  private async inScope<T>(call: () => Promise<T>): Promise<T> {
    if (this.stoppedFor !== undefined) throw new CancelledFailure(this.stoppedFor);
    const scope = new CancellationScope();
    this.scopes.add(scope);
    try {
      return await scope.run(call);
    } finally {
      this.scopes.delete(scope);
    }
  }
}
