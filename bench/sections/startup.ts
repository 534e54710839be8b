/**
 * `startup`: loading the CLI (`warden --help`) vs starting Node itself; a worker process from
 * spawn to polling, guarded (`warden worker`'s setup: keys, ledger, workflow bundle from cache,
 * sandbox host) vs a bare Temporal worker; and `warden run` of a one-call task with the server
 * already up vs the same task started by an already-running client on an already-running worker.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { figure, type BenchSection } from '../bench-section';
import { summarize } from '../stats';
import { ADD_TOOL_SOURCE } from '../support/bare-activities';
import { benchWorkers } from '../support/bench-workers';
import { benchCliEnv, benchTaskQueue } from '../support/bench-task-queue';
import { runGuardedTask, startBenchWorker, temporalBench } from '../support/temporal-bench';
import { benchWorkerRuntime, workerRuntimeNote } from '../support/worker-runtime';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU ms (user + system) of the children this process has waited for (stat's cutime + cstime); null without /proc. */
function reapedChildrenCpuMs(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / USER_HZ;
  } catch {
    return null;
  }
}

/** CPU ms samples of the processes timed, by what was run (a figure's id). */
const cpuSamples = new Map<string, number[]>();

/**
 * Runs `node args` to its end: wall ms, spawn to exit. Its CPU ms (and its children's it waited
 * for; spawnSync blocks this process, so no other child is reaped meanwhile) go to `cpuSamples`
 * under `cpuId` when given.
 */
function timeProcess(args: string[], env: NodeJS.ProcessEnv, cpuId?: string): number {
  const cpuBefore = reapedChildrenCpuMs();
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  const elapsed = performance.now() - started;
  const cpuAfter = reapedChildrenCpuMs();
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
  if (cpuId !== undefined && cpuBefore !== null && cpuAfter !== null) cpuSamples.set(cpuId, [...(cpuSamples.get(cpuId) ?? []), cpuAfter - cpuBefore]);
  return elapsed;
}

/** The CPU figure of what was timed under `id`, when /proc gave its samples. */
function cpuFigure(id: string, label: string): ReturnType<typeof figure>[] {
  const samples = cpuSamples.get(id) ?? [];
  return samples.length === 0 ? [] : [figure(id, label, summarize(samples), { note: `code cache ${process.env.WARDEN_CODE_CACHE === 'off' ? 'off (WARDEN_CODE_CACHE=off)' : 'on'}` })];
}

