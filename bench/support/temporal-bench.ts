/**
 * What the Temporal sections share: the embedded server of the bench's state folder (started or
 * reused, stopped after the run only if this run started it), one client, worker processes, and
 * the two tasks they compare (a guarded scripted task and the bare workflow).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startAgentTask } from '../../client/start-agent-task';
import { readProcStat } from '../../process-stat';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { ensureTemporalServer, stopEmbeddedServer } from '../../temporal/embedded-server';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import type { BenchContext } from '../bench-section';
import { LedgerReader } from '../../custody/ledger-reader';
import { ADD_TOOL_SOURCE } from './bare-activities';
import type { BareTaskResult } from './bare-workflow';
import type { WorkerReady } from './bench-worker';
import { isoTimeMs, type SpanTimes } from './step-phases';
import { benchWorkerRuntime, workerExecArgv, type WorkerRuntime } from './worker-runtime';

export interface TemporalBench {
  address: string;
  namespace: string;
  client: Client;
  /** The embedded server's process, when it is one (for its CPU time). */
  serverPid?: number;
}

/** The shared server and client, started on first use and closed when the run ends. */
export async function temporalBench(context: BenchContext): Promise<TemporalBench> {
  const existing = context.shared.get('temporal') as Promise<TemporalBench> | undefined;
  if (existing !== undefined) return existing;
  const starting = (async () => {
    const server = await ensureTemporalServer({ stateDir: context.stateDir, log: (line) => context.log(`temporal: ${line}`) });
    const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
    const { client, connection } = await connectClient(config);
    context.onClose(async () => {
      await connection.close();
      if (server.started) await stopEmbeddedServer(context.stateDir);
    });
    return { address: server.address, namespace: server.namespace, client, ...(server.pid === undefined ? {} : { serverPid: server.pid }) };
  })();
  context.shared.set('temporal', starting);
  return starting;
}

export type WorkerKind = 'guarded' | 'bare';

export interface BenchWorker {
  kind: WorkerKind;
  taskQueue: string;
  pid: number;
  /** How the process runs (compiled build or the sources through tsx: worker-runtime.ts). */
  runtime: WorkerRuntime['mode'];
  /** What the process said of itself once polling (its Node arguments, tsx, where Warden came from). */
  ready: WorkerReady;
  /** Milliseconds from spawning the process to the worker polling. */
  startMs: number;
  /** Resident memory of the worker process and of its children (the sandbox host), in MB. */
  rssMb(): { worker: number; children: number };
  stop(): Promise<void>;
}

/**
 * Starts a worker process of `kind` on a task queue of its own and waits until it polls. It runs
 * as the run's `benchWorkerRuntime` says: compiled (build/, no tsx) or the sources through tsx.
 */
export async function startBenchWorker(context: BenchContext, kind: WorkerKind): Promise<BenchWorker> {
  const temporal = await temporalBench(context);
  const runtime = benchWorkerRuntime(context);
  const taskQueue = `warden-bench-${kind}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const started = performance.now();
  // WARDEN_BENCH_CPU_PROF=<dir>: each worker writes a V8 CPU profile there when it stops (node's
  // --cpu-prof, which NODE_OPTIONS may not carry), to see where a guarded step's worker time goes.
  const profileDir = process.env.WARDEN_BENCH_CPU_PROF;
  // One folder per kind, node's own file names: a fixed --cpu-prof-name would have the workflow
  // threads' profiles (written by every worker thread) overwrite the main thread's.
  const profile = profileDir === undefined || profileDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, kind)}`];
  const child = spawn(
    process.execPath,
    [
      ...profile,
      ...workerExecArgv(runtime, context.root),
      runtime.entry,
      kind,
      temporal.address,
      temporal.namespace,
      taskQueue,
      context.stateDir,
      runtime.wardenModules,
      join(context.root, 'bench', 'support', 'bare-workflow.ts'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, WARDEN_STATE_DIR: context.stateDir } },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<WorkerReady>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as WorkerReady);
      } catch {
        reject(new Error(`the ${kind} bench worker's first line is not its ready line: ${line.slice(0, 200)}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} bench worker exited (code ${code}) before it polled`)));
  });
  const startMs = performance.now() - started;
  const worker: BenchWorker = {
    kind,
    taskQueue,
    pid: child.pid!,
    runtime: runtime.mode,
    ready,
    startMs,
    rssMb: () => treeRssMb(child.pid!),
    async stop() {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  context.onClose(() => worker.stop());
  return worker;
}

/** Parent pid -> child pids of every process, from /proc (empty where /proc is not readable). */
export function processTree(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readProcStat(entry);
      // undefined: the process ended while we looked
      if (stat === undefined) continue;
      const list = children.get(stat.ppid) ?? [];
      list.push(Number(entry));
      children.set(stat.ppid, list);
    }
  } catch {
    // no /proc
  }
  return children;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU time (user + system) of a process and of its live descendants, in ms. */
