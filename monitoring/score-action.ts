/**
 * The anomaly score of one action: points for each way it departs from the agent's baseline or
 * trips a hard signal, summed and capped at 100, with every reason named. Scoring is a pure
 * function of the recorded run (history, the baseline loaded when the task began, the measured
 * effect, the workflow's clock), so a replayed workflow scores every action exactly as before.
 *
 * Two kinds of signal:
 *  - against the baseline (needs at least `minTasks` learnt runs of the agent): a tool, sub-agent,
 *    host, database or SQL operation never seen; rows or bytes far above the usual; more calls
 *    of a tool, more calls a minute, more steps or more sub-agents than any learnt run; more rows
 *    or bytes over the run than any learnt run (an agent that keeps each call small);
 *  - hard signals, with or without a baseline: a burst of denials or failures, a loop of identical
 *    calls, sub-agent fan-out, tool output sent over the network, revoked credentials, a blocked
 *    sub-agent.
 * Thresholds leave room above the learnt maxima, so a run like the learnt ones scores 0.
 *
 * Deterministic and free of Node imports: workflow code uses it.
 */
import type { ActionFeatures, ActionOutcome } from './action-features';
import type { AgentBaseline, Stat } from './baseline';
import { eventsWithin, identicalRun, runVolume, type MonitorHistory } from './monitor-history';

export const SIGNALS = [
  'new-tool',
  'new-subagent',
  'new-host',
  'new-database',
  'new-operation',
  'rows-jump',
  'bytes-jump',
  'rows-total-jump',
  'bytes-total-jump',
  'bytes-in-jump',
  'calls-jump',
  'rate-jump',
  'steps-jump',
  'fan-out',
  'identical-loop',
  'denial-burst',
  'failure-burst',
  'tool-output-sent',
  'credentials-revoked',
  'grant-unknown',
  'subagent-blocked',
] as const;
export type Signal = (typeof SIGNALS)[number];

export interface ScoreReason {
  signal: Signal;
  points: number;
  /** In words, with the figures compared (`deletes 40 rows; the most learnt is 3`). */
  detail: string;
}

export interface ActionScore {
  /** 0 (nothing unusual) to 100. */
  score: number;
  reasons: ScoreReason[];
}

export interface ScoringOptions {
  /** Learnt runs a baseline needs before its signals count (default 5). */
  minTasks?: number;
  /**
   * For an agent without a usable baseline of its own (a sub-agent never learnt): the hosts of its
   * nearest ancestor's usable baseline. The tree is watched as a whole: a host new to it is
   * `new-host` for the sub-agent too (its other signals wait for its own baseline).
   */
  treeHosts?: TreeHosts;
}

/** The hosts of the nearest ancestor with a usable baseline (`MonitorSetup.treeHosts`). */
export interface TreeHosts {
  agent: string;
  tasks: number;
  hosts: string[];
}

export const DEFAULT_MIN_TASKS = 5;
/** The window of the rate and burst signals. */
export const BURST_WINDOW_MS = 60_000;
/** Without a baseline: this many sub-agents in one run is fan-out. */
const FAN_OUT_WITHOUT_BASELINE = 10;

/** The baseline when it has learnt enough runs to judge by, else undefined. */
export function usableBaseline(baseline: AgentBaseline | undefined, options: ScoringOptions = {}): AgentBaseline | undefined {
  return baseline !== undefined && baseline.tasks >= (options.minTasks ?? DEFAULT_MIN_TASKS) ? baseline : undefined;
}

/** Sum of the reasons' points, capped at 100. */
export function scoreOf(reasons: readonly ScoreReason[]): number {
  return Math.min(100, reasons.reduce((sum, r) => sum + r.points, 0));
}

/** Points for a value `ratio` times the usual: 0 below 2x, then up with log2 of the ratio. */
function jumpPoints(ratio: number, base: number, cap: number): number {
  return ratio < 2 ? 0 : Math.min(cap, Math.round(base + 15 * Math.log2(ratio)));
}

/** `value` against the learnt maximum: a jump when at least twice it and `margin` above it. */
function jump(value: number, stat: Stat | undefined, margin: number): { ratio: number; usual: number } | undefined {
  if (stat === undefined || stat.n === 0) return undefined;
  const usual = stat.max;
  if (value < usual * 2 || value - usual < margin) return undefined;
  return { ratio: value / Math.max(usual, 1), usual };
}

/**
 * Scores an action before it runs (or as it is refused). `history` already holds the action's
 * own event (recordProposed), so windows and loops count it.
 */
