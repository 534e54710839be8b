/**
 * `step` and `history` benchmarks of the agent workflow on the embedded Temporal server.
 *
 * - step: a 10-step guarded task (scripted model, grant and policy checks, sandboxed tool, custody)
 *   against a bare Temporal workflow running the same trivial activity on the same server,
 *   interleaved; `step.ratio` = guarded / bare median wall time per step.
 * - history: history bytes (protobuf, summed over every run of a continued-as-new chain) and
 *   wall time per step at 10, 100 and 1,000 steps; flat per step is the target (issue 12).
 *
 * Run: node --require tsx/cjs bench/step-history.bench.ts [--rounds N] [--sizes 10,100,1000] [--json]
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { followAgentTask, startAgentTask } from '../client/start-agent-task';
import { stateDirOf } from '../state-dir';
import { parseTask } from '../task/load-task-file';
import type { Task } from '../task/task-schema';
import { connectClient, connectWorkerConnection } from '../temporal/connect';
import { ensureTemporalServer } from '../temporal/embedded-server';
import { loadTemporalConfig } from '../temporal/temporal-config';
import { createWardenWorker, installQuietRuntime } from '../worker/create-warden-worker';
import { percentile } from './stats';

const { History } = temporal.api.history.v1;

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

function addTask(steps: number): Task {
  return parseTask(
    {
      user: 'bench',
      intent: 'benchmark',
      agent: {
        name: 'bench',
        model: { driver: 'scripted', script: [...Array.from({ length: steps }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] },
      },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
      limits: { maxSteps: steps + 1, deadline: '1h' },
    },
    'bench',
    process.cwd(),
  );
}

/** Every run of a workflow id, oldest first, following continue-as-new. */
export async function historiesOfChain(client: Client, workflowId: string, firstRunId: string): Promise<temporal.api.history.v1.IHistory[]> {
  const out: temporal.api.history.v1.IHistory[] = [];
  let runId: string | undefined = firstRunId;
  while (runId !== undefined) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    out.push(history);
    const last = history.events?.at(-1);
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return out;
}

function historyStats(histories: temporal.api.history.v1.IHistory[]): { bytes: number; events: number; runs: number } {
  let bytes = 0;
  let events = 0;
  for (const h of histories) {
    bytes += History.encode(History.fromObject(h)).finish().length;
    events += h.events?.length ?? 0;
  }
  return { bytes, events, runs: histories.length };
}

async function main(): Promise<void> {
  const rounds = Number(option('rounds', '15'));
  const sizes = option('sizes', '10,100,1000').split(',').map(Number);
  const json = process.argv.includes('--json');
  installQuietRuntime();
  const stateDir = stateDirOf();
  const server = await ensureTemporalServer({ stateDir, log: (l) => console.error(`warden: ${l}`) });
  const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const stamp = Date.now();
  const guardedQueue = `warden-bench-guarded-${stamp}`;
  const bareQueue = `warden-bench-bare-${stamp}`;
  const warden = await createWardenWorker({ connection: workerConnection, namespace: server.namespace, taskQueue: guardedQueue, stateDir, cacheDir: join(stateDir, 'cache') });
  const bare = await Worker.create({
    connection: workerConnection,
    namespace: server.namespace,
    taskQueue: bareQueue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows/bare-steps'), logger: silent }),
    activities: { add: async ({ a, b }: { a: number; b: number }) => a + b },
  });
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const running = Promise.all([warden.run(stopped), bare.runUntil(stopped)]);

  const guardedRun = async (steps: number) => {
    const task = addTask(steps);
    const began = performance.now();
    const handle = await startAgentTask(client, task, { taskQueue: guardedQueue });
    const result = await followAgentTask(handle);
    const wall = performance.now() - began;
    if (result.status !== 'completed' || result.steps.length !== steps) throw new Error(`guarded task ended ${result.status}: ${result.reason ?? ''}`);
    return { wall, handle };
  };
  const bareRun = async (steps: number) => {
    const began = performance.now();
    const handle = await client.workflow.start('bareSteps', { taskQueue: bareQueue, workflowId: `bench-bare-${stamp}-${Math.random()}`, args: [steps] });
    await handle.result();
    return { wall: performance.now() - began, handle };
  };

  try {
    // step: interleaved 10-step runs after a warm-up of each.
    await guardedRun(10);
    await bareRun(10);
    const guardedPerStep: number[] = [];
    const barePerStep: number[] = [];
    for (let r = 0; r < rounds; r += 1) {
      guardedPerStep.push((await guardedRun(10)).wall / 10);
      barePerStep.push((await bareRun(10)).wall / 10);
    }
    const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
    const g = sorted(guardedPerStep);
    const b = sorted(barePerStep);
    const step = {
      guarded: { median: percentile(g, 50), p99: percentile(g, 99) },
      bare: { median: percentile(b, 50), p99: percentile(b, 99) },
      ratio: percentile(g, 50) / percentile(b, 50),
      ratioP99: percentile(g, 99) / percentile(b, 99),
    };

    // history: bytes and wall time per step at each size.
    const history: { steps: number; bytes: number; bytesPerStep: number; events: number; runs: number; wallMsPerStep: number; bareBytesPerStep: number }[] = [];
    for (const steps of sizes) {
      const { wall, handle } = await guardedRun(steps);
      const stats = historyStats(await historiesOfChain(client, handle.workflowId, handle.firstExecutionRunId));
      const bareDone = await bareRun(steps);
      const bareStats = historyStats([await bareDone.handle.fetchHistory()]);
      history.push({ steps, ...stats, bytesPerStep: stats.bytes / steps, wallMsPerStep: wall / steps, bareBytesPerStep: bareStats.bytes / steps });
    }

    const report = { step, history };
    if (json) console.log(JSON.stringify(report));
    else {
      const ms = (v: number) => `${v.toFixed(1)} ms`;
      console.log(`step (10-step task, ${rounds} interleaved rounds, wall time per step):`);
      console.log(`  guarded median ${ms(step.guarded.median)} p99 ${ms(step.guarded.p99)} | bare median ${ms(step.bare.median)} p99 ${ms(step.bare.p99)} | ratio ${step.ratio.toFixed(2)} (p99 ${step.ratioP99.toFixed(2)})`);
      console.log('history per step (guarded task; bytes summed over every run of the chain):');
      for (const h of history) {
        console.log(
          `  ${String(h.steps).padStart(5)} steps: ${Math.round(h.bytesPerStep)} B/step (${h.bytes} B, ${h.events} events, ${h.runs} run${h.runs === 1 ? '' : 's'}), ${ms(h.wallMsPerStep)}/step; bare ${Math.round(h.bareBytesPerStep)} B/step`,
        );
      }
    }
  } finally {
    stop();
    await running;
    await workerConnection.close();
    await connection.close();
  }
}

const noop = () => undefined;
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