export function treeCpuMs(pid: number): { self: number; children: number } {
  const tree = processTree();
  const cpu = (p: number): number => {
    const stat = readProcStat(p);
    return stat === undefined ? 0 : ((stat.utime + stat.stime) * 1000) / USER_HZ;
  };
  const descendants = (p: number): number => (tree.get(p) ?? []).reduce((ms, child) => ms + cpu(child) + descendants(child), 0);
  return { self: cpu(pid), children: descendants(pid) };
}

/** RSS of a process and of its descendants, from /proc, in MB (0 where /proc is not readable). */
export function treeRssMb(pid: number): { worker: number; children: number } {
  const children = processTree();
  const rssKb = (p: number): number => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0; // gone
    }
  };
  const descendants = (p: number): number => (children.get(p) ?? []).reduce((kb, child) => kb + rssKb(child) + descendants(child), 0);
  return { worker: rssKb(pid) / 1024, children: descendants(pid) / 1024 };
}

export interface PeakRss {
  /** Peak of worker + children, MB. */
  total: number;
  worker: number;
  children: number;
}

/** Samples `worker`'s RSS every 200 ms until the returned function is called; it gives the peaks. */
export function samplePeakRss(worker: BenchWorker): () => PeakRss {
  const peak: PeakRss = { total: 0, worker: 0, children: 0 };
  const sample = () => {
    const now = worker.rssMb();
    peak.total = Math.max(peak.total, now.worker + now.children);
    peak.worker = Math.max(peak.worker, now.worker);
    peak.children = Math.max(peak.children, now.children);
  };
  sample();
  const timer = setInterval(sample, 200);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

export interface TaskRun {
  workflowId: string;
  /** Milliseconds from the start request to the result, at the client. */
  wallMs: number;
  /** Cycle of each step (time from one tool step's start to the next), in ms of workflow time. */
  stepCycles: number[];
  toolCalls: number;
}

/**
 * How the guarded task's calls reach the worker: `local` is the task as written (`add` is pure and
 * short, so on the data flow its calls run as local activities, workflows/tool-step.ts
 * `runsLocally`); `queued` gives the task a per-call limit over LOCAL_CALL_LIMIT_MS (10 s), so every
 * call is an activity on the data plane's queue, as a call of a tool with capabilities is.
 */
export type GuardedPath = 'local' | 'queued';

/** A scripted Warden task making `steps` calls of the trivial `add` tool, then answering. */
function guardedTask(steps: number, stateDir: string, path: GuardedPath) {
  return parseTask(
    {
      user: 'bench@example.com',
      intent: 'benchmark: add numbers',
      agent: {
        name: 'bench',
        model: { driver: 'scripted', script: [...Array.from({ length: steps }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] },
      },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: ADD_TOOL_SOURCE }] },
      grants: { tools: ['add'] },
      // Far above any run's length: at load 19 the 50 concurrent tasks of `throughput` took over
      // 10 minutes, and a deadline that fires fails the section instead of measuring it slow.
      limits: { maxSteps: steps + 1, deadline: '2h', ...(path === 'queued' ? { toolTimeout: '10s' } : {}) },
      // Measured on the data flow, which a task opts in to (workflows/data-flow-choice.ts); the default original loop is slower per step.
      dataFlow: true,
    },
    'bench',
    stateDir,
  );
}

function cycles(startedAt: number[]): number[] {
  return startedAt.slice(1).map((t, i) => t - (startedAt[i] as number));
}

