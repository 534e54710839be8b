/**
 * What monitoring costs and how fast it stops a task:
 *  1. scoring per step: the exact pure work the workflow does for each action (features, history,
 *     score against a learnt baseline, the foundation pack's response rules, the outcome's
 *     reasons), timed per action over a long run of normal actions: median and p99;
 *  2. per task: reading the baseline and the response rules when a task begins (the one local
 *     activity monitoring adds to a run), on the state folder's SQLite store;
 *  3. detection to block on the real Temporal server: runaway loops blocked by a rule (detection,
 *     and the anomalous action's proposal, to the grant's revocation committed), and `warden kill`
 *     of running tasks (kill sent to revocation committed).
 * Run: node --require tsx/cjs bench/monitor.bench.ts [rogue-tasks] [kills]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killTask } from '../client/kill-task';
import { followAgentTask, startAgentTask } from '../client/start-agent-task';
import { issueApproverKey } from '../identity/approval-decision';
import { openApproverStore } from '../identity/approver-registry';
import { createActivities } from '../activities';
import { featuresOfAction, outcomeOfStep } from '../monitoring/action-features';
import { learnBaselines } from '../monitoring/baseline';
import { createBaselineStore } from '../monitoring/baseline-store';
import { loadResponseRules } from '../monitoring/load-response-rules';
import { emptyHistory, recordOutcome, recordProposed } from '../monitoring/monitor-history';
import { fireRules } from '../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed } from '../monitoring/score-action';
import { parseTask } from '../task/load-task-file';
import type { StepRecord, TaskResult } from '../task/task-run';
import { stateDirOf } from '../state-dir';
import { openStateStore } from '../state/state-store';
import { connectClient, connectWorkerConnection } from '../temporal/connect';
import { ensureTemporalServer } from '../temporal/embedded-server';
import { loadTemporalConfig } from '../temporal/temporal-config';
import { taskStateQuery } from '../workflows/definitions';
import { createWardenWorker, installQuietRuntime } from '../worker/create-warden-worker';
import { summarize } from './stats';

const T0 = Date.parse('2026-11-30T10:00:00Z');

function step(index: number, tool: string, args: Record<string, unknown>, output: unknown): StepRecord {
  return { index, turn: index, kind: tool.startsWith('spawn:') ? 'spawn' : 'tool', tool, args, decision: 'allow', reason: 'granted', executed: true, output, startedAt: new Date(T0 + index * 1500).toISOString(), durationMs: 20 };
}

/** The i-th normal action of a clerk: reads, queries, one-row updates, API calls, reports, a reviewer. */
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
      // A reviewer now and then (a few per run; more is fan-out), a listing otherwise.
      return i % 60 === 5 ? step(i, 'spawn:reviewer', { subagent: 'reviewer' }, { status: 'completed', final: { answer: 'ok', claims: [] } }) : step(i, 'fs.list', { path: '.' }, ['notes.txt']);
  }
}

/** Steps of one run: long enough that the history the monitor keeps (512 events) fills up. */
const RUN_STEPS = 600;

function scoringPerStep(runsToScore: number): number[] {
  const runs: TaskResult[] = Array.from({ length: 20 }, (_, r) => ({
    workflowId: `w-${r}`,
    runId: 'r',
    agent: 'clerk',
    model: { id: 'm', version: '1' },
    depth: 0,
    status: 'completed',
    steps: Array.from({ length: RUN_STEPS }, (_, i) => ({ ...normalStep(r * 7 + i), index: i, startedAt: new Date(T0 + i * 1500).toISOString() })),
    children: [],
    final: null,
  }));
  const baseline = learnBaselines(runs, new Date().toISOString()).baselines[0]!;
  const rules = loadResponseRules({ packs: ['foundation'], sentences: ['block the task and roll it back when it makes the same call 5 times in a row', 'alert when it uses a new tool'] });
  const samples: number[] = [];
  for (let r = 0; r < runsToScore; r += 1) samples.push(...scoreRun(baseline, rules, r));
  return samples;
}

function scoreRun(baseline: ReturnType<typeof learnBaselines>['baselines'][number], rules: ReturnType<typeof loadResponseRules>, r: number): number[] {
  const history = emptyHistory();
  const armed: Record<string, boolean> = {};
  const samples: number[] = [];
  for (let i = 0; i < RUN_STEPS; i += 1) {
    const s = normalStep(r * 3 + i);
    const now = T0 + i * 1500;
    const started = performance.now();
    // What monitor-step.ts does per action: observe (before it runs), then afterRun.
    const features = featuresOfAction(s.tool, s.args, s.tool === 'sql.exec' ? { rowsChanged: 1, operation: 'update' } : undefined, {});
    const event = recordProposed(history, features, i, now);
    const reasons = scoreProposed(history, baseline, features, now);
    const fired = fireRules(rules, { history, baseline, features, score: scoreOf(reasons), reasons, now }, armed, new Set());
    const outcome = outcomeOfStep(s);
    recordOutcome(event, outcome);
    const extra = scoreOutcome(history, baseline, features, outcome, now, reasons);
    samples.push(performance.now() - started);
    if (fired.length > 0 || extra.length > 0) throw new Error(`normal step ${i} raised ${JSON.stringify(fired)} ${JSON.stringify(extra)}`);
  }
  return samples;
}

