/**
 * What the monitor hands to a data-flow task's next run (continue-as-new, workflows/task-flow.ts),
 * so the task scores and responds the same whether its steps ran in one run or in many: the
 * whole-run totals (calls, sub-agents, calls per tool, refusals, failures, rows and bytes), the
 * current run of identical calls, the recent events every window still needs, which count rules
 * are armed, a step-up in force, and the alerts raised so far.
 *
 * Bounded, not every step: events older than the longest window the task counts over are folded
 * into totals (monitor-history.ts `foldOldest`); at most `MAX_CARRIED_EVENTS` recent events,
 * `MAX_CARRIED_TOOLS` per-tool counts and `MAX_CARRIED_ALERTS` alerts (64 KiB) are carried, names
 * of at most `MAX_CARRIED_NAME` characters (longer ones shortened, and counted again under the full
 * name once the next run sees it: `reclaimCarried`). Trusted only
 * from the task's own continue-as-new, like the rest of the carried state (agent-task.ts
 * `trustedFlowInput`).
 *
 * Deterministic and free of Node imports: workflow code uses it.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { hash53 } from './action-features';
import { AlertSchema, type Alert } from './alert';
import { emptyEarlier, foldOldest, type MonitorEvent, type MonitorHistory } from './monitor-history';
import type { ResponseRule } from './response-rule';
import { BURST_WINDOW_MS } from './score-action';
import { cutText } from '../cut-text';

/**
 * Recent events carried: windows longer than the last this many actions (a rule over an hour of a
 * fast agent) count only these after a hand-over. About 100 bytes each in the next run's input.
 */
export const MAX_CARRIED_EVENTS = 1_000;
/** Per-tool call counts carried (the largest; a model can name any number of tools it was refused). */
export const MAX_CARRIED_TOOLS = 256;
/** Alerts carried into the next run's result (the newest; every alert is in the alert store). */
export const MAX_CARRIED_ALERTS = 50;
/** … and at most this many bytes of them (an alert quotes the call's tool name, which the model chose). */
export const MAX_CARRIED_ALERT_BYTES = 64 * 1024;
/**
 * Longer tool or operation names are carried shortened, with a hash of the whole name (so two long
 * names stay two): no granted tool has such a name; a model may make one up, and is refused.
 */
export const MAX_CARRIED_NAME = 200;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('monitoring/monitor-carry', () => {
  const Count = z.number().int().min(0);
  const CarriedEventSchema = z.strictObject({
    at: z.number().int(),
    stepIndex: Count,
    tool: z.string(),
    digest: z.string(),
    spawn: z.boolean(),
    refused: z.boolean(),
    failed: z.string().optional(),
    operation: z.string().optional(),
    rows: Count.optional(),
    bytesOut: Count.optional(),
  });
  const CarriedMonitorSchema = z.strictObject({
    calls: Count,
    spawns: Count,
    callsByTool: z.record(z.string(), Count),
    earlier: z.strictObject({
      refused: Count,
      failed: Count,
      rows: Count,
      bytesOut: Count,
      rowsByOperation: z.record(z.string(), Count),
      identical: z.strictObject({ digest: z.string(), count: z.number().int().min(1) }).optional(),
    }),
    events: z.array(CarriedEventSchema).max(MAX_CARRIED_EVENTS),
    /** Count rules that have reset since they last fired (response-rule.ts `fireRules`). */
    armed: z.record(z.string(), z.boolean()),
    /** A step-up in force: every later action waits for a human. */
    stepUp: z.string().optional(),
    alerts: z.array(AlertSchema).max(MAX_CARRIED_ALERTS),
  });
  return { CarriedEventSchema, CarriedMonitorSchema };
});

export const { CarriedMonitorSchema } = schemas;
const { CarriedEventSchema } = schemas;
export type CarriedMonitor = z.infer<typeof CarriedMonitorSchema>;

/** The longest window anything counts over: the burst signals' minute, or a rule's window. */
export function longestWindowMs(rules: readonly ResponseRule[]): number {
  let longest = BURST_WINDOW_MS;
  for (const rule of rules) {
    const w = 'windowMs' in rule.trigger ? rule.trigger.windowMs : undefined;
    if (w !== undefined && w > longest) longest = w;
  }
  return longest;
}

/** `name`, or a bounded stand-in for a name longer than MAX_CARRIED_NAME. */
export function carriedName(name: string): string {
  return name.length <= MAX_CARRIED_NAME ? name : `${cutText(name, MAX_CARRIED_NAME - 24)}...#${hash53(name)}`;
}

/** The `limit` largest entries of `counts` (ties by name, so the choice is deterministic), names bounded. */
function largest(counts: Record<string, number>, limit: number): Record<string, number> {
  const entries = Object.entries(counts);
  if (entries.length > limit) entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const kept: Record<string, number> = {};
  for (const [name, count] of entries.slice(0, limit)) kept[carriedName(name)] = (kept[carriedName(name)] ?? 0) + count;
  return kept;
}

