/**
 * What one agent run has done so far, as the monitor counts it: one event per proposed action
 * (tool call or spawn) with its time, digest, whether it was refused or failed, and the rows it
 * changed. Windows and runs of identical calls are counted from it.
 *
 * Plain data updated in place by the workflow (deterministic: times are the workflow's clock);
 * only the most recent events are kept, with running totals for the rest.
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
  childStatus?: string;
}

/** Events kept for windows and loops; older ones only count in the totals. */
export const MAX_EVENTS = 512;

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

/** Events proposed within the last `windowMs` before (and at) `now`. */
export function eventsWithin(history: MonitorHistory, now: number, windowMs: number | undefined): MonitorEvent[] {
  if (windowMs === undefined) return history.events;
  return history.events.filter((e) => now - e.at < windowMs);
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
