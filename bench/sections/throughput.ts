/**
 * `throughput`: tool calls per second with 1, 10 and 50 concurrent 10-step tasks on one worker,
 * guarded vs bare, alternating, with the peak resident memory of each worker (for the guarded one
 * including its sandbox host). Target: `throughput.ratio` (guarded / bare calls per second at
 * 50 concurrent tasks) at least 0.8.
 */
import { figure, single, type BenchContext, type BenchSection, type Figure } from '../bench-section';
import { summarize } from '../stats';
import { benchWorkers } from '../support/bench-workers';
import { runBareTask, runGuardedTask, samplePeakRss, temporalBench, treeCpuMs, type BenchWorker, type PeakRss } from '../support/temporal-bench';
import { benchWorkerRuntime, workerRuntimeNote } from '../support/worker-runtime';
import { STEPS_PER_TASK, workersWarm } from './step';
import { readdirSync } from 'node:fs';
import { readProcStat } from '../../process-stat';

/** CPU ms of each thread of `pid` (/proc/<pid>/task), keyed by thread id, with its name. */
function threadCpuMs(pid: number): Map<number, { comm: string; ms: number; startTime: string }> {
  const threads = new Map<number, { comm: string; ms: number; startTime: string }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    const stat = readProcStat(`${pid}/task/${tid}`);
    if (stat !== undefined) threads.set(Number(tid), { comm: stat.comm, ms: (stat.utime + stat.stime) * 10, startTime: stat.startTime });
  }
  return threads;
}

/**
 * The worker's CPU per call split by thread: the main thread (activities, the SDK's
 * receive/complete path), Node worker threads started after the process (the workflow thread),
 * and the rest (V8's GC and compiler helpers, libuv's pool, the SDK core's tokio threads).
 */
function threadSplit(pid: number, before: ReturnType<typeof threadCpuMs>, after: ReturnType<typeof threadCpuMs>, calls: number): string {
  const parts = new Map<string, number>();
  for (const [tid, t] of after) {
    const delta = (t.ms - (before.get(tid)?.ms ?? 0)) / calls;
    const key = tid === pid ? 'main' : `${t.comm}#${tid}`;
    parts.set(key, (parts.get(key) ?? 0) + delta);
  }
  return [...parts].filter(([, ms]) => ms >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, ms]) => `${k} ${ms.toFixed(2)}`).join(', ');
}

const CONCURRENCY = [1, 10, 50];

interface LoadRun {
  callsPerSecond: number;
  /** CPU per tool call, ms: the worker process, its children (the sandbox host), the Temporal server. */
  cpuPerCall: { worker: number; host: number; server: number };
  peakRss: PeakRss;
  taskLatencies: number[];
}

async function load(context: BenchContext, worker: BenchWorker, tasks: number): Promise<LoadRun> {
  const run = worker.kind === 'guarded' ? runGuardedTask : runBareTask;
  const { serverPid } = await temporalBench(context);
  const serverCpu = () => (serverPid === undefined ? 0 : ((c) => c.self + c.children)(treeCpuMs(serverPid)));
  const peak = samplePeakRss(worker);
  const cpuBefore = treeCpuMs(worker.pid);
  const threadsBefore = threadCpuMs(worker.pid);
  const serverBefore = serverCpu();
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: tasks }, () => run(context, worker, STEPS_PER_TASK)));
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = treeCpuMs(worker.pid);
  const calls = tasks * STEPS_PER_TASK;
  context.log(`throughput: ${worker.kind} ${tasks} tasks, worker CPU ms per call by thread: ${threadSplit(worker.pid, threadsBefore, threadCpuMs(worker.pid), calls)}`);
  return {
    callsPerSecond: calls / seconds,
    cpuPerCall: { worker: (cpuAfter.self - cpuBefore.self) / calls, host: (cpuAfter.children - cpuBefore.children) / calls, server: (serverCpu() - serverBefore) / calls },
    peakRss: peak(),
    taskLatencies: results.map((r) => r.wallMs),
  };
}