/** Runs one guarded task of `steps` tool calls on `worker` and checks it completed. */
export async function runGuardedTask(context: BenchContext, worker: BenchWorker, steps: number, path: GuardedPath = 'local'): Promise<TaskRun> {
  const { client } = await temporalBench(context);
  const started = performance.now();
  const handle = await startAgentTask(client, guardedTask(steps, context.stateDir, path), { taskQueue: worker.taskQueue });
  const result = (await handle.result()) as TaskResult;
  const wallMs = performance.now() - started;
  if (result.status !== 'completed' || result.steps.length !== steps) throw new Error(`a guarded bench task ended ${result.status} after ${result.steps.length} steps`);
  const wrong = result.steps.findIndex((s, i) => s.output !== i + 1);
  if (wrong !== -1) {
    // Say which step and why: a call that failed (a timeout at high load) leaves no output, and the scripted model goes on regardless.
    const step = result.steps[wrong]!;
    throw new Error(`a guarded bench task (${handle.workflowId}) returned a wrong output at step ${wrong}: ${JSON.stringify(step.output)} (expected ${wrong + 1})${step.error === undefined ? '' : `, error ${step.error.code}: ${step.error.message}`}`);
  }
  return { workflowId: handle.workflowId, wallMs, stepCycles: cycles(toolStartsOf(context, handle.workflowId, steps)), toolCalls: steps };
}

/**
 * When each of the task's `steps` tool calls started (ms since the epoch, the worker's clock):
 * its `execute_tool` custody span that completed (`warden.outcome` ok), in order. The steps'
 * `startedAt` is workflow time, which stands still while local activities run in one workflow
 * task: the bare side's cycle is read on the same kind of clock (bare-activities.ts).
 */
function toolStartsOf(context: BenchContext, workflowId: string, steps: number): number[] {
  const ledger = LedgerReader.open({ stateDir: context.stateDir });
  try {
    const starts = ledger
      .records(workflowId)
      .flatMap((r) => (r.kind === 'span' ? [r.body as unknown as SpanTimes & { attributes: Record<string, unknown> }] : []))
      .filter((s) => s.name.startsWith('execute_tool ') && s.attributes['warden.outcome'] === 'ok')
      .map((s) => isoTimeMs(s.start))
      .sort((a, b) => a - b);
    if (starts.length !== steps) throw new Error(`a guarded bench task (${workflowId}) has ${starts.length} completed execute_tool spans in the bench ledger, not ${steps}`);
    return starts;
  } finally {
    ledger.close();
  }
}

export interface HistoryShape {
  events: number;
  workflowTasks: number;
  activityTasks: number;
  localActivityMarkers: number;
  /** `patched()` markers (once per run, whatever the steps). */
  patchMarkers: number;
  timers: number;
  bytes: number;
}

/** What a finished workflow's history holds: events, workflow and activity tasks, markers, timers, size. */
export async function historyShape(context: BenchContext, workflowId: string): Promise<HistoryShape> {
  const { client } = await temporalBench(context);
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const count = (key: string) => events.filter((e) => (e as Record<string, unknown>)[key] != null).length;
  return {
    events: events.length,
    workflowTasks: count('workflowTaskCompletedEventAttributes'),
    activityTasks: count('activityTaskScheduledEventAttributes'),
    // Markers are local activities' results and patch() decisions (`core_patch`, once per run): counted apart.
    localActivityMarkers: events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length,
    patchMarkers: events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch').length,
    timers: count('timerStartedEventAttributes'),
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
  };
}

/** Runs one bare task of `steps` tool calls on `worker`. */
export async function runBareTask(context: BenchContext, worker: BenchWorker, steps: number): Promise<TaskRun> {
  const { client } = await temporalBench(context);
  const started = performance.now();
  const handle = await client.workflow.start('bareAgentTask', {
    taskQueue: worker.taskQueue,
    workflowId: `warden-bench-bare-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`,
    args: [steps],
  });
  const result = (await handle.result()) as BareTaskResult;
  const wallMs = performance.now() - started;
  if (result.outputs.length !== steps || result.outputs.some((o, i) => o !== i + 1)) throw new Error('a bare bench task returned wrong outputs');
  return { workflowId: handle.workflowId, wallMs, stepCycles: cycles(result.startedAt), toolCalls: steps };
}
