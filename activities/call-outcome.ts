/**
 * What a tool call's failure tells the workflow about what its tool did, so that what recovery
 * registers and reports matches it (workflows/tool-step.ts, patch `warden-undo-what-ran`):
 *
 * - `notRun: true`: the call was refused before its tool started (the input against the tool's
 *   schema, an unknown tool, a capability or program the task does not grant, the credential or
 *   grant, a cancellation or the deadline before the executor was handed the call). Set only on
 *   the activity's first attempt: a later attempt cannot vouch for what an earlier one did.
 *   Nothing of the call can need undoing, so no undo is registered for it (a compensating tool
 *   would otherwise run for an effect never made).
 * - `stopUnconfirmed`: the call was stopped (cancelled, the deadline) but its tool was not
 *   confirmed stopped: an HTTP MCP server that never answered the cancellation may still complete
 *   the call after its compensation ran. The text says why; the task's recovery lists the call as
 *   possibly not undone.
 *
 * - `egress`: what the call's program or MCP server did through its egress proxy before the call
 *   failed (a program stopped at its wall time after it reached a new host): the workflow scores it
 *   as it scores a completed call's (workflows/tool-step.ts, patch `warden-count-failed-calls`).
 *   Before, a failure carried none of it and a call that failed after its egress was never scored.
 *
 * - `effects`: the capability calls a custom tool's sandbox gate decided and applied before the
 *   tool failed (a POST through `warden.http.fetch`, then a throw): the workflow counts them in
 *   the task's policy state (rate rules) and records them, as a completed call's (same patch).
 *   Bounded: past {@link MAX_FAILED_EFFECTS_JSON} characters their arguments are left out.
 *
 * All ride in the failure's first details object (an ApplicationFailure's, or a cancelled
 * activity's CancelledFailure's), the field absent otherwise: a failure without them is taken to
 * have run, as before.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { StepEffect } from '../task/task-run';

/** How far a call's tool got, filled in as it runs (activities/run-tool.ts). */
export interface ToolProgress {
  /** Set once the executor was handed the call (the sandbox host, a program, an MCP server). */
  started: boolean;
  /** Why a stopped tool may still be running, when its stop was not confirmed. */
  stopUnconfirmed?: string;
  /** What the tool did through its egress proxy, set by the executor once known (however the call then ends). */
  egress?: StepEffect[];
  /** The capability calls the sandbox gate applied before the tool failed (run-tool.ts `AppliedEffect`). */
  effects?: FailedCallEffect[];
}

/** One capability call a failed tool made, as the gate applied it (run-tool.ts `AppliedEffect`, the request possibly without its arguments). */
export interface FailedCallEffect {
  request: { tool: string; agent: unknown; args?: unknown; effect?: unknown; via?: string } & Record<string, unknown>;
  decision: 'allow' | 'deny' | 'approval';
  rules: string[];
  shadow?: string[];
}

/** Most characters of JSON the failed call's `effects` take in its failure's details before their arguments are left out. */
export const MAX_FAILED_EFFECTS_JSON = 256 * 1024;

/**
 * `effects` as the failure carries them: as they are under {@link MAX_FAILED_EFFECTS_JSON}; else
 * without each request's arguments (what was measured, `effect`, is what rules count); else the
 * tool, agent and decision alone (each still counts as a call).
 */
export function boundedEffects(effects: readonly FailedCallEffect[]): FailedCallEffect[] {
  if (JSON.stringify(effects).length <= MAX_FAILED_EFFECTS_JSON) return [...effects];
  const withoutArgs = effects.map(({ request: { args: _args, ...request }, ...rest }) => ({ ...rest, request }));
  if (JSON.stringify(withoutArgs).length <= MAX_FAILED_EFFECTS_JSON) return withoutArgs;
  return effects.map((e) => ({ request: { tool: e.request.tool, agent: e.request.agent, ...(e.request.via === undefined ? {} : { via: e.request.via }) }, decision: e.decision, rules: [] }));
}

/** The details the workflow reads (the first details object of the call's failure). */
export interface CallOutcomeDetails {
  notRun?: true;
  stopUnconfirmed?: string;
  egress?: StepEffect[];
  effects?: FailedCallEffect[];
}

/**
 * The call's failure with what `progress` says of its tool added to its details; `attempt` is the
 * activity's attempt (1 for the first). A failure that is neither an ApplicationFailure nor a
 * CancelledFailure (an infrastructure error Temporal retries) is returned as is.
 */
export function withCallOutcome(failure: unknown, progress: ToolProgress, attempt: number): unknown {
  const outcome: CallOutcomeDetails = {
    ...(!progress.started && attempt === 1 ? { notRun: true as const } : {}),
    ...(progress.started && progress.stopUnconfirmed !== undefined ? { stopUnconfirmed: progress.stopUnconfirmed } : {}),
    ...(progress.started && progress.egress !== undefined && progress.egress.length > 0 ? { egress: progress.egress } : {}),
    ...(progress.started && progress.effects !== undefined && progress.effects.length > 0 ? { effects: boundedEffects(progress.effects) } : {}),
  };
  // Only this function speaks for the call's outcome: the same keys in details a failure already
  // had (a tool's or server's own error details) are dropped, never read as Warden's word.
  const claims = (details: readonly unknown[]): boolean => OUTCOME_KEYS.some((key) => key in firstDetails(details));
  if (Object.keys(outcome).length === 0 && !((failure instanceof CancelledFailure || failure instanceof ApplicationFailure) && claims(failure.details ?? []))) return failure;
  if (failure instanceof CancelledFailure) return new CancelledFailure(failure.message, [{ ...withoutOutcome(failure.details), ...outcome }, ...failure.details.slice(1)]);
  if (failure instanceof ApplicationFailure) {
    const details = failure.details ?? [];
    return ApplicationFailure.create({
      ...(failure.type === undefined || failure.type === null ? {} : { type: failure.type }),
      message: failure.message,
      nonRetryable: failure.nonRetryable === true,
      details: [{ ...withoutOutcome(details), ...outcome }, ...details.slice(1)],
      ...(failure.cause === undefined ? {} : { cause: failure.cause }),
    });
  }
  return failure;
}

const OUTCOME_KEYS = ['notRun', 'stopUnconfirmed', 'egress', 'effects'] as const;

/** The first details object without the keys only {@link withCallOutcome} may set. */
function withoutOutcome(details: readonly unknown[]): Record<string, unknown> {
  const rest = { ...firstDetails(details) };
  for (const key of OUTCOME_KEYS) delete rest[key];
  return rest;
}

function firstDetails(details: readonly unknown[]): Record<string, unknown> {
  const first = details[0];
  return typeof first === 'object' && first !== null && !Array.isArray(first) ? (first as Record<string, unknown>) : {};
}
