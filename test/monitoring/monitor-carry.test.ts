/**
 * The monitor across continue-as-new, as the spec (issues 12 and 17): a task scores and responds
 * the same whether its actions ran in one run or in runs that hand over every few actions. Every
 * piece of state the scoring and the rules read is one row of the table (the current run of
 * identical calls, whole-run totals, windows, armed count rules), each crossed with several
 * hand-over schedules; the carried summary goes through JSON and its schema, as between two runs,
 * and stays bounded however long the task.
 */
import { describe, expect, it } from 'vitest';
import { featuresOfAction, type ActionOutcome, type MeasuredEffect } from '../../monitoring/action-features';
import { learnBaselines, type AgentBaseline } from '../../monitoring/baseline';
import type { Alert } from '../../monitoring/alert';
import { CarriedMonitorSchema, carriedAlerts, carryHistory, longestWindowMs, MAX_CARRIED_ALERT_BYTES, MAX_CARRIED_ALERTS, MAX_CARRIED_EVENTS, MAX_CARRIED_NAME, MAX_CARRIED_TOOLS, carriedName, reclaimCarried, resumeHistory } from '../../monitoring/monitor-carry';
import { emptyHistory, recordOutcome, recordProposed, type MonitorHistory } from '../../monitoring/monitor-history';
import { fireRules, type ResponseRule } from '../../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed, type ScoreReason, type Signal } from '../../monitoring/score-action';
import { parseResponseRule } from '../../policies/engine/parse-response-rule';
import type { StepRecord, TaskResult } from '../../task/task-run';

const T0 = Date.parse('2026-11-30T10:00:00Z');
const MINUTE = 60_000;

function step(index: number, tool: string, args: Record<string, unknown>, output: unknown): StepRecord {
  return { index, turn: index, kind: tool.startsWith('spawn:') ? 'spawn' : 'tool', tool, args, decision: 'allow', reason: 'granted', executed: true, output, startedAt: new Date(T0 + index * 2000).toISOString(), durationMs: 10 };
}

/** A learnt run of `clerk`: a read, a query, one or two one-row updates, a GET, a short report, a reviewer. */
function normalRun(i: number): TaskResult {
  const steps = [
    step(0, 'fs.read', { path: 'notes.txt' }, 'restock tea'),
    step(1, 'sql.query', { database: 'shop', sql: 'SELECT id FROM orders WHERE qty < ?', params: [i % 4] }, [{ id: 1 }]),
    step(2, 'sql.exec', { database: 'shop', sql: 'DELETE FROM orders WHERE id = ?', params: [i] }, { changes: 1 }),
    step(3, 'http.fetch', { url: 'https://api.example.com/status' }, { status: 200, body: 'green' }),
    step(4, 'fs.write', { path: 'report.txt', content: `restocked ${i} items` }, { path: 'report.txt', bytes: 20 }),
    step(5, 'spawn:reviewer', { subagent: 'reviewer' }, { status: 'completed', final: { answer: 'ok', claims: [] } }),
  ];
  return { workflowId: `w-${i}`, runId: 'r', agent: 'clerk', model: { id: 'm', version: '1' }, depth: 0, status: 'completed', steps, children: [], final: { answer: 'ok', claims: [] } };
}

const clerk: AgentBaseline = learnBaselines(Array.from({ length: 8 }, (_, i) => normalRun(i)), '2026-11-30T00:00:00Z').baselines.find((b) => b.agent === 'clerk')!;

interface Action {
  tool: string;
  args?: Record<string, unknown>;
  effect?: MeasuredEffect;
  outcome?: ActionOutcome;
  /** ms after T0 */
  at: number;
}

interface Case {
  name: string;
  baseline?: AgentBaseline;
  rules?: string[];
  actions: Action[];
  /** What the unsplit run must show, so the row tests what it names. */
  signal?: Signal;
  fires?: string;
  /** A rule the unsplit run must never fire (so a split run that fires it merged counts). */
  quiet?: string;
}

