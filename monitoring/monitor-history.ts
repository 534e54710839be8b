/**
 * What one agent run has done so far, as the monitor counts it: one event per proposed action
 * (tool call or spawn) with its time, digest, whether it was refused or failed, and the rows it
 * changed. Windows and runs of identical calls are counted from it.
 *
 * Plain data updated in place by the workflow (deterministic: times are the workflow's clock);
 * every event of the run is kept (up to the most steps a run may take), with running totals.
 * Events no longer kept (a data-flow task hands over to its next run with only its recent
 * events, monitor-carry.ts) still count towards whole-run figures through `earlier`.
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

/** What the events no longer in `events` (folded, oldest first) add to whole-run figures. */
export interface EarlierEvents {
  refused: number;
  failed: number;
  /** Rows changed and bytes written or sent by the folded actions that were not refused. */
  rows: number;
  bytesOut: number;
  /** Rows of the folded actions not refused, by SQL operation. */
  rowsByOperation: Record<string, number>;
  /** The run of identical calls the folded events end with (it goes on if the kept ones continue it). */
  identical?: { digest: string; count: number };
}

export interface MonitorHistory {
  events: MonitorEvent[];
  /** Totals over the whole run (folded events included). */
  calls: number;
  spawns: number;
  callsByTool: Record<string, number>;
  earlier: EarlierEvents;
}

export function emptyEarlier(): EarlierEvents {
  return { refused: 0, failed: 0, rows: 0, bytesOut: 0, rowsByOperation: {} };
}

export function emptyHistory(): MonitorHistory {
  return { events: [], calls: 0, spawns: 0, callsByTool: {}, earlier: emptyEarlier() };
}

/**
 * Moves the `count` oldest events out of `events` into `earlier` (in place): whole-run counts,
 * volumes and the current run of identical calls stay what they were; only windows lose them.
 */
export function foldOldest(history: MonitorHistory, count: number): void {
  const folded = history.events.splice(0, Math.max(0, count));
  const earlier = history.earlier;
  for (const e of folded) {
    if (e.refused) earlier.refused += 1;
    if (e.failed !== undefined) earlier.failed += 1;
    if (!e.refused) {
      earlier.rows += e.rows ?? 0;
      earlier.bytesOut += e.bytesOut ?? 0;
      if (e.operation !== undefined && e.rows !== undefined) earlier.rowsByOperation[e.operation] = (earlier.rowsByOperation[e.operation] ?? 0) + e.rows;
    }
    earlier.identical = earlier.identical?.digest === e.digest ? { digest: e.digest, count: earlier.identical.count + 1 } : { digest: e.digest, count: 1 };
  }
}

/** Records a proposed action; returns its event, which the outcome later completes. */
export function recordProposed(history: MonitorHistory, features: ActionFeatures, stepIndex: number, at: number): MonitorEvent {
  const event: MonitorEvent = { at, stepIndex, tool: features.tool, digest: features.digest, spawn: features.kind === 'spawn', refused: false };
  if (features.operation !== undefined) event.operation = features.operation;
  if (features.rows !== undefined) event.rows = features.rows;
  if (features.bytesOut !== undefined) event.bytesOut = features.bytesOut;
  history.events.push(event);
  if (history.events.length > MAX_EVENTS) foldOldest(history, history.events.length - MAX_EVENTS);
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

/**
 * How many of the latest events, counting back from the newest, have the newest one's digest
 * (through the folded ones when every kept event has it).
 */
export function identicalRun(history: MonitorHistory): number {
  const events = history.events;
  const last = events[events.length - 1];
  if (last === undefined) return 0;
  let i = events.length - 1;
  while (i >= 0 && events[i]!.digest === last.digest) i -= 1;
  const n = events.length - 1 - i;
  const before = history.earlier.identical;
  return i < 0 && before?.digest === last.digest ? n + before.count : n;
}

/** Refused (or failed) actions within the window; without one, in the whole run (folded ones included). */
export function countWithin(history: MonitorHistory, now: number, windowMs: number | undefined, what: 'refused' | 'failed'): number {
  const kept = eventsWithin(history, now, windowMs).filter((e) => (what === 'refused' ? e.refused : e.failed !== undefined)).length;
  return windowMs === undefined ? kept + history.earlier[what] : kept;
}

/** Rows changed by actions not refused (of `operation`, when given) within the window; without one, in the whole run. */
export function rowsWithin(history: MonitorHistory, now: number, windowMs: number | undefined, operation: string | undefined): number {
  const kept = eventsWithin(history, now, windowMs)
    .filter((e) => !e.refused && (operation === undefined || e.operation === operation))
    .reduce((sum, e) => sum + (e.rows ?? 0), 0);
  if (windowMs !== undefined) return kept;
  return kept + (operation === undefined ? history.earlier.rows : (history.earlier.rowsByOperation[operation] ?? 0));
}

/** Rows changed and bytes written or sent by the run's actions that were not refused (the action being scored included). */
export function runVolume(history: MonitorHistory): { rows: number; bytesOut: number } {
  let rows = history.earlier.rows;
  let bytesOut = history.earlier.bytesOut;
  for (const e of history.events) {
    if (e.refused) continue;
    rows += e.rows ?? 0;
    bytesOut += e.bytesOut ?? 0;
  }
  return { rows, bytesOut };
}