async function beginMonitoringPerTask(stateDir: string, runs: number): Promise<number[]> {
  const state = await openStateStore({ stateDir });
  try {
    const results: TaskResult[] = Array.from({ length: 20 }, (_, r) => ({ workflowId: `w-${r}`, runId: 'r', agent: 'bench-clerk', model: { id: 'm', version: '1' }, depth: 0, status: 'completed', steps: [normalStep(r), normalStep(r + 1)], children: [], final: null }));
    await createBaselineStore(state.db).put(learnBaselines(results, new Date().toISOString()).baselines, 'bench');
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

async function onTheServer(rogue: number, kills: number): Promise<{ detection: number[]; action: number[]; kill: number[] }> {
  installQuietRuntime();
  const stateDir = stateDirOf();
  const server = await ensureTemporalServer({ stateDir, log: (l) => console.error(`warden: ${l}`) });
  const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-bench-monitor-${Date.now()}`;
  const worker = await createWardenWorker({ connection: workerConnection, namespace: server.namespace, taskQueue, stateDir, cacheDir: join(stateDir, 'cache'), printAlert: () => undefined });
  const approvers = openApproverStore({ stateDir });
  const key = (await issueApproverKey(approvers, { name: `bench-${Date.now()}` })).keyFile;
  approvers.close();
  const workspace = mkdtempSync(join(tmpdir(), 'warden-bench-monitor-'));
  const tool = { name: 'tick', description: 'ticks', input: { type: 'object' }, source: 'const end = Date.now() + 100; while (Date.now() < end) {} return input.n;' };
  const task = (script: unknown[], policies: string[] = []) =>
    parseTask({ user: 'bench', intent: 'benchmark', agent: { name: 'bench-rogue', model: { driver: 'scripted', script } }, tools: { custom: [tool] }, grants: { tools: ['tick'] }, resources: { workspace }, limits: { maxSteps: 200 }, policies }, 'bench', process.cwd());
  const out = { detection: [] as number[], action: [] as number[], kill: [] as number[] };
  const work = (async () => {
    for (let i = 0; i < rogue; i += 1) {
      const loop = Array.from({ length: 8 }, () => ({ tool: 'tick', args: { n: 1 } }));
      const result = await followAgentTask(await startAgentTask(client, task([{ tool: 'tick', args: { n: 0 } }, ...loop, { final: 'x' }], ['block the task and roll it back when it makes the same call 4 times in a row']), { taskQueue }));
      const alert = result.alerts?.find((a) => a.response === 'remediate');
      if (result.status !== 'blocked' || alert?.detectionToBlockMs === undefined) throw new Error(`rogue task ended ${result.status}`);
      out.detection.push(alert.detectionToBlockMs);
      out.action.push(alert.actionToBlockMs ?? Number.NaN);
    }
    for (let i = 0; i < kills; i += 1) {
      const handle = await startAgentTask(client, task([...Array.from({ length: 100 }, (_, n) => ({ tool: 'tick', args: { n } })), { final: 'x' }]), { taskQueue });
      for (;;) {
        const state = await handle.query(taskStateQuery).catch(() => undefined);
        if (state !== undefined && state.steps.filter((s) => s.executed).length >= 2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const kill = await killTask(client, { workflowId: handle.workflowId, key, reason: 'bench' });
      if (kill.blockedAt === undefined) throw new Error(`kill ${kill.status}`);
      out.kill.push(Date.parse(kill.blockedAt) - Date.parse(kill.requestedAt));
      await followAgentTask(handle);
    }
  })();
  await worker.run(work);
  await work;
  await workerConnection.close();
  await connection.close();
  return out;
}

async function main(): Promise<void> {
  const rogue = Number(process.argv[2] ?? 20);
  const kills = Number(process.argv[3] ?? 10);
  scoringPerStep(3); // warm-up
  const perStep = scoringPerStep(30).map((ms) => ms * 1000);
  const sorted = [...perStep].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  console.log(`monitor scoring per step (pure, in-process, ${perStep.length} normal steps in runs of ${RUN_STEPS}, history up to 512): median ${at(50).toFixed(1)} µs, p99 ${at(99).toFixed(1)} µs, max ${sorted.at(-1)!.toFixed(1)} µs`);
  console.log(summarize('monitor begin per task (baseline + response rules, SQLite state store)', await beginMonitoringPerTask(mkdtempSync(join(tmpdir(), 'warden-bench-state-')), 50)));
  const server = await onTheServer(rogue, kills);
  console.log(summarize(`monitor detection to block (rule fired -> grant revoked), ${rogue} runaway loops`, server.detection));
  console.log(summarize('monitor anomalous action proposed -> grant revoked', server.action));
  console.log(summarize(`monitor warden kill sent -> grant revoked, ${kills} running tasks`, server.kill));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