/** What the monitor decides for one action: its reasons (with their figures) and the rules fired. */
interface Verdict {
  reasons: ScoreReason[];
  fired: string[];
}

/**
 * Runs `actions` through the monitor's scoring and rules as TaskMonitor does (proposed, outcome);
 * before each index in `handOvers` the run continues as new: the summary is carried through JSON
 * and the schema, and the next run resumes from it.
 */
function simulate(c: Case, handOvers: ReadonlySet<number>): Verdict[] {
  const rules: ResponseRule[] = (c.rules ?? []).map((s, i) => parseResponseRule(s, { id: `task:${i + 1}` }));
  let history: MonitorHistory = emptyHistory();
  let armed: Record<string, boolean> = {};
  return c.actions.map((a, i) => {
    if (handOvers.has(i)) {
      const handedAt = T0 + c.actions[i - 1]!.at + 1;
      const carried = { ...carryHistory(history, handedAt, longestWindowMs(rules)), armed, alerts: [] };
      const next = CarriedMonitorSchema.parse(JSON.parse(JSON.stringify(carried)));
      history = resumeHistory(next);
      armed = { ...next.armed };
      // As TaskMonitor.begin: the rules' tool names take back their carried counts.
      reclaimCarried(history, rules.flatMap((r) => ('tools' in r.trigger ? (r.trigger.tools ?? []) : [])));
    }
    const now = T0 + a.at;
    const features = featuresOfAction(a.tool, a.args ?? {}, a.effect);
    // As TaskMonitor.track: each action's names, before they are counted.
    reclaimCarried(history, [features.tool, ...(features.operation === undefined ? [] : [features.operation])]);
    const event = recordProposed(history, features, i, now);
    const fired = new Set<string>();
    const fire = (reasons: ScoreReason[]) => {
      for (const f of fireRules(rules, { history, baseline: c.baseline, features, score: scoreOf(reasons), reasons, now }, armed, fired)) fired.add(f.id);
    };
    let reasons = scoreProposed(history, c.baseline, features, now);
    fire(reasons);
    if (a.outcome !== undefined) {
      recordOutcome(event, a.outcome);
      const extra = scoreOutcome(history, c.baseline, features, a.outcome, now, reasons);
      reasons = [...reasons, ...extra];
      if (extra.length > 0 || a.outcome.refused === true) fire(reasons);
    }
    return { reasons, fired: [...fired] };
  });
}

const times = (n: number, make: (i: number) => Action): Action[] => Array.from({ length: n }, (_, i) => make(i));
const add: Omit<Action, 'at'> = { tool: 'add', args: { a: 1, b: 2 } };
const deleteRows = (rows: number): Omit<Action, 'at'> => ({
  tool: 'sql.exec',
  args: { database: 'shop', sql: 'DELETE FROM orders WHERE id = ?', params: [rows] },
  effect: { operation: 'delete', rowsChanged: rows },
  outcome: { rows },
});

/** Tool names longer than MAX_CARRIED_NAME (any `[a-z][a-z0-9_-]*` is a legal tool name); the two differ only past the carried prefix. */
const LONG = `add-${'x'.repeat(246)}`;
const LONG_TWIN = `add-${'x'.repeat(245)}y`;
const long = (tool: string, i: number): Omit<Action, 'at'> => ({ tool, args: { a: i, b: 2 } });

/** `clerk`'s learnt runs, each also calling LONG once. */
const longClerk: AgentBaseline = learnBaselines(
  Array.from({ length: 8 }, (_, i) => {
    const run = normalRun(i);
    return { ...run, steps: [...run.steps, step(6, LONG, { a: i, b: 2 }, i + 2)] };
  }),
  '2026-11-30T00:00:00Z',
).baselines.find((b) => b.agent === 'clerk')!;

