/**
 * Timers for delays of any length: every timer Warden arms with a delay that is not a constant of
 * its own (a task's deadline or tool timeout, an option, a computed instant) goes through here.
 *
 * Why: Node's `setTimeout` / `setInterval` hold at most 2^31 - 1 ms (24.855 days); a longer delay
 * prints a TimeoutOverflowWarning and is set to 1 ms, and `AbortSignal.timeout` aborts after ~1 ms
 * the same way (Node 20). Task files allow durations up to 30 days (`MAX_DURATION_MS`,
 * task/task-file-limits.ts), so a bare timer fed `limits.deadline: 600h` fired at once: the data
 * flow's call deadline stopped every call, the sandbox client's overrun timer killed the host all
 * tasks of a worker share (test/long-timer-overflow.test.ts). A long timer here waits in steps of
 * at most 2^31 - 1 ms, measured on the monotonic clock (`performance.now()`), and fires once the
 * whole delay has passed. A delay within the cap is one plain timer, exactly as before.
 *
 * test/long-timer-scan.test.ts fails any `setTimeout`, `setInterval` or `AbortSignal.timeout` in
 * runtime code whose delay is not a literal or constant under the cap.
 *
 * Libraries that arm their own timer from a timeout option (the provider SDKs, the MCP SDK) cannot
 * be given more than {@link MAX_TIMER_MS}: see {@link libraryTimeoutMs}.
 */

/** The longest delay a Node (or browser) timer holds, in ms: 2^31 - 1 (24.855 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer armed by {@link setLongTimeout}. */
export interface LongTimeout {
  /** Stops the timer (idempotent; nothing happens after the callback ran). */
  clear(): void;
  /** The timer no longer keeps the process alive (as `Timeout.unref`); kept across its steps. */
  unref(): LongTimeout;
  /** The timer keeps the process alive again (as `Timeout.ref`). */
  ref(): LongTimeout;
}

/**
 * Calls `callback` once `delayMs` ms have passed, for any delay: a delay within
 * {@link MAX_TIMER_MS} is one `setTimeout`; a longer one re-arms in steps of at most that until
 * the whole delay has passed on the monotonic clock. As Node: a delay below 1 ms or NaN is 1 ms.
 * `Infinity` never fires.
 */
export function setLongTimeout(callback: () => void, delayMs: number): LongTimeout {
  const delay = Number.isNaN(delayMs) || delayMs < 1 ? 1 : delayMs;
  let referenced = true;
  let ended = false;
  let handle: ReturnType<typeof setTimeout>;
  const arm = (ms: number, then: () => void) => {
    handle = setTimeout(then, ms);
    if (!referenced) handle.unref?.();
  };
  if (delay <= MAX_TIMER_MS) {
    arm(delay, () => {
      ended = true;
      callback();
    });
  } else {
    const due = performance.now() + delay;
    const step = () => {
      const left = due - performance.now();
      if (left >= 1) return arm(Math.min(MAX_TIMER_MS, Math.ceil(left)), step);
      ended = true;
      callback();
    };
    arm(MAX_TIMER_MS, step);
  }
  const timer: LongTimeout = {
    clear() {
      ended = true;
      clearTimeout(handle);
    },
    unref() {
      referenced = false;
      if (!ended) handle.unref?.();
      return timer;
    },
    ref() {
      referenced = true;
      if (!ended) handle.ref?.();
      return timer;
    },
  };
  return timer;
}

/** Stops `timer` if given (as `clearTimeout(undefined)` does nothing). */
export function clearLongTimeout(timer: LongTimeout | undefined): void {
  timer?.clear();
}

/** Resolves once `delayMs` ms have passed (any delay, as {@link setLongTimeout}). */
export function longDelay(delayMs: number): Promise<void> {
  return new Promise((resolve) => setLongTimeout(resolve, delayMs));
}

/**
 * `AbortSignal.timeout(delayMs)` for any delay: aborts with a `TimeoutError` DOMException once
 * `delayMs` ms have passed; its timer does not keep the process alive. Within
 * {@link MAX_TIMER_MS} it is Node's own signal; a longer one is a long timer's.
 */
export function longTimeoutSignal(delayMs: number): AbortSignal {
  if (delayMs <= MAX_TIMER_MS) return AbortSignal.timeout(delayMs);
  const controller = new AbortController();
  setLongTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), delayMs).unref();
  return controller.signal;
}

/**
 * The timeout to give a library that arms its own `setTimeout` from it (the MCP SDK's request
 * timeout): `ms`, at most {@link MAX_TIMER_MS}. A longer timeout would fire after 1 ms inside the
 * library; capped, a call given more than 24.855 days is stopped at 24.855 days.
 */
export function libraryTimeoutMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
