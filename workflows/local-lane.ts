/**
 * One lane for a run's local activities: at most one is in flight at a time, the others wait
 * their turn in the order they asked.
 *
 * Why: a handler (the kill Update, the block signal) runs beside the agent loop. Two local
 * activities in flight together reach the workflow as they complete live, but may be resolved
 * together, in another interleaving, on replay (this SDK's Core), so a kill authorised while the loop
 * checked a policy left a history that did not replay
 * (test/attacks/open/kill-beside-local-activity-replay.test.ts). In one lane, completion order is
 * schedule order. The cost: a handler's local activity waits for the loop's in flight (a policy
 * check, milliseconds), and the loop's for the handler's.
 *
 * Deterministic (workflow code). Disabled (runs from before `LOCAL_LANE_PATCH`; the data flow's
 * data-plane calls from before `FLOW_LOCAL_LANE_PATCH`), `run`
 * calls through untouched: the same promise, not one microtask more.
 */
export class LocalLane {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  /** @param enabled the run's `patches.localLane` (workflow-patches.ts) */
  constructor(private readonly enabled: boolean) {}

  /** Runs `call` (one local activity) in the lane; resolves or rejects as it does. */
  run<T>(call: () => Promise<T>): Promise<T> {
    if (!this.enabled) return call();
    return this.inTurn(call);
  }

  private async inTurn<T>(call: () => Promise<T>): Promise<T> {
    // Free: taken at once, so the command goes out where it did before the lane existed.
    if (this.busy) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.busy = true;
    try {
      return await call();
    } finally {
      // The next in line gets the lane as it is (still busy); none: free.
      const next = this.waiting.shift();
      if (next === undefined) this.busy = false;
      else next();
    }
  }
}