/** Mean CPU per call over runs, all processes. */
function cpuTotal(runs: LoadRun[]): number {
  return runs.reduce((ms, r) => ms + r.cpuPerCall.worker + r.cpuPerCall.host + r.cpuPerCall.server, 0) / runs.length;
}

function cpuPart(runs: LoadRun[], part: keyof LoadRun['cpuPerCall']): string {
  return (runs.reduce((ms, r) => ms + r.cpuPerCall[part], 0) / runs.length).toFixed(1);
}

export const throughputSection: BenchSection = {
  name: 'throughput',
  title: 'guarded vs bare tool calls per second at 1, 10 and 50 concurrent tasks on one worker',
  async run(context) {
    const { guarded, bare } = await benchWorkers(context);
    // One untimed task each first (JIT, caches, the sandbox host's first isolates), unless the
    // step section already ran its tasks on these same worker processes in this run.
    if (!workersWarm(context)) {
      await runGuardedTask(context, guarded, STEPS_PER_TASK);
      await runBareTask(context, bare, STEPS_PER_TASK);
    }
    const figures: Figure[] = [];
    for (const tasks of CONCURRENCY) {
      // Alternating runs where they are short (one task); one each above (10 and 50 tasks take minutes on a loaded machine).
      const rounds = !context.quick && tasks === 1 ? 3 : 1;
      context.log(`throughput: ${tasks} concurrent tasks`);
      const g: LoadRun[] = [];
      const b: LoadRun[] = [];
      for (let round = 0; round < rounds; round += 1) {
        if (round % 2 === 0) {
          g.push(await load(context, guarded, tasks));
          b.push(await load(context, bare, tasks));
        } else {
          b.push(await load(context, bare, tasks));
          g.push(await load(context, guarded, tasks));
        }
      }
      const rate = (runs: LoadRun[]) => summarize(runs.map((r) => r.callsPerSecond));
      const id = tasks === 50 ? 'throughput.ratio' : `throughput.${tasks}`;
      figures.push(
        figure(id, `guarded calls/s, ${tasks} concurrent task${tasks === 1 ? '' : 's'}`, rate(g), {
          unit: 'calls/s',
          baseline: { label: 'bare calls/s', summary: rate(b) },
        }),
        figure(`throughput.latency.${tasks}`, `task latency, ${tasks} concurrent`, summarize(g.flatMap((r) => r.taskLatencies)), {
          baseline: { label: 'bare task latency', summary: summarize(b.flatMap((r) => r.taskLatencies)) },
        }),
        figure(`throughput.cpu.${tasks}`, `CPU per tool call (worker + sandbox host + Temporal server), ${tasks} concurrent`, single(cpuTotal(g)), {
          baseline: { label: 'bare (worker + server)', summary: single(cpuTotal(b)) },
          note: `guarded: worker ${cpuPart(g, 'worker')}, sandbox host ${cpuPart(g, 'host')}, server ${cpuPart(g, 'server')} ms; bare: worker ${cpuPart(b, 'worker')}, server ${cpuPart(b, 'server')} ms per call`,
        }),
        figure(`throughput.rss.${tasks}`, `peak worker RSS incl. sandbox host, ${tasks} concurrent`, single(Math.max(...g.map((r) => r.peakRss.total))), {
          unit: 'MB',
          baseline: { label: 'bare worker RSS', summary: single(Math.max(...b.map((r) => r.peakRss.total))) },
          note: `worker ${Math.max(...g.map((r) => r.peakRss.worker)).toFixed(0)} MB, sandbox host ${Math.max(...g.map((r) => r.peakRss.children)).toFixed(0)} MB (peaks)`,
        }),
      );
    }
    return {
      figures,
      notes: [
        `${context.quick ? 'One run per level' : 'Three runs with one task, one run at 10 and 50 tasks'}, guarded and bare alternating; calls/s = tasks x ${STEPS_PER_TASK} tool calls / wall time from the first start to the last result; worker defaults (no tuning) on both sides.`,
        workerRuntimeNote(benchWorkerRuntime(context)),
      ],
    };
  },
};
