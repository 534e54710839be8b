/**
 * `monitor`: what monitoring adds and how fast it stops a task (issue 14).
 *  - scoring per step: the exact pure work the workflow does for each action (features, history,
 *    score against a learnt baseline, the foundation pack's response rules, the outcome's reasons),
 *    timed per action over long normal runs, next to the guarded step cycle of the `step` section
 *    when it ran (so the ratio is the share of a step scoring takes);
 *  - per task: reading the baseline and the response rules when a task begins (the one local
 *    activity monitoring adds to a run), on a SQLite state store;
 *  - on the real server with a guarded worker: detection (a rule fired) to the task's grant
 *    revoked, the anomalous action's proposal to revoked, and `warden kill` sent to revoked.
 */
import { join } from 'node:path';
import { createActivities } from '../../activities';
import { killTask } from '../../client/kill-task';
import { agentTaskResult, followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { issueApproverKey } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { featuresOfAction, outcomeOfStep } from '../../monitoring/action-features';
import { learnBaselines, type AgentBaseline } from '../../monitoring/baseline';
import { createBaselineStore } from '../../monitoring/baseline-store';
import { loadResponseRules } from '../../monitoring/load-response-rules';
import { emptyHistory, MAX_EVENTS, recordOutcome, recordProposed } from '../../monitoring/monitor-history';
import { fireRules, type ResponseRule } from '../../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed } from '../../monitoring/score-action';
import { openStateStore } from '../../state/state-store';
import { parseTask } from '../../task/load-task-file';
import type { StepRecord, TaskResult } from '../../task/task-run';
import { taskStateQuery } from '../../workflows/definitions';
import { figure, type BenchContext, type BenchSection } from '../bench-section';
import { summarize } from '../stats';
import { benchWorkers } from '../support/bench-workers';
import { temporalBench } from '../support/temporal-bench';
import { benchWorkerRuntime, workerRuntimeNote } from '../support/worker-runtime';

const T0 = Date.parse('2026-11-30T10:00:00Z');
/** Steps of one scored run (a long one: a task's default limit is 50). */
const RUN_STEPS = 600;
/** The longest run a task may make (`limits.maxSteps` at most): the monitor keeps every event of it. */
const LONGEST_RUN = MAX_EVENTS;

function step(index: number, tool: string, args: Record<string, unknown>, output: unknown): StepRecord {
  return { index, turn: index, kind: tool.startsWith('spawn:') ? 'spawn' : 'tool', tool, args, decision: 'allow', reason: 'granted', executed: true, output, startedAt: new Date(T0 + index * 1500).toISOString(), durationMs: 20 };
}

/** The i-th normal action of a clerk: reads, queries, one-row updates, API calls, reports, now and then a reviewer. */
function normalStep(i: number): StepRecord {
  switch (i % 6) {
    case 0:
      return step(i, 'fs.read', { path: `notes-${i % 5}.txt` }, 'restock tea and jam');
    case 1:
      return step(i, 'sql.query', { database: 'shop', sql: 'SELECT id, qty FROM orders WHERE qty < ?', params: [i % 4] }, [{ id: 1, qty: 0 }]);
    case 2:
      return step(i, 'sql.exec', { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = ?', params: [i % 40] }, { changes: 1 });
    case 3:
      return step(i, 'http.fetch', { url: 'https://api.example.com/status' }, { status: 200, body: 'green' });
    case 4:
      return step(i, 'fs.write', { path: 'report.txt', content: `restocked ${i % 9} items` }, { path: 'report.txt', bytes: 19 });
    default:
      return i % 60 === 5 ? step(i, 'spawn:reviewer', { subagent: 'reviewer' }, { status: 'completed', final: { answer: 'ok', claims: [] } }) : step(i, 'fs.list', { path: '.' }, ['notes.txt']);
  }
}

function learntBaseline(agent: string, steps = RUN_STEPS, count = 20): AgentBaseline {
  const runs: TaskResult[] = Array.from({ length: count }, (_, r) => ({
    workflowId: `w-${r}`,
    runId: 'r',
    agent,
    model: { id: 'm', version: '1' },
    depth: 0,
    status: 'completed',
    steps: Array.from({ length: steps }, (_, i) => ({ ...normalStep(r * 7 + i), index: i, startedAt: new Date(T0 + i * 1500).toISOString() })),
    children: [],
    final: null,
  }));
  return learnBaselines(runs, new Date().toISOString()).baselines[0]!;
}

/** Times what monitor-step.ts does per action (observe, then afterRun) over one normal run; checks it raised nothing. */
function scoreRun(baseline: AgentBaseline, rules: ResponseRule[], r: number, steps = RUN_STEPS, keepFrom = 0): number[] {
  const history = emptyHistory();
  const armed: Record<string, boolean> = {};
  const samples: number[] = [];
  for (let i = 0; i < steps; i += 1) {
    const s = normalStep(r * 3 + i);
    const now = T0 + i * 1500;
    const started = performance.now();
    const features = featuresOfAction(s.tool, s.args, s.tool === 'sql.exec' ? { rowsChanged: 1, operation: 'update' } : undefined, {});
    const event = recordProposed(history, features, i, now);
    const reasons = scoreProposed(history, baseline, features, now);
    const fired = fireRules(rules, { history, baseline, features, score: scoreOf(reasons), reasons, now }, armed, new Set());
    const outcome = outcomeOfStep(s);
    recordOutcome(event, outcome);
    const extra = scoreOutcome(history, baseline, features, outcome, now, reasons);
    if (i >= keepFrom) samples.push(performance.now() - started);
    if (fired.length > 0 || extra.length > 0) throw new Error(`normal step ${i} raised ${JSON.stringify(fired)} ${JSON.stringify(extra)}`);
  }
  return samples;
}

async function beginPerTask(context: BenchContext, runs: number): Promise<number[]> {
  const stateDir = join(context.tmpDir, 'monitor-state');
  const state = await openStateStore({ stateDir, env: {} });
  try {
    await createBaselineStore(state.db).put([learntBaseline('bench-clerk')], 'bench');
    const activities = createActivities({ sandbox: undefined as never, stateDir, monitor: { baselines: createBaselineStore(state.db), alerts: undefined as never } });
    const samples: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const started = performance.now();
      const setup = await activities.beginMonitoring({ workflowId: `bench-${i}`, agent: 'bench-clerk', sentences: [] });
      samples.push(performance.now() - started);
      if (setup.baseline === null || setup.rules.length === 0) throw new Error('beginMonitoring read nothing');
    }
    return samples;
  } finally {
    await state.close();
  }
}

async function onTheServer(context: BenchContext, rogue: number, kills: number): Promise<{ detection: number[]; action: number[]; kill: number[] }> {
  const { client } = await temporalBench(context);
  const { guarded } = await benchWorkers(context);
  const approvers = openApproverStore({ stateDir: context.stateDir });
  const key = (await issueApproverKey(approvers, { name: `bench-${process.pid}-${Date.now()}` })).keyFile;
  approvers.close();
  const tick = { name: 'tick', description: 'ticks', input: { type: 'object' }, source: 'const end = Date.now() + 50; while (Date.now() < end) {} return input.n;' };
  const task = (script: unknown[], policies: string[] = []) =>
    parseTask({ user: 'bench@example.com', intent: 'benchmark', agent: { name: 'bench-rogue', model: { driver: 'scripted', script } }, tools: { custom: [tick] }, grants: { tools: ['tick'] }, limits: { maxSteps: 200 }, policies }, 'bench', context.stateDir);
  const out = { detection: [] as number[], action: [] as number[], kill: [] as number[] };
  for (let i = 0; i < rogue; i += 1) {
    const loop = Array.from({ length: 8 }, () => ({ tool: 'tick', args: { n: 1 } }));
    const handle = await startAgentTask(client, task([{ tool: 'tick', args: { n: 0 } }, ...loop, { final: 'x' }], ['block the task and roll it back when it makes the same call 4 times in a row']), { taskQueue: guarded.taskQueue });
    const result = await agentTaskResult(handle);
    const alert = result.alerts?.find((a) => a.response === 'remediate');
    if (result.status !== 'blocked' || alert?.detectionToBlockMs === undefined || result.steps.length !== 5) throw new Error(`a rogue bench task ended ${result.status} after ${result.steps.length} steps`);
    out.detection.push(alert.detectionToBlockMs);
    out.action.push(alert.actionToBlockMs ?? Number.NaN);
  }
  for (let i = 0; i < kills; i += 1) {
    const handle = await startAgentTask(client, task([...Array.from({ length: 100 }, (_, n) => ({ tool: 'tick', args: { n } })), { final: 'x' }]), { taskQueue: guarded.taskQueue });
    for (;;) {
      const state = await handle.query(taskStateQuery).catch(() => undefined);
      if (state !== undefined && state.steps.filter((s) => s.executed).length >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const kill = await killTask(client, { workflowId: handle.workflowId, key, reason: 'bench' });
    if (kill.blockedAt === undefined) throw new Error(`a bench kill found the task ${kill.status}`);
    out.kill.push(Date.parse(kill.blockedAt) - Date.parse(kill.requestedAt));
    const result = await followAgentTask(handle);
    if (result.status !== 'blocked' || result.steps.length >= 100) throw new Error(`a killed bench task ended ${result.status} after ${result.steps.length} steps`);
  }
  return out;
}

export const monitorSection: BenchSection = {
  name: 'monitor',
  // Not one of issue 17's figures: runs when named (`npm run bench -- monitor`).
  runByDefault: false,
  title: 'anomaly scoring per step vs a guarded step; monitor begin per task; detection-to-block and kill-to-block on the server',
  async run(context) {
    const baseline = learntBaseline('clerk');
    const rules = loadResponseRules({ packs: ['foundation'], sentences: ['block the task and roll it back when it makes the same call 5 times in a row', 'alert when it uses a new tool'] });
    scoreRun(baseline, rules, 0); // warm-up
    const runs = context.quick ? 5 : 30;
    const perStep = Array.from({ length: runs }, (_, r) => scoreRun(baseline, rules, r + 1)).flat();
    // Whole-run count rules read every event of the run: the cost grows with its length.
    // (The foundation's score and window rules; its "more than 20 sub-agents" holds for any run this long.)
    const wholeRun = loadResponseRules({
      packs: [],
      sentences: [
        'alert when the anomaly score is above 40',
        'block the task and roll it back when it is denied 5 times in a minute',
        'block the task and roll it back when it makes the same call 10 times in a row',
        `block the task when it changes more than ${LONGEST_RUN} rows`,
        'alert when it is denied 100 times',
        `alert when it makes more than ${LONGEST_RUN} calls of sql.exec`,
      ],
    });
    const longRuns = context.quick ? 1 : 2;
    const longBaseline = learntBaseline('clerk', LONGEST_RUN, 5);
    const lastSteps = Array.from({ length: longRuns }, (_, r) => scoreRun(longBaseline, wholeRun, r + 1, LONGEST_RUN, LONGEST_RUN - 1000)).flat();
    const step = context.results.get('step')?.figures.find((f) => f.id === 'step.ratio');
    const rogue = context.quick ? 5 : 20;
    const kills = context.quick ? 3 : 10;
    context.log(`monitor: ${rogue} runaway loops and ${kills} kills on the server`);
    const server = await onTheServer(context, rogue, kills);
    return {
      figures: [
        figure('monitor.score', 'anomaly scoring per step (added to each step)', summarize(perStep), {
          ...(step === undefined ? {} : { baseline: { label: 'guarded step cycle (step section)', summary: { n: step.n, median: step.median, p99: step.p99, min: step.median, max: step.p99 } } }),
        }),
        figure('monitor.score_longest', `scoring per step at steps ${LONGEST_RUN - 1000}-${LONGEST_RUN} of a ${LONGEST_RUN}-step run, with whole-run count rules`, summarize(lastSteps)),
        figure('monitor.begin', 'monitor begin per task (baseline + response rules)', summarize(await beginPerTask(context, context.quick ? 10 : 50))),
        figure('monitor.detection_to_block', 'detection (rule fired) -> grant revoked', summarize(server.detection)),
        figure('monitor.action_to_block', 'anomalous action proposed -> grant revoked', summarize(server.action)),
        figure('monitor.kill_to_block', '`warden kill` sent -> grant revoked (running task)', summarize(server.kill)),
      ],
      notes: [
        `scoring: ${perStep.length} normal actions in runs of ${RUN_STEPS} (the monitor keeps every event of a run, up to ${MAX_EVENTS}), in-process; in the workflow it is the same pure code and adds no history event`,
        `longest run: the last 1,000 actions of ${longRuns} run(s) of ${LONGEST_RUN}, the foundation's score, denial and loop rules plus three whole-run count rules (rows, refusals, calls of a tool), which scan the run's events`,
        'detection to block: a rule ("the same call 4 times in a row") fires in the workflow, a local activity revokes the grant; the times are from the workflow time of detection (or the action\'s proposal) to the revocation committed',
        'kill to block: from the client sending the signed kill Update to the revocation committed (authorizeKill verifies the approver signature first)',
        workerRuntimeNote(benchWorkerRuntime(context)),
      ],
    };
  },
};
