/**
 * What normal looks like for one agent identity (its name), learnt from its past runs: per tool,
 * how often it is called, the hosts, databases and SQL operations it reaches, the rows and bytes
 * of a call, failure and refusal counts and the longest run of identical calls; per run, steps,
 * sub-agents spawned (fan-out) and how deep they nested, calls in any minute.
 *
 * Learning is a pure function of task results (`warden run --json` / the workflow's result), so
 * `warden baseline learn` can read them from Temporal histories or from files alike. Runs that
 * raised a monitor alert, were blocked, did not complete, or hold an action scored above 40
 * (`LEARN_MAX_SCORE`) are left out: an anomaly must not become normal by being learnt.
 *
 * Deterministic and free of Node imports: workflow code reads baselines.
 */
import { z } from 'zod';
import type { StepRecord, TaskResult } from '../task/task-run';
import { featuresOfAction, featuresOfStep, networkEffectsOf, outcomeOfStep, rowsOfOutput, type ActionFeatures } from './action-features';

/** A distribution summarised: count, mean, nearest-rank p95 and p99, maximum. */
export const StatSchema = z.strictObject({
  n: z.number().int().min(0),
  mean: z.number().min(0),
  p95: z.number().min(0),
  p99: z.number().min(0),
  max: z.number().min(0),
});
export type Stat = z.infer<typeof StatSchema>;

/** Most hosts, databases or operations remembered per tool; more are summarised by the count. */
export const MAX_REMEMBERED = 200;

export const ToolBaselineSchema = z.strictObject({
  /** Calls seen over every learnt run. */
  calls: z.number().int().min(0),
  /** Learnt runs that called the tool at least once. */
  tasks: z.number().int().min(0),
  callsPerTask: StatSchema,
  hosts: z.array(z.string()).max(MAX_REMEMBERED),
  databases: z.array(z.string()).max(MAX_REMEMBERED),
  operations: z.array(z.string()).max(MAX_REMEMBERED),
  /** Rows a call changed, per SQL operation (`delete`, `update`, ...), and over all calls. */
  rows: StatSchema.optional(),
  rowsByOperation: z.record(z.string(), StatSchema).default({}),
  bytesOut: StatSchema.optional(),
  bytesIn: StatSchema.optional(),
  failures: z.number().int().min(0),
  refusals: z.number().int().min(0),
  networkWrites: z.number().int().min(0),
  /** Longest run of identical consecutive calls of this tool in one run. */
  maxIdenticalRun: z.number().int().min(0),
});
export type ToolBaseline = z.infer<typeof ToolBaselineSchema>;

export const AgentBaselineSchema = z.strictObject({
  version: z.literal(1),
  /** The agent's name: its identity across runs (`agent:<name>@<workflowId>` names one run). */
  agent: z.string().min(1),
  /** Runs learnt from. */
  tasks: z.number().int().min(0),
  /** Model ids and versions seen (`id@version`). */
  models: z.array(z.string()),
  learnedAt: z.string(),
  /** Start of the oldest and newest run learnt (ISO 8601). */
  from: z.string().optional(),
  to: z.string().optional(),
  tools: z.record(z.string(), ToolBaselineSchema),
  /** Every host any tool reached. */
  hosts: z.array(z.string()).max(MAX_REMEMBERED * 4),
  stepsPerTask: StatSchema,
  spawnsPerTask: StatSchema,
  subagents: z.array(z.string()),
  /** Deepest nesting of sub-agents below this agent (0: it spawned none). */
  maxDepthBelow: z.number().int().min(0),
  /** Most calls (tool calls and spawns) in any 60-second window of one run. */
  callsPerMinute: StatSchema,
  /** Rows changed and bytes written or sent over a whole run (absent in baselines learnt before they were). */
  rowsPerTask: StatSchema.optional(),
  bytesOutPerTask: StatSchema.optional(),
  refusalsPerTask: StatSchema,
  failuresPerTask: StatSchema,
  maxIdenticalRun: z.number().int().min(0),
});
export type AgentBaseline = z.infer<typeof AgentBaselineSchema>;