/** `warden worker` on `taskQueue` (same state folder as the runs), resolved once it polls; kill() stops it. */
async function startStandaloneWorker(cli: string, taskQueue: string, env: NodeJS.ProcessEnv): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [cli, 'worker', '--task-queue', taskQueue], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(`worker polling ${taskQueue}`)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`warden worker exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export const startupSection: BenchSection = {
  name: 'startup',
  title: 'CLI load, worker start, and what `warden run` adds to a task',
  async run(context) {
    const runs = context.quick ? 3 : 5;
    cpuSamples.clear();
    const cli = join(context.root, 'bin', 'warden.js');
    const env = benchCliEnv(context);
    const help: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      help.push(timeProcess([cli, '--help'], env, 'startup.cli.cpu'));
      node.push(timeProcess(['-e', ''], env));
    }

    await temporalBench(context);
    const workerRuns = context.quick ? 1 : 2;
    const guardedStart: number[] = [];
    const bareStart: number[] = [];
    for (let i = 0; i < workerRuns; i += 1) {
      for (const kind of i % 2 === 0 ? (['guarded', 'bare'] as const) : (['bare', 'guarded'] as const)) {
        const worker = await startBenchWorker(context, kind);
        (kind === 'guarded' ? guardedStart : bareStart).push(worker.startMs);
        await worker.stop();
      }
    }

    // `warden run` on a one-call task (embedded server already up, so it runs its own worker), on the
    // run's own queue: never the default one a user's worker on a reused server may poll.
    const taskFile = join(context.tmpDir, 'one-call.json');
    writeFileSync(
      taskFile,
      JSON.stringify({
        user: 'bench@example.com',
        intent: 'benchmark: add numbers',
        agent: { name: 'bench', model: { driver: 'scripted', script: [{ tool: 'add', args: { a: 1, b: 2 } }, { final: 'done' }] } },
        tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: ADD_TOOL_SOURCE }] },
        grants: { tools: ['add'] },
        // The same task as the baseline's (`runGuardedTask`, temporal-bench.ts): on the data flow.
        dataFlow: true,
      }),
    );
    const { guarded } = await benchWorkers(context);
    const wardenRun: number[] = [];
    const inProcess: number[] = [];
    for (let i = 0; i < Math.min(runs, 3); i += 1) {
      wardenRun.push(timeProcess([cli, 'run', taskFile, '--json', '--task-queue', context.taskQueue], env, 'startup.run.cpu'));
      inProcess.push((await runGuardedTask(context, guarded, 1)).wallMs);
    }
    // `warden run` with a standalone `warden worker` on the same state folder already polling:
    // the run is a client only (cli/commands/run.ts, worker/standalone-worker.ts).
    const standaloneQueue = benchTaskQueue('standalone');
    const standalone = await startStandaloneWorker(cli, standaloneQueue, env);
    const clientRun: number[] = [];
    try {
      timeProcess([cli, 'run', taskFile, '--json', '--task-queue', standaloneQueue], env); // warms the worker
      for (let i = 0; i < Math.min(runs, 3); i += 1) clientRun.push(timeProcess([cli, 'run', taskFile, '--json', '--task-queue', standaloneQueue], env, 'startup.run.standalone.cpu'));
    } finally {
      await standalone.stop();
    }
    return {
      figures: [
        figure('startup.cli', '`warden --help`, spawn to exit', summarize(help), { baseline: { label: 'node -e ""', summary: summarize(node) } }),
        figure('startup.worker', 'guarded worker, spawn to polling', summarize(guardedStart), {
          baseline: { label: 'bare Temporal worker', summary: summarize(bareStart) },
        }),
        figure('startup.run', '`warden run` of a one-call task, spawn to exit', summarize(wardenRun), {
          baseline: { label: 'same task from a running client and worker', summary: summarize(inProcess) },
        }),
        figure('startup.run.standalone', '`warden run` of a one-call task with a `warden worker` on the same state folder, spawn to exit', summarize(clientRun), {
          baseline: { label: 'same task from a running client and worker', summary: summarize(inProcess) },
        }),
        ...cpuFigure('startup.cli.cpu', '`warden --help`, CPU (user + system)'),
        ...cpuFigure('startup.run.cpu', '`warden run` of a one-call task, CPU (user + system, its sandbox host included once waited for)'),
        ...cpuFigure('startup.run.standalone.cpu', '`warden run` with a standalone `warden worker`, CPU of the client process'),
      ],
      notes: [
        `${runs} CLI runs, ${Math.min(runs, 3)} runs of warden run (each way; one more warms the standalone worker) and ${workerRuns} worker starts per side; the Temporal server is already running; workflow bundles come from the cache.`,
        workerRuntimeNote(benchWorkerRuntime(context)),
        ownWorkerFloorNote(summarize(wardenRun).median, summarize(bareStart).median, summarize(inProcess).median),
      ],
    };
  },
};

/**
 * What `warden run` with its own worker adds beyond what no run that starts a worker can avoid: a
 * bare Temporal worker's start (spawn to polling) and the task itself, medians of this run (ms).
 * The target (`warden run` adding under 1 s to the task) sits below that floor wherever a
 * bare worker takes a second or more to start; a run on a standalone worker does not start one.
 */
export function ownWorkerFloorNote(runMs: number, bareWorkerStartMs: number, taskMs: number): string {
  const own = runMs - bareWorkerStartMs - taskMs;
  return `warden run (own worker) adds ${Math.round(runMs - taskMs)} ms to the task; a bare Temporal worker's start alone takes ${Math.round(bareWorkerStartMs)} ms here, so Warden's own share is ${Math.round(own)} ms (run ${Math.round(runMs)} − bare worker start − task ${Math.round(taskMs)}, medians); a run on a standalone worker starts none`;
}