export function scoreProposed(history: MonitorHistory, baseline: AgentBaseline | undefined, features: ActionFeatures, now: number, options: ScoringOptions = {}): ScoreReason[] {
  const b = usableBaseline(baseline, options);
  const reasons: ScoreReason[] = [];
  const add = (signal: Signal, points: number, detail: string) => {
    if (points > 0) reasons.push({ signal, points, detail });
  };
  const tool = b?.tools[features.tool];

  if (b !== undefined) {
    if (features.kind === 'spawn') {
      const name = features.tool.slice('spawn:'.length);
      if (!b.subagents.includes(name)) add('new-subagent', 30, `spawns ${name}, which agent ${b.agent} never spawned in ${b.tasks} learnt runs`);
    } else if (tool === undefined) {
      add('new-tool', 30, `calls ${features.tool}, which agent ${b.agent} never called in ${b.tasks} learnt runs`);
    }
    const newHosts = features.hosts.filter((h) => !b.hosts.includes(h));
    if (newHosts.length > 0) {
      add('new-host', features.networkWrite ? 70 : 50, `${features.networkWrite ? 'sends data to' : 'contacts'} ${newHosts.join(', ')}, never reached in ${b.tasks} learnt runs`);
    }
  } else if (options.treeHosts !== undefined) {
    const t = options.treeHosts;
    const newHosts = features.hosts.filter((h) => !t.hosts.includes(h));
    if (newHosts.length > 0) {
      add('new-host', features.networkWrite ? 70 : 50, `${features.networkWrite ? 'sends data to' : 'contacts'} ${newHosts.join(', ')}, never reached by its task tree (agent ${t.agent}, the nearest with a baseline: ${t.tasks} learnt runs)`);
    }
  }
  if (b !== undefined) {
    if (tool !== undefined) {
      const newDatabases = features.databases.filter((d) => !tool.databases.includes(d));
      if (newDatabases.length > 0) add('new-database', 20, `uses database ${newDatabases.join(', ')} with ${features.tool} for the first time`);
      if (features.operation !== undefined && tool.operations.length > 0 && !tool.operations.includes(features.operation)) {
        add('new-operation', 25, `runs a ${features.operation.toUpperCase()}, which ${features.tool} never ran in learnt runs (${tool.operations.join(', ')})`);
      }
      if (features.rows !== undefined) {
        const stat = (features.operation !== undefined ? tool.rowsByOperation[features.operation] : undefined) ?? tool.rows;
        const j = jump(features.rows, stat, 10);
        if (j !== undefined) add('rows-jump', jumpPoints(j.ratio, 20, 70), `changes ${features.rows} rows; the most in one learnt call is ${j.usual}`);
      }
      if (features.bytesOut !== undefined) {
        const j = jump(features.bytesOut, tool.bytesOut, 4096);
        if (j !== undefined) add('bytes-jump', jumpPoints(j.ratio, 10, 60), `writes or sends ${features.bytesOut} bytes; the most in one learnt call is ${j.usual}`);
      }
      const calls = history.callsByTool[features.tool] ?? 0;
      const usualCalls = tool.callsPerTask.max;
      if (calls > Math.max(usualCalls * 2, usualCalls + 5)) add('calls-jump', 25, `call ${calls} of ${features.tool} in this run; the most in a learnt run is ${usualCalls}`);
    }
    addRunVolume(history, b, features, reasons, add);
    const lastMinute = eventsWithin(history, now, BURST_WINDOW_MS).length;
    const usualRate = b.callsPerMinute.max;
    if (lastMinute > Math.max(usualRate * 2, usualRate + 10)) add('rate-jump', 30, `${lastMinute} actions in the last minute; the most in a learnt run is ${usualRate}`);
    const usualSteps = b.stepsPerTask.max;
    if (history.calls > Math.max(usualSteps * 2, usualSteps + 10)) add('steps-jump', 20, `action ${history.calls} of this run; the longest learnt run had ${usualSteps}`);
  }

  if (features.kind === 'spawn') {
    const limit = b === undefined ? FAN_OUT_WITHOUT_BASELINE : Math.max(b.spawnsPerTask.max + 2, b.spawnsPerTask.max * 2);
    if (history.spawns > limit) {
      add('fan-out', Math.min(80, 40 + 10 * (history.spawns - limit - 1)), `sub-agent ${history.spawns} of this run; ${b === undefined ? `more than ${limit} is fan-out` : `the most in a learnt run is ${b.spawnsPerTask.max}`}`);
    }
  }
  const run = identicalRun(history);
  const loopLimit = Math.max(3, (b?.maxIdenticalRun ?? 1) + 2);
  if (run >= loopLimit) add('identical-loop', Math.min(80, 30 + 15 * (run - loopLimit)), `the same call ${run} times in a row${b === undefined ? '' : `; at most ${b.maxIdenticalRun} in learnt runs`}`);
  if (features.networkWrite && features.carriesToolOutput) add('tool-output-sent', 20, `sends a value that came from a tool's output to ${features.hosts.join(', ')}`);
  addBursts(history, b, now, add);
  return reasons;
}