/** Nearest-rank summary of `values` (an empty list gives zeros). */
export function statOf(values: readonly number[]): Stat {
  if (values.length === 0) return { n: 0, mean: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { n: sorted.length, mean: Math.round(mean * 1000) / 1000, p95: rank(0.95), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}

/**
 * Runs with an action scored above this are not learnt (default of `warden baseline learn
 * --max-score`): the foundation pack alerts above 40. A run the rules let through, because its
 * task named packs without response rules or its baseline was still young, must not widen the
 * baseline either.
 */
export const LEARN_MAX_SCORE = 40;

export interface LearnOptions {
  /** Skip runs with an action (in any sub-agent too) scored above this (0-100; default 40). */
  maxScore?: number;
}

/** Why a run was not learnt from, or undefined when it was. */
export function skipReasonOf(result: TaskResult, options: LearnOptions = {}): string | undefined {
  if (result.status !== 'completed') return `it ended ${result.status}`;
  if (hasAlerts(result)) return 'it raised monitor alerts';
  const scored = highestScored(result);
  const maxScore = options.maxScore ?? LEARN_MAX_SCORE;
  if (scored !== undefined && scored.score > maxScore) {
    return `step ${scored.step.index} of ${scored.agent} (${scored.step.tool}) scored ${scored.score} (${scored.step.monitor!.reasons.map((r) => r.signal).join(', ')}), above ${maxScore}`;
  }
  return undefined;
}

function highestScored(result: TaskResult): { agent: string; step: StepRecord; score: number } | undefined {
  let best: { agent: string; step: StepRecord; score: number } | undefined;
  for (const step of result.steps) {
    const score = step.monitor?.score ?? 0;
    if (score > (best?.score ?? 0)) best = { agent: result.agent, step, score };
  }
  for (const child of result.children) {
    const inner = highestScored(child);
    if (inner !== undefined && inner.score > (best?.score ?? 0)) best = inner;
  }
  return best;
}

function hasAlerts(result: TaskResult): boolean {
  const alerts = (result as { alerts?: unknown[] }).alerts;
  return (Array.isArray(alerts) && alerts.length > 0) || result.children.some(hasAlerts);
}

interface ToolSamples {
  calls: number;
  perTask: number[];
  hosts: Set<string>;
  databases: Set<string>;
  operations: Set<string>;
  rows: number[];
  rowsByOperation: Map<string, number[]>;
  bytesOut: number[];
  bytesIn: number[];
  failures: number;
  refusals: number;
  networkWrites: number;
  maxIdenticalRun: number;
  /** Calls that ran: a tool no call of which ran is not learnt as one the agent uses. */
  executed: number;
}

interface AgentSamples {
  tasks: number;
  models: Set<string>;
  from?: string;
  to?: string;
  tools: Map<string, ToolSamples>;
  steps: number[];
  spawns: number[];
  subagents: Set<string>;
  maxDepthBelow: number;
  callsPerMinute: number[];
  rows: number[];
  bytesOut: number[];
  refusals: number[];
  failures: number[];
  maxIdenticalRun: number;
}

function newToolSamples(): ToolSamples {
  return { calls: 0, perTask: [], hosts: new Set(), databases: new Set(), operations: new Set(), rows: [], rowsByOperation: new Map(), bytesOut: [], bytesIn: [], failures: 0, refusals: 0, networkWrites: 0, maxIdenticalRun: 0, executed: 0 };
}

/** Most steps that started within any `windowMs` of each other. */
export function maxInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while (sorted[end]! - sorted[start]! >= windowMs) start += 1;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

function depthBelow(result: TaskResult): number {
  return result.children.length === 0 ? 0 : 1 + Math.max(...result.children.map(depthBelow));
}

function addRun(agents: Map<string, AgentSamples>, run: TaskResult): void {
  let a = agents.get(run.agent);
  if (a === undefined) {
    a = { tasks: 0, models: new Set(), tools: new Map(), steps: [], spawns: [], subagents: new Set(), maxDepthBelow: 0, callsPerMinute: [], rows: [], bytesOut: [], refusals: [], failures: [], maxIdenticalRun: 0 };
    agents.set(run.agent, a);
  }
  a.tasks += 1;
  a.models.add(`${run.model.id}@${run.model.version}`);
  const started = run.steps[0]?.startedAt;
  if (started !== undefined) {
    if (a.from === undefined || started < a.from) a.from = started;
    if (a.to === undefined || started > a.to) a.to = started;
  }
  a.steps.push(run.steps.length);
  a.spawns.push(run.steps.filter((s) => s.kind === 'spawn').length);
  a.maxDepthBelow = Math.max(a.maxDepthBelow, depthBelow(run));
  a.callsPerMinute.push(maxInWindow(run.steps.map((s) => Date.parse(s.startedAt)).filter(Number.isFinite), 60_000));
  let refusals = 0;
  let failures = 0;
  let rows = 0;
  let bytesOut = 0;
  const perTask = new Map<string, number>();
  let previousDigest: string | undefined;
  let identical = 0;
  for (const step of run.steps) {
    addStep(a, step, perTask);
    const outcome = outcomeOfStep(step);
    if (outcome.refused) refusals += 1;
    if (outcome.failed !== undefined) failures += 1;
    // A spawn that was refused started no sub-agent: not learnt as one this agent starts.
    if (step.kind === 'spawn' && step.executed) a.subagents.add(step.tool.slice('spawn:'.length));
    const features = featuresOfStep(step);
    if (step.executed) {
      rows += features.rows ?? 0;
      bytesOut += features.bytesOut ?? 0;
    }
    const digest = features.digest;
    identical = digest === previousDigest ? identical + 1 : 1;
    previousDigest = digest;
    a.maxIdenticalRun = Math.max(a.maxIdenticalRun, identical);
    const t = a.tools.get(step.tool);
    if (t !== undefined) t.maxIdenticalRun = Math.max(t.maxIdenticalRun, identical);
  }
  for (const [tool, n] of perTask) a.tools.get(tool)!.perTask.push(n);
  a.refusals.push(refusals);
  a.failures.push(failures);
  a.rows.push(rows);
  a.bytesOut.push(bytesOut);
  for (const child of run.children) addRun(agents, child);
}

function addStep(a: AgentSamples, step: StepRecord, perTask: Map<string, number>): void {
  let t = a.tools.get(step.tool);
  if (t === undefined) a.tools.set(step.tool, (t = newToolSamples()));
  const outcome = outcomeOfStep(step);
  t.calls += 1;
  perTask.set(step.tool, (perTask.get(step.tool) ?? 0) + 1);
  if (outcome.refused) t.refusals += 1;
  if (outcome.failed !== undefined) t.failures += 1;
  // What a refused step would have reached, and the requests the egress refused or held, never
  // happened: learnt, they would make that very anomaly normal (a host the agent was refused
  // would no longer score new-host).
  if (!step.executed) return;
  t.executed += 1;
  const features = learntFeaturesOf(step);
  for (const host of features.hosts) t.hosts.add(host);
  for (const database of features.databases) t.databases.add(database);
  if (features.operation !== undefined) t.operations.add(features.operation);
  if (features.networkWrite) t.networkWrites += 1;
  if (features.rows !== undefined) {
    t.rows.push(features.rows);
    const op = features.operation ?? 'unknown';
    if (!t.rowsByOperation.has(op)) t.rowsByOperation.set(op, []);
    t.rowsByOperation.get(op)!.push(features.rows);
  }
  if (features.bytesOut !== undefined) t.bytesOut.push(features.bytesOut);
  if (outcome.bytesIn !== undefined) t.bytesIn.push(outcome.bytesIn);
}

/** The features of a step that ran, its refused or held requests left out (featuresOfStep reads them all, for scoring). */
function learntFeaturesOf(step: StepRecord): ActionFeatures {
  const network = networkEffectsOf(step.effects).filter((n) => n.held !== true);
  const features = featuresOfAction(step.tool, step.args, network.length === 0 ? undefined : { network });
  const rows = rowsOfOutput(step.output);
  if (rows !== undefined) features.rows = rows;
  return features;
}

const capped = (values: Set<string>, limit = MAX_REMEMBERED): string[] => [...values].sort().slice(0, limit);

/**
 * Baselines of every agent in `results` (task trees: sub-agents are learnt under their own names).
 * Runs whose tree did not complete, raised an alert or holds an action scored above
 * `options.maxScore` are skipped and counted in `skipped`.
 * @param learnedAt ISO 8601 time stamped on the baselines
 */
export function learnBaselines(results: readonly TaskResult[], learnedAt: string, options: LearnOptions = {}): { baselines: AgentBaseline[]; learnt: number; skipped: { workflowId: string; reason: string }[] } {
  const agents = new Map<string, AgentSamples>();
  const skipped: { workflowId: string; reason: string }[] = [];
  let learnt = 0;
  for (const result of results) {
    const reason = skipReasonOf(result, options);
    if (reason !== undefined) {
      skipped.push({ workflowId: result.workflowId, reason });
      continue;
    }
    learnt += 1;
    addRun(agents, result);
  }
  const baselines = [...agents.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([agent, a]): AgentBaseline => {
      const tools: Record<string, ToolBaseline> = {};
      const hosts = new Set<string>();
      for (const [tool, t] of [...a.tools.entries()].sort(([x], [y]) => (x < y ? -1 : 1))) {
        // Only ever refused (or stopped before it ran): not a tool this agent uses.
        if (t.executed === 0) continue;
        for (const host of t.hosts) hosts.add(host);
        tools[tool] = {
          calls: t.calls,
          tasks: t.perTask.length,
          callsPerTask: statOf(t.perTask),
          hosts: capped(t.hosts),
          databases: capped(t.databases),
          operations: capped(t.operations),
          ...(t.rows.length > 0 ? { rows: statOf(t.rows) } : {}),
          rowsByOperation: Object.fromEntries([...t.rowsByOperation.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([op, v]) => [op, statOf(v)])),
          ...(t.bytesOut.length > 0 ? { bytesOut: statOf(t.bytesOut) } : {}),
          ...(t.bytesIn.length > 0 ? { bytesIn: statOf(t.bytesIn) } : {}),
          failures: t.failures,
          refusals: t.refusals,
          networkWrites: t.networkWrites,
          maxIdenticalRun: t.maxIdenticalRun,
        };
      }
      return AgentBaselineSchema.parse({
        version: 1,
        agent,
        tasks: a.tasks,
        models: capped(a.models),
        learnedAt,
        ...(a.from === undefined ? {} : { from: a.from }),
        ...(a.to === undefined ? {} : { to: a.to }),
        tools,
        hosts: capped(hosts, MAX_REMEMBERED * 4),
        stepsPerTask: statOf(a.steps),
        spawnsPerTask: statOf(a.spawns),
        subagents: capped(a.subagents),
        maxDepthBelow: a.maxDepthBelow,
        callsPerMinute: statOf(a.callsPerMinute),
        rowsPerTask: statOf(a.rows),
        bytesOutPerTask: statOf(a.bytesOut),
        refusalsPerTask: statOf(a.refusals),
        failuresPerTask: statOf(a.failures),
        maxIdenticalRun: a.maxIdenticalRun,
      });
    });
  return { baselines, learnt, skipped };
}