/**
 * The history's summary at `now` (workflow time, epoch ms) for a run that counts over windows of
 * at most `windowMs`: events no window can reach any more, and any past the newest
 * `MAX_CARRIED_EVENTS`, folded into totals. `history` is not changed.
 */
export function carryHistory(history: MonitorHistory, now: number, windowMs: number): Omit<CarriedMonitor, 'armed' | 'stepUp' | 'alerts'> {
  const copy: MonitorHistory = {
    events: history.events.map((e) => ({ ...e })),
    calls: history.calls,
    spawns: history.spawns,
    callsByTool: { ...history.callsByTool },
    earlier: { ...history.earlier, rowsByOperation: { ...history.earlier.rowsByOperation } },
  };
  let reachable = copy.events.length;
  while (reachable > 0 && now - copy.events[copy.events.length - reachable]!.at >= windowMs) reachable -= 1;
  foldOldest(copy, copy.events.length - Math.min(reachable, MAX_CARRIED_EVENTS));
  return {
    calls: copy.calls,
    spawns: copy.spawns,
    callsByTool: largest(copy.callsByTool, MAX_CARRIED_TOOLS),
    earlier: { ...copy.earlier, rowsByOperation: largest(copy.earlier.rowsByOperation, MAX_CARRIED_TOOLS) },
    events: copy.events.map(compactEvent),
  };
}

/** What scoring reads of an event (a spawn's child status is read from its step, not kept). */
function compactEvent(e: MonitorEvent): z.infer<typeof CarriedEventSchema> {
  const { childStatus: _unused, ...kept } = e;
  return { ...kept, tool: carriedName(e.tool), ...(e.operation === undefined ? {} : { operation: carriedName(e.operation) }) };
}

/** The history a continued run starts from. */
export function resumeHistory(carried: CarriedMonitor): MonitorHistory {
  const earlier = { ...emptyEarlier(), ...carried.earlier, rowsByOperation: { ...carried.earlier.rowsByOperation } };
  return { events: carried.events.map((e) => ({ ...e })), calls: carried.calls, spawns: carried.spawns, callsByTool: { ...carried.callsByTool }, earlier };
}

/**
 * Counts what the previous run carried under `carriedName(name)` back under `name` itself (in
 * place), for each long name in `names`: the next run counts a tool's calls (and an operation's
 * rows) under the full name it sees, so a count carried under the shortened key would otherwise
 * restart at every hand-over. Names of at most `MAX_CARRIED_NAME` characters are carried as they
 * are and need nothing. Two long names stay apart unless both their prefix and their 53-bit hash
 * collide. Call it with every name a run sees before it counts or reads that name (monitor-step.ts:
 * the rules' and the task's tool names at the start, each action's tool and operation as it comes).
 */
export function reclaimCarried(history: MonitorHistory, names: Iterable<string>): void {
  for (const name of names) {
    if (name.length <= MAX_CARRIED_NAME) continue;
    for (const key of new Set([carriedName(name), legacyCarriedName(name)])) reclaimKey(history, key, name);
  }
}

/**
 * The stand-in a run before cut-text.ts carried: its prefix was cut by UTF-16 index and could end
 * on half of a surrogate pair. A run continued from such a run (or its replay) still finds it.
 */
function legacyCarriedName(name: string): string {
  return `${name.slice(0, MAX_CARRIED_NAME - 24)}...#${hash53(name)}`;
}

function reclaimKey(history: MonitorHistory, key: string, name: string): void {
  const calls = history.callsByTool[key];
  if (calls !== undefined) {
    delete history.callsByTool[key];
    history.callsByTool[name] = (history.callsByTool[name] ?? 0) + calls;
  }
  const rows = history.earlier.rowsByOperation[key];
  if (rows !== undefined) {
    delete history.earlier.rowsByOperation[key];
    history.earlier.rowsByOperation[name] = (history.earlier.rowsByOperation[name] ?? 0) + rows;
  }
  for (const e of history.events) {
    if (e.tool === key) e.tool = name;
    if (e.operation === key) e.operation = name;
  }
}

/** The newest alerts, at most `MAX_CARRIED_ALERTS` and `MAX_CARRIED_ALERT_BYTES` of them. */
export function carriedAlerts(alerts: readonly Alert[]): Alert[] {
  const kept: Alert[] = [];
  let bytes = 0;
  for (let i = alerts.length - 1; i >= 0 && kept.length < MAX_CARRIED_ALERTS; i -= 1) {
    bytes += JSON.stringify(alerts[i]).length;
    if (bytes > MAX_CARRIED_ALERT_BYTES) break;
    kept.unshift({ ...alerts[i]! });
  }
  return kept;
}