/**
 * The run's rows or bytes so far against the most of any learnt run, when no single call jumped:
 * an agent that keeps every call just under the per-call threshold still adds up.
 */
function addRunVolume(history: MonitorHistory, b: AgentBaseline, features: ActionFeatures, reasons: readonly ScoreReason[], add: (signal: Signal, points: number, detail: string) => void): void {
  if (features.rows === undefined && features.bytesOut === undefined) return;
  const volume = runVolume(history);
  if (features.rows !== undefined && !reasons.some((r) => r.signal === 'rows-jump')) {
    const j = jump(volume.rows, b.rowsPerTask, 20);
    if (j !== undefined) add('rows-total-jump', jumpPoints(j.ratio, 20, 60), `brings the rows changed in this run to ${volume.rows}; the most in a learnt run is ${j.usual}`);
  }
  if (features.bytesOut !== undefined && !reasons.some((r) => r.signal === 'bytes-jump')) {
    const j = jump(volume.bytesOut, b.bytesOutPerTask, 16 * 1024);
    if (j !== undefined) add('bytes-total-jump', jumpPoints(j.ratio, 10, 60), `brings the bytes written or sent in this run to ${volume.bytesOut}; the most in a learnt run is ${j.usual}`);
  }
}

function addBursts(history: MonitorHistory, b: AgentBaseline | undefined, now: number, add: (signal: Signal, points: number, detail: string) => void): void {
  const recent = eventsWithin(history, now, BURST_WINDOW_MS);
  const refused = recent.filter((e) => e.refused).length;
  const refusalLimit = Math.max(3, (b?.refusalsPerTask.max ?? 0) + 2);
  if (refused >= refusalLimit) add('denial-burst', Math.min(60, 20 + 10 * (refused - refusalLimit)), `${refused} actions refused in the last minute`);
  const failed = recent.filter((e) => e.failed !== undefined).length;
  const failureLimit = Math.max(3, (b?.failuresPerTask.max ?? 0) + 2);
  if (failed >= failureLimit) add('failure-burst', Math.min(40, 15 + 5 * (failed - failureLimit)), `${failed} actions failed in the last minute`);
}

/**
 * Reasons an action adds once its outcome is known (`history` holds the completed event):
 * refusal and failure bursts, revoked credentials, a blocked sub-agent, an output far larger
 * than usual. Reasons already given before it ran are not repeated.
 */
export function scoreOutcome(
  history: MonitorHistory,
  baseline: AgentBaseline | undefined,
  features: ActionFeatures,
  outcome: ActionOutcome,
  now: number,
  before: readonly ScoreReason[],
  options: ScoringOptions = {},
): ScoreReason[] {
  const b = usableBaseline(baseline, options);
  const reasons: ScoreReason[] = [];
  const add = (signal: Signal, points: number, detail: string) => {
    if (points > 0 && !before.some((r) => r.signal === signal)) reasons.push({ signal, points, detail });
  };
  if (outcome.failed === 'ERR_CREDENTIAL_REVOKED') add('credentials-revoked', 100, "the task's credentials were revoked while it ran");
  // Refused as firmly as a revocation, but said truthfully: nothing was revoked; the grant belongs to another state folder, or it expired and was pruned.
  if (outcome.failed === 'ERR_CREDENTIAL_GRANT_UNKNOWN') add('grant-unknown', 100, "the task's grant is unknown to the worker that ran the call: it was issued from another state folder (the task was started for a different worker set) or it expired and was pruned; this worker has no record of its revocation");
  if (outcome.childStatus === 'blocked') add('subagent-blocked', 100, `sub-agent ${features.tool.slice('spawn:'.length)} was blocked`);
  if (outcome.refused === true || outcome.failed !== undefined) addBursts(history, b, now, add);
  const tool = b?.tools[features.tool];
  if (tool !== undefined && outcome.bytesIn !== undefined) {
    const j = jump(outcome.bytesIn, tool.bytesIn, 64 * 1024);
    if (j !== undefined && j.ratio >= 10) add('bytes-in-jump', jumpPoints(j.ratio, 0, 40), `read ${outcome.bytesIn} bytes; the most in one learnt call is ${j.usual}`);
  }
  return reasons;
}