const CASES: Case[] = [
  // The finding: eight times the same call, runs handing over every couple of steps.
  { name: 'a run of identical calls (the finding)', actions: times(8, (i) => ({ ...add, at: i * 1000 })), signal: 'identical-loop' },
  {
    name: 'a run of identical calls longer than the events carried',
    rules: ['block the task when it makes the same call 1050 times in a row'],
    actions: times(MAX_CARRIED_EVENTS + 100, (i) => ({ ...add, at: i * 10 })),
    signal: 'identical-loop',
    fires: 'task:1',
  },
  {
    name: 'identical calls minutes apart (older than every window)',
    actions: times(6, (i) => ({ ...add, at: i * 5 * MINUTE })),
    signal: 'identical-loop',
  },
  {
    name: 'refusals over the whole run',
    rules: ['alert when it is denied 4 times'],
    actions: times(6, (i) => ({ tool: 'sql.drop', args: { n: i }, outcome: { refused: true }, at: i * 40_000 })),
    fires: 'task:1',
  },
  {
    name: 'failures over the whole run',
    rules: ['alert when it fails 4 times'],
    actions: times(6, (i) => ({ tool: 'add', args: { n: i }, outcome: { failed: 'ERR_TOOL_FAILED' }, at: i * 40_000 })),
    fires: 'task:1',
  },
  {
    name: 'a denial burst within a minute',
    actions: times(6, (i) => ({ tool: 'sql.drop', args: { n: i }, outcome: { refused: true }, at: i * 1000 })),
    signal: 'denial-burst',
  },
  {
    name: 'a failure burst within a minute',
    actions: times(6, (i) => ({ tool: 'add', args: { n: i }, outcome: { failed: 'ERR_TOOL_FAILED' }, at: i * 1000 })),
    signal: 'failure-burst',
  },
  {
    name: 'rows changed over the run, each call small',
    baseline: clerk,
    rules: ['block the task when it deletes more than 20 rows', 'alert when it changes more than 25 rows'],
    actions: times(8, (i) => ({ ...deleteRows(5), args: { ...deleteRows(5).args, params: [i] }, at: i * 2 * MINUTE })),
    signal: 'rows-total-jump',
    fires: 'task:1',
  },
  {
    name: 'bytes written over the run, each call small',
    baseline: clerk,
    actions: times(8, (i) => ({ tool: 'fs.write', args: { path: `r${i}.txt`, content: 'x' }, effect: { bytes: 4000 }, at: i * 2 * MINUTE })),
    signal: 'bytes-total-jump',
  },
  {
    name: 'calls of one tool over the run',
    baseline: clerk,
    rules: ['alert when it makes more than 5 calls of sql.exec'],
    actions: times(10, (i) => ({ ...deleteRows(1), args: { ...deleteRows(1).args, params: [i] }, at: i * 2 * MINUTE })),
    signal: 'calls-jump',
    fires: 'task:1',
  },
  {
    name: 'actions over the run',
    baseline: clerk,
    rules: ['alert when it makes more than 15 calls'],
    actions: times(20, (i) => ({ tool: 'fs.read', args: { path: `n${i}.txt` }, at: i * 2 * MINUTE })),
    signal: 'steps-jump',
    fires: 'task:1',
  },
  {
    name: 'sub-agents over the run',
    rules: ['block the task when it spawns more than 11 sub-agents'],
    actions: times(13, (i) => ({ tool: 'spawn:helper', args: { subagent: 'helper', intent: `part ${i}` }, at: i * 2 * MINUTE })),
    signal: 'fan-out',
    fires: 'task:1',
  },
  {
    name: 'the rate of actions within a minute',
    baseline: clerk,
    actions: times(20, (i) => ({ tool: 'fs.read', args: { path: `n${i}.txt` }, at: i * 1000 })),
    signal: 'rate-jump',
  },
  // The long-name finding: counts carried under `carriedName`'s shortened key count on under the full name.
  {
    name: 'calls of a tool with a 250-character name over the run (the long-name finding)',
    rules: [`block the task when it makes more than 9 calls of tool ${LONG}`],
    actions: times(12, (i) => ({ ...long(LONG, i), at: i * 2 * MINUTE })),
    fires: 'task:1',
  },
  {
    name: 'calls-jump of a tool with a 250-character name',
    baseline: longClerk,
    actions: times(10, (i) => ({ ...long(LONG, i), at: i * 2 * MINUTE })),
    signal: 'calls-jump',
  },
  {
    name: 'calls of a tool with a 250-character name within a window',
    rules: [`alert when it makes more than 4 calls of tool ${LONG} within 10 minutes`],
    actions: times(8, (i) => ({ ...long(LONG, i), at: i * MINUTE })),
    fires: 'task:1',
  },
  {
    name: 'two long names alike up to the carried prefix are not merged',
    rules: [`alert when it makes more than 5 calls of tool ${LONG}`, `alert when it makes more than 5 calls of tool ${LONG_TWIN}`],
    actions: times(10, (i) => ({ ...long(i % 2 === 0 ? LONG : LONG_TWIN, i), at: i * 2 * MINUTE })),
    quiet: 'task:1',
  },
  {
    name: 'a window rule fires once while it holds (armed)',
    rules: ['alert when it makes more than 3 calls in a minute'],
    actions: times(12, (i) => ({ tool: 'fs.read', args: { path: `n${i}.txt` }, at: i * 1000 })),
    fires: 'task:1',
  },
];

