/**
 * Tool calls per second with 1, 2 and 4 `warden worker` processes (each with its own state folder)
 * sharing one PostgreSQL state database, on the embedded Temporal server; and 1 worker on the
 * embedded SQLite default for comparison. Each round runs TASKS concurrent scripted tasks of
 * CALLS sandboxed tool calls each, after one untimed warm-up task, and reports calls per second
 * over the round's wall time. On a 2-core machine more workers share the same cores: the figure
 * shows what the shared database costs and that nothing serialises across workers, not scaling.
 * PostgreSQL: WARDEN_BENCH_DATABASE_URL, else .ci/postgres.sh (127.0.0.1:55432).
 * Run: node --require tsx/cjs bench/shared-workers.bench.ts [tasks] [calls]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followAgentTask, startAgentTask } from '../client/start-agent-task';
import { parseTask } from '../task/load-task-file';
import { stateDirOf } from '../state-dir';
import { connectClient } from '../temporal/connect';
import { ensureTemporalServer } from '../temporal/embedded-server';
import { loadTemporalConfig } from '../temporal/temporal-config';
import { workflowBundle } from '../worker/workflow-bundle';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../telemetry/temporal-interceptors';
import { benchDatabase } from './bench-database';

const REPO = join(__dirname, '..');

function startWorkers(count: number, options: { address: string; namespace: string; taskQueue: string; databaseUrl?: string; cacheDir: string }): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      const stateDir = mkdtempSync(join(tmpdir(), `warden-bench-worker-${i}-`));
      symlinkSync(options.cacheDir, join(stateDir, 'cache'));
      const child = spawn(process.execPath, [join(REPO, 'bin', 'warden.js'), 'worker', '--task-queue', options.taskQueue], {
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
        child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
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

function benchTask(calls: number) {
  return parseTask(
    {
      user: 'bench',
      intent: 'benchmark',
      agent: { name: 'bench', model: { driver: 'scripted', script: [...Array.from({ length: calls }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
      limits: { maxSteps: calls + 1 },
    },
    'bench',
    REPO,
  );
}

async function main(): Promise<void> {
  const tasks = Number(process.argv[2] ?? 8);
  const calls = Number(process.argv[3] ?? 10);
  const stateDir = stateDirOf();
  const cacheDir = join(stateDir, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  // Build the traced workflow bundle once, so worker start-up is not part of any round.
  await workflowBundle(cacheDir, { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
  const server = await ensureTemporalServer({ stateDir, log: (l) => console.error(`warden: ${l}`) });
  const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
  const { client, connection } = await connectClient(config);
  const shared = await benchDatabase();
  const rounds: { label: string; workers: number; databaseUrl?: string }[] = [
    { label: '1 worker, SQLite state folder (embedded default)', workers: 1 },
    ...(shared === undefined
      ? []
      : [1, 2, 4].map((n) => ({ label: `${n} worker${n === 1 ? '' : 's'}, shared PostgreSQL`, workers: n, databaseUrl: shared.url }))),
  ];
  if (shared === undefined) console.log('shared workers: PostgreSQL rounds skipped (no PostgreSQL: set WARDEN_BENCH_DATABASE_URL or install Debian postgresql)');
  try {
    for (const round of rounds) {
      const taskQueue = `warden-bench-shared-${Date.now()}`;
      const workers = await startWorkers(round.workers, { address: server.address, namespace: server.namespace, taskQueue, cacheDir, ...(round.databaseUrl === undefined ? {} : { databaseUrl: round.databaseUrl }) });
      try {
        await followAgentTask(await startAgentTask(client, benchTask(2), { taskQueue }));
        const started = performance.now();
        const results = await Promise.all(Array.from({ length: tasks }, async () => followAgentTask(await startAgentTask(client, benchTask(calls), { taskQueue }))));
        const seconds = (performance.now() - started) / 1000;
        const failed = results.filter((r) => r.status !== 'completed');
        if (failed.length > 0) throw new Error(`${failed.length} tasks ended ${failed.map((r) => r.status).join(', ')}`);
        console.log(`tool calls per second, ${round.label}: ${((tasks * calls) / seconds).toFixed(1)}/s (${tasks} tasks x ${calls} calls in ${seconds.toFixed(1)} s)`);
      } finally {
        await stopWorkers(workers);
      }
    }
  } finally {
    await connection.close();
    await shared?.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
