/**
 * The sandbox client's liveness defaults (sandbox-client.ts header, "Liveness") and the bounds
 * they give, in one module without imports: the workflows size the `runTool` activity's timeouts
 * from them (workflows/activity-stubs.ts, workflows/tool-step.ts), so the server never times out
 * a call the sandbox has not answered yet, and retries it beside it (atk19a).
 * All values in milliseconds.
 */

/** Time past a call's timeout before its host's liveness is checked. */
export const SANDBOX_DEADLINE_GRACE_MS = 2000;
/** Time a cancelled call's host has to stop it and answer before its liveness is checked. */
export const SANDBOX_CANCEL_GRACE_MS = 2000;
/** How long a ping may go unanswered, and a call's isolate told to stop take to end, before the host is killed. */
export const SANDBOX_LIVENESS_WINDOW_MS = 10_000;
/** Longest a call is waited for past its liveness check began, whatever its host says. */
export const SANDBOX_OVERRUN_LIMIT_MS = 60_000;
/** Extra time before the liveness check of a call sent to a host that has not answered anything yet (still booting: a replacement after a host was lost). */
export const SANDBOX_BOOT_ALLOWANCE_MS = 15_000;

/**
 * Latest a call is answered past its timeout, with the defaults: the grace (and the boot allowance,
 * for a call sent to a host still booting), then the overrun limit (a host that answers pings but
 * not the call is killed then).
 */
export const SANDBOX_ANSWER_BOUND_PAST_TIMEOUT_MS = SANDBOX_DEADLINE_GRACE_MS + SANDBOX_BOOT_ALLOWANCE_MS + SANDBOX_OVERRUN_LIMIT_MS;
/** Latest a cancelled call is answered past its cancel, with the defaults, but for its killed host's exit. */
export const SANDBOX_ANSWER_BOUND_PAST_CANCEL_MS = SANDBOX_CANCEL_GRACE_MS + SANDBOX_OVERRUN_LIMIT_MS;
