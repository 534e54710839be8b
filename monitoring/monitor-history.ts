/**
 * What one agent run has done so far, as the monitor counts it: one event per proposed action
 * (tool call or spawn) with its time, digest, whether it was refused or failed, and the rows it
 * changed. Windows and runs of identical calls are counted from it.
 *
 * Plain data updated in place by the workflow (deterministic: times are the workflow's clock);
 * every event of the run is kept (up to the most steps a run may take), with running totals.
 */
import type { ActionFeatures, ActionOutcome } from './action-features';

export interface MonitorEvent {
  /** Epoch ms (workflow time) the action was proposed. */
  at: number;
  stepIndex: number;
  tool: string;
  digest: string;
  spawn: boolean;
  refused: boolean;
  /** Error code of a call that ran and failed. */
  failed?: string;
  operation?: string;
  rows?: number;
  /** Bytes it writes or sends. */
  bytesOut?: number;
  childStatus?: string;
}

/**
 * Events kept: as many as a run may take steps (task-schema.ts, `limits.maxSteps` at most
 * 10,000), so every count rule, over a window or the whole run, counts every action. A smaller
 * buffer let an agent dilute its refusals, rows or calls below a whole-run threshold by doing
 * enough other things first.
 */
export const MAX_EVENTS = 10_000;

export interface MonitorHistory {
  events: MonitorEvent[];
  /** Totals over the whole run. */
  calls: number;
  spawns: number;
  callsByTool: Record<string, number>;
}

export function emptyHistory(): MonitorHistory {
  return { events: [], calls: 0, spawns: 0, callsByTool: {} };
}

/** Records a proposed action; returns its event, which the outcome later completes. */
export function recordProposed(history: MonitorHistory, features: ActionFeatures, stepIndex: number, at: number): MonitorEvent {
  const event: MonitorEvent = { at, stepIndex, tool: features.tool, digest: features.digest, spawn: features.kind === 'spawn', refused: false };
  if (features.operation !== undefined) event.operation = features.operation;
  if (features.rows !== undefined) event.rows = features.rows;
  if (features.bytesOut !== undefined) event.bytesOut = features.bytesOut;
  history.events.push(event);
  if (history.events.length > MAX_EVENTS) history.events.splice(0, history.events.length - MAX_EVENTS);
  history.calls += 1;
  if (event.spawn) history.spawns += 1;
  history.callsByTool[features.tool] = (history.callsByTool[features.tool] ?? 0) + 1;
  return event;
}

/** Completes an event with what happened. */
export function recordOutcome(event: MonitorEvent, outcome: ActionOutcome): void {
  if (outcome.refused === true) event.refused = true;
  if (outcome.failed !== undefined) event.failed = outcome.failed;
  if (outcome.rows !== undefined) event.rows = outcome.rows;
  if (outcome.childStatus !== undefined) event.childStatus = outcome.childStatus;
}

/** Events proposed within the last `windowMs` before (and at) `now`; every event without a window. */
export function eventsWithin(history: MonitorHistory, now: number, windowMs: number | undefined): MonitorEvent[] {
  if (windowMs === undefined) return history.events;
  // Events are in the order they were proposed (workflow time never goes back): scan from the newest.
  const events = history.events;
  let first = events.length;
  while (first > 0 && now - events[first - 1]!.at < windowMs) first -= 1;
  return events.slice(first);
}

/** How many of the latest events, counting back from the newest, have the newest one's digest. */
export function identicalRun(history: MonitorHistory): number {
  const events = history.events;
  const last = events[events.length - 1];
  if (last === undefined) return 0;
  let n = 0;
  for (let i = events.length - 1; i >= 0 && events[i]!.digest === last.digest; i -= 1) n += 1;
  return n;
}

/** Rows changed and bytes written or sent by the run's actions that were not refused (the action being scored included). */
export function runVolume(history: MonitorHistory): { rows: number; bytesOut: number } {
  let rows = 0;
  let bytesOut = 0;
  for (const e of history.events) {
    if (e.refused) continue;
    rows += e.rows ?? 0;
    bytesOut += e.bytesOut ?? 0;
  }
  return { rows, bytesOut };
}
