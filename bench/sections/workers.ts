/**
 * `workers` (issue 12; run by name, not by default: it needs PostgreSQL and takes minutes): tool
 * calls per second with 1, 2 and 4 `warden worker` processes (each with its own state folder)
 * sharing one PostgreSQL state database, next to 1 worker on the embedded SQLite default. Each
 * round runs concurrent scripted tasks of 10 sandboxed calls after one untimed warm-up task. On a
 * 2-core machine more workers share the same cores: the figure shows what the shared database
 * costs and that nothing serialises across workers, not scaling.
 * PostgreSQL: WARDEN_BENCH_DATABASE_URL, else .ci/postgres.sh (127.0.0.1:55432); skipped without.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { workflowBundle } from '../../worker/workflow-bundle';
import { figure, single, type BenchContext, type BenchSection, type Figure } from '../bench-section';
import { ADD_TOOL_SOURCE } from '../support/bare-activities';
import { benchDatabase } from '../support/bench-database';
import { temporalBench } from '../support/temporal-bench';

const CALLS = 10;

function startWorkers(context: BenchContext, count: number, options: { address: string; namespace: string; taskQueue: string; databaseUrl?: string; cacheDir: string }): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      const stateDir = mkdtempSync(join(context.tmpDir, `worker-${i}-`));
      symlinkSync(options.cacheDir, join(stateDir, 'cache'));
      const child = spawn(process.execPath, [join(context.root, 'bin', 'warden.js'), 'worker', '--task-queue', options.taskQueue], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TEMPORAL_ADDRESS: options.address,
          TEMPORAL_NAMESPACE: options.namespace,
          WARDEN_STATE_DIR: stateDir,
          WARDEN_WORKER_ID: `bench-${i}`,
          ...(options.databaseUrl === undefined ? {} : { WARDEN_DATABASE_URL: options.databaseUrl }),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.once('exit', () => rmSync(stateDir, { recursive: true, force: true }));
      return new Promise<ChildProcess>((resolve, reject) => {
        let log = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          log += chunk.toString();
          if (log.includes('worker polling')) resolve(child);
        });
        child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log.trim().split('\n').slice(-3).join(' | ')}`)));
      });
    }),
  );
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
}

function benchTask(root: string, calls: number) {
  return parseTask(
    {
      user: 'bench',
      intent: 'benchmark',
      agent: { name: 'bench', model: { driver: 'scripted', script: [...Array.from({ length: calls }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: ADD_TOOL_SOURCE }] },
      grants: { tools: ['add'] },
      limits: { maxSteps: calls + 1 },
      // Measured on the data flow, which a task opts in to (workflows/data-flow-choice.ts); the default original loop is slower per step.
      dataFlow: true,
    },
    'bench',
    root,
  );
}

export const workersSection: BenchSection = {
  name: 'workers',
  title: 'tool calls/s with 1, 2 and 4 workers on a shared PostgreSQL state database vs 1 worker on SQLite',
  runByDefault: false,
  async run(context) {
    const tasks = context.quick ? 4 : 8;
    const cacheDir = join(context.stateDir, 'cache');
    mkdirSync(cacheDir, { recursive: true });
    // Build the traced workflow bundle once, so worker start-up is not part of any round.
    await workflowBundle(cacheDir, { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
    const temporal = await temporalBench(context);
    const shared = await benchDatabase();
    const rounds: { label: string; workers: number; databaseUrl?: string }[] = [
      { label: '1 worker, SQLite state folder (embedded default)', workers: 1 },
      ...(shared === undefined ? [] : [1, 2, 4].map((n) => ({ label: `${n} worker${n === 1 ? '' : 's'}, shared PostgreSQL`, workers: n, databaseUrl: shared.url }))),
    ];
    const rates = new Map<string, number>();
    try {
      for (const round of rounds) {
        context.log(`workers: ${round.label}`);
        const taskQueue = `warden-bench-shared-${Date.now()}`;
        const workers = await startWorkers(context, round.workers, {
          address: temporal.address,
          namespace: temporal.namespace,
          taskQueue,
          cacheDir,
          ...(round.databaseUrl === undefined ? {} : { databaseUrl: round.databaseUrl }),
        });
        try {
          await followAgentTask(await startAgentTask(temporal.client, benchTask(context.root, 2), { taskQueue }));
          const started = performance.now();
          const results = await Promise.all(Array.from({ length: tasks }, async () => followAgentTask(await startAgentTask(temporal.client, benchTask(context.root, CALLS), { taskQueue }))));
          const seconds = (performance.now() - started) / 1000;
          const failed = results.filter((r) => r.status !== 'completed');
          if (failed.length > 0) throw new Error(`${failed.length} tasks ended ${failed.map((r) => r.status).join(', ')}`);
          rates.set(round.label, (tasks * CALLS) / seconds);
        } finally {
          await stopWorkers(workers);
        }
      }
    } finally {
      await shared?.drop();
    }
    const sqlite = rates.get(rounds[0]!.label)!;
    const figures: Figure[] = rounds.map((round, i) =>
      figure(`workers.${i === 0 ? 'sqlite' : `postgres.${round.workers}`}`, `calls/s, ${round.label}`, single(rates.get(round.label)!), {
        unit: 'calls/s',
        ...(i === 0 ? {} : { baseline: { label: '1 worker, SQLite', summary: single(sqlite) } }),
      }),
    );
    return {
      figures,
      notes: [
        `${tasks} concurrent tasks of ${CALLS} calls per round, after one untimed task; every worker is \`warden worker\` with its own state folder.`,
        ...(shared === undefined ? ['PostgreSQL rounds skipped: no PostgreSQL (set WARDEN_BENCH_DATABASE_URL, or let .ci/postgres.sh install Debian postgresql).'] : []),
      ],
    };
  },
};