/** Hand-over schedules: every action, every second and third, once in the middle. */
function schedules(n: number): { name: string; at: Set<number> }[] {
  const every = (k: number) => new Set(Array.from({ length: n }, (_, i) => i).filter((i) => i > 0 && i % k === 0));
  return [
    { name: 'every action', at: every(1) },
    { name: 'every 2nd', at: every(2) },
    { name: 'every 3rd', at: every(3) },
    { name: 'once, mid-way', at: new Set([Math.floor(n / 2)]) },
  ];
}

describe('the monitor carried across continue-as-new', () => {
  describe.each(CASES)('$name', (c) => {
    const whole = simulate(c, new Set());

    it('shows what it names in one run', () => {
      if (c.signal !== undefined) expect(whole.some((v) => v.reasons.some((r) => r.signal === c.signal))).toBe(true);
      if (c.fires !== undefined) expect(whole.filter((v) => v.fired.includes(c.fires!))).toHaveLength(1);
      if (c.quiet !== undefined) expect(whole.some((v) => v.fired.includes(c.quiet!))).toBe(false);
    });

    it.each(schedules(c.actions.length))('scores and fires the same with a hand-over $name', ({ at }) => {
      expect(simulate(c, at)).toEqual(whole);
    });
  });

  it('carries long names under bounded keys, two names two keys, and takes them back under the full name', () => {
    expect(carriedName(LONG)).toHaveLength(MAX_CARRIED_NAME - 24 + 3 + carriedName(LONG).split('#')[1]!.length + 1);
    expect(carriedName(LONG).length).toBeLessThanOrEqual(MAX_CARRIED_NAME);
    expect(carriedName(LONG)).not.toBe(carriedName(LONG_TWIN));
    const history = emptyHistory();
    for (let i = 0; i < 3; i++) recordProposed(history, featuresOfAction(LONG, { a: i }), i, T0 + i);
    recordProposed(history, featuresOfAction(LONG_TWIN, {}), 3, T0 + 3);
    const resumed = resumeHistory(CarriedMonitorSchema.parse(JSON.parse(JSON.stringify({ ...carryHistory(history, T0 + 4, MINUTE), armed: {}, alerts: [] }))));
    expect(resumed.callsByTool).toEqual({ [carriedName(LONG)]: 3, [carriedName(LONG_TWIN)]: 1 });
    reclaimCarried(resumed, [LONG, 'add']);
    expect(resumed.callsByTool).toEqual({ [LONG]: 3, [carriedName(LONG_TWIN)]: 1 });
    expect(resumed.events.map((e) => e.tool)).toEqual([LONG, LONG, LONG, carriedName(LONG_TWIN)]);
  });

  it('carries a bounded summary however long and varied the run', () => {
    const history = emptyHistory();
    for (let i = 0; i < 10_000; i++) {
      // Made-up tool names (refused) and big figures: nothing grows the summary past its bounds.
      const features = featuresOfAction(`made-up-${i}`, { n: i }, { operation: `op${i}`, rowsChanged: 3 });
      recordOutcome(recordProposed(history, features, i, T0 + i), { rows: 3 });
    }
    const carried = CarriedMonitorSchema.parse(JSON.parse(JSON.stringify({ ...carryHistory(history, T0 + 10_000, 7 * 24 * 3_600_000), armed: {}, alerts: [] })));
    expect(carried.events).toHaveLength(MAX_CARRIED_EVENTS);
    expect(Object.keys(carried.callsByTool)).toHaveLength(MAX_CARRIED_TOOLS);
    expect(Object.keys(carried.earlier.rowsByOperation)).toHaveLength(MAX_CARRIED_TOOLS);
    expect(JSON.stringify(carried).length).toBeLessThan(256 * 1024);
    // Whole-run figures are kept exactly.
    expect(carried.calls).toBe(10_000);
    const resumed = resumeHistory(carried);
    expect(resumed.earlier.rows + resumed.events.reduce((s, e) => s + (e.rows ?? 0), 0)).toBe(30_000);
    // Names a model made up are carried bounded, each still its own.
    const long = emptyHistory();
    for (const name of ['x'.repeat(100_000), `${'x'.repeat(100_000)}y`]) recordProposed(long, featuresOfAction(name, {}), 0, T0);
    const shortened = carryHistory(long, T0 + 1, MINUTE);
    expect(JSON.stringify(shortened).length).toBeLessThan(2_000);
    expect(Object.keys(shortened.callsByTool)).toHaveLength(2);
    expect(new Set(shortened.events.map((e) => e.tool)).size).toBe(2);
    // Events no window reaches are not carried at all.
    expect(carryHistory(history, T0 + 10_000 + MINUTE, MINUTE).events).toHaveLength(0);
  });

  it('carries the newest alerts, bounded in number and bytes', () => {
    const alert = (i: number, detail: string): Alert => ({
      id: `a-${i}`,
      rootWorkflowId: 'w',
      workflowId: 'w',
      runId: 'r',
      agent: 'clerk',
      user: 'dana@example.com',
      source: 'monitor',
      stepIndex: i,
      tool: 'add',
      score: 45,
      reasons: [{ signal: 'identical-loop', points: 45, detail }],
      rules: [],
      response: 'alert',
      detectedAt: new Date(T0 + i).toISOString(),
    });
    const few = Array.from({ length: 80 }, (_, i) => alert(i, 'small'));
    expect(carriedAlerts(few).map((a) => a.id)).toEqual(few.slice(-MAX_CARRIED_ALERTS).map((a) => a.id));
    const big = Array.from({ length: 40 }, (_, i) => alert(i, 'x'.repeat(10_000)));
    const kept = carriedAlerts(big);
    expect(kept.length).toBeGreaterThan(0);
    expect(JSON.stringify(kept).length).toBeLessThanOrEqual(MAX_CARRIED_ALERT_BYTES + kept.length);
    expect(kept[kept.length - 1]!.id).toBe('a-39');
    for (const a of kept) expect(CarriedMonitorSchema.shape.alerts.element.safeParse(a).success).toBe(true);
  });

  it('refuses a summary that is not one (bad shapes, too many events)', () => {
    const good = { ...carryHistory(emptyHistory(), T0, MINUTE), armed: {}, alerts: [] };
    expect(CarriedMonitorSchema.safeParse(good).success).toBe(true);
    expect(CarriedMonitorSchema.safeParse({ ...good, calls: -5 }).success).toBe(false);
    expect(CarriedMonitorSchema.safeParse({ ...good, extra: 1 }).success).toBe(false);
    const event = { at: T0, stepIndex: 0, tool: 'add', digest: 'd', spawn: false, refused: false };
    expect(CarriedMonitorSchema.safeParse({ ...good, events: Array.from({ length: MAX_CARRIED_EVENTS + 1 }, () => event) }).success).toBe(false);
  });
});
