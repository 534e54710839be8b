/**
 * Cost of one agent step end to end on the embedded Temporal server: model turn activity, grant
 * check, tool activity in the sandbox, recorded in history. A scripted agent makes N tool calls;
 * the per-step figure is the workflow-side duration of each call plus the wall time per step.
 * Run: node --require tsx/cjs bench/task-step.bench.ts [steps]
 */
import { join } from 'node:path';
import { followAgentTask, startAgentTask } from '../client/start-agent-task';
import { parseTask } from '../task/load-task-file';
import { stateDirOf } from '../state-dir';
import { connectClient, connectWorkerConnection } from '../temporal/connect';
import { ensureTemporalServer } from '../temporal/embedded-server';
import { loadTemporalConfig } from '../temporal/temporal-config';
import { createWardenWorker, installQuietRuntime } from '../worker/create-warden-worker';
import { summarize } from './stats';

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 100);
  installQuietRuntime();
  const stateDir = stateDirOf();
  const server = await ensureTemporalServer({ stateDir, log: (l) => console.error(`warden: ${l}`) });
  const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-bench-${Date.now()}`;
  const worker = await createWardenWorker({ connection: workerConnection, namespace: server.namespace, taskQueue, stateDir, cacheDir: join(stateDir, 'cache') });
  const task = parseTask(
    {
      user: 'bench',
      intent: 'benchmark',
      agent: {
        name: 'bench',
        model: { driver: 'scripted', script: [...Array.from({ length: steps }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] },
      },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
      limits: { maxSteps: steps + 1 },
    },
    'bench',
    process.cwd(),
  );
  const started = performance.now();
  const following = startAgentTask(client, task, { taskQueue }).then((handle) => followAgentTask(handle));
  await worker.run(following);
  const result = await following;
  const wall = performance.now() - started;
  if (result.status !== 'completed' || result.steps.length !== steps) throw new Error(`benchmark task ended ${result.status}`);
  console.log(summarize('agent step on Temporal (tool activity incl. sandbox, workflow time)', result.steps.map((s) => s.durationMs)));
  console.log(`agent step on Temporal, wall time per step incl. model turn: ${(wall / steps).toFixed(2)} ms (${steps} steps in ${(wall / 1000).toFixed(2)} s)`);
  await workerConnection.close();
  await connection.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
