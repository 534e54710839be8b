/**
 * A policy decision made ahead (issue 17, "fewer round trips per step"): the activity that brings
 * the model's next turn (a data-flow tool call with the turn folded in, or `placeTask` with the
 * first turn) also decides on that turn's first action, with exactly the inputs the workflow's
 * `checkPolicy` local activity would get, and returns a digest of those inputs with the decision.
 * The workflow uses the decision only when its own inputs at check time digest the same, and its
 * clock lies in the interval where no rule reading the clock can decide otherwise; else it asks
 * the local activity as before (correct, one hop slower).
 *
 * What the digest covers: every field of the check's input but the clock (`now`): the task (by
 * the digest of its JSON), the workflow id, depth and agent chain, the tool and its arguments,
 * the earlier outputs with their trust labels (`priorSteps`) and the transcript head they are read
 * from (`priorOutputsRef`), the provenance seed, and the policy state with this step counted. A
 * signal, an approval or anything else that changed one of them between the activity and the
 * check changes the digest.
 *
 * The clock: rules read it only through the minute of the day (time windows) and the recent calls
 * in a rate window (`at` in (now - window, now]). Both are constant on an interval around the
 * activity's time: the same minute, and no recent call entering or leaving any of the task's rate
 * windows (`validityOf`). Inside it the decision at the workflow's time is the decision at the
 * activity's time; outside it (or with a clock behind the activity's) the workflow asks again.
 *
 * Pure (sha256 from @noble/hashes, no Node APIs): the workflow and the activity compute the same
 * digest with the same code.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { stableJson } from '../recovery/call-key';
import { recordExecution, type PolicyState } from './engine/policy-state';
import type { PolicyRequest } from './engine/policy-request';
import type { ProvenanceSeed } from './provenance-seed';

/** What a decision made ahead carries besides the decision itself (recorded in history with it). */
export interface PolicyPrecheck {
  /** Hex SHA-256 of the check's inputs but the clock (`policyInputDigest`). */
  digest: string;
  /** The activity's clock when it decided (epoch ms). */
  atMs: number;
  /** The decision holds for a clock in [validFromMs, validUntilMs) (epoch ms). */
  validFromMs: number;
  validUntilMs: number;
}

/** The inputs of a policy check (activities/check-policy.ts `CheckPolicyInput`) as the digest reads them. */
export interface PolicyInputs {
  /** `taskDigestOf` of the task the check gets. */
  taskDigest: string;
  workflowId: string;
  depth: number;
  chain: readonly string[];
  tool: string;
  args: Record<string, unknown>;
  priorOutputs: readonly unknown[];
  priorSteps?: readonly { output: unknown; trust?: 'trusted' | 'untrusted' }[];
  priorOutputsRef?: string;
  seed?: ProvenanceSeed;
  state: PolicyState;
}

function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Hex SHA-256 of a task's JSON (members sorted, as it travels to the activity). */
export function taskDigestOf(task: unknown): string {
  return sha256Hex(stableJson(task));
}

/**
 * Hex SHA-256 of a check's inputs but the clock. JSON with members sorted (recovery/call-key.ts
 * `stableJson`): equal for two inputs exactly when the check's activity would get equal JSON.
 * Replay computes it again on recorded results: what it covers and how (`v: 1`, `stableJson`,
 * `taskDigestOf`) must not change under `warden-policy-precheck`; a change needs a patch of its own.
 */
export function policyInputDigest(inputs: PolicyInputs): string {
  return sha256Hex(
    stableJson({
      v: 1,
      task: inputs.taskDigest,
      workflowId: inputs.workflowId,
      depth: inputs.depth,
      chain: inputs.chain,
      tool: inputs.tool,
      args: inputs.args,
      priorOutputs: inputs.priorOutputs,
      priorSteps: inputs.priorSteps ?? null,
      priorOutputsRef: inputs.priorOutputsRef ?? null,
      seed: inputs.seed ?? null,
      state: inputs.state,
    }),
  );
}

/**
 * The MCP tool descriptions a policy check carries as earlier outputs (their servers' words,
 * untrusted): those of `pinned`'s listings, unless `sent`'s lists travel by digest (`mcpPins`),
 * in which case the check reads them itself and none are sent. The workflow's check and the
 * activity deciding ahead both build their input with this, so their digests can match.
 */
export function mcpDescriptionsOf(sent: { mcpPins?: unknown }, pinned: { mcpPinned?: readonly { tools: readonly { description: string }[] }[] } = sent as never): string[] {
  if (sent.mcpPins !== undefined) return [];
  return (pinned.mcpPinned ?? []).flatMap((listing) => listing.tools.map((t) => t.description)).filter((d) => d !== '');
}

const MINUTE_MS = 60_000;
/** The earliest and latest times a JavaScript Date holds (epoch ms): a decision no rule's clock reading can change holds for all of them. */
const ALL_TIME_MS = 8.64e15;

/** How a task's rules read the clock: the minute of the day (time windows), and the windows of its rate rules (ms). */
export interface ClockReading {
  minute: boolean;
  rateWindowsMs: readonly number[];
}

/**
 * The interval around `atMs` on which no rule can read the clock differently: the same minute
 * (when a rule reads the time of day, or any rate), and for every rate window no recent call's
 * `at` or `at + window` (where it enters and leaves the window) inside it. [validFromMs,
 * validUntilMs), epoch ms.
 */
export function validityOf(atMs: number, state: PolicyState, clock: ClockReading): { validFromMs: number; validUntilMs: number } {
  if (!clock.minute && clock.rateWindowsMs.length === 0) return { validFromMs: -ALL_TIME_MS, validUntilMs: ALL_TIME_MS };
  let from = Math.floor(atMs / MINUTE_MS) * MINUTE_MS;
  let until = from + MINUTE_MS;
  for (const call of state.recent) {
    for (const bound of [call.at, ...clock.rateWindowsMs.map((w) => call.at + w)]) {
      if (bound <= atMs) from = Math.max(from, bound);
      else until = Math.min(until, bound);
    }
  }
  return { validFromMs: from, validUntilMs: until };
}

/** Whether a decision made ahead holds for the workflow's check with `digest` at `nowMs`. */
export function precheckHolds(precheck: PolicyPrecheck | undefined, digest: string, nowMs: number): boolean {
  return precheck !== undefined && precheck.digest === digest && nowMs >= precheck.validFromMs && nowMs < precheck.validUntilMs;
}

/** A call's result as the policy counts it: the effects of a user tool's capability calls, and its own effect. */
export interface CountedCall {
  effects?: readonly { request: unknown }[];
  effect?: unknown;
}

/**
 * The policy state after a tool step that completed, counted as the workflow counts it
 * (workflows/tool-step.ts `runToolStep`): its capability calls (user tools only), then the step
 * itself with its measured effect. Used by the activity that decides ahead; should the two ever
 * count differently, the digests differ and the workflow asks on its own.
 */
export function stateAfterCall(state: PolicyState, request: PolicyRequest, call: CountedCall, options: { countEffects: boolean; retainMs: number }): PolicyState {
  let next = state;
  if (options.countEffects) for (const e of call.effects ?? []) next = recordExecution(next, e.request as PolicyRequest, { status: 'ok' }, { retainMs: options.retainMs });
  return recordExecution(next, request, { status: 'ok', ...(call.effect === undefined ? {} : { effect: call.effect as never }) }, { retainMs: options.retainMs });
}
