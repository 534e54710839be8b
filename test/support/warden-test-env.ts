/**
 * A real Warden worker on the test Temporal server, on a task queue of its own, plus a client.
 * Each test file gets one; workflows it ran are remembered so their histories can be replayed.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import type { Task } from '../../task/task-schema';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import type { Telemetry } from '../../telemetry/setup-telemetry';
import { telemetryClientInterceptors } from '../../telemetry/temporal-interceptors';
import { createWardenWorker, installQuietRuntime, type WardenWorker, type WardenWorkerOptions } from '../../worker/create-warden-worker';
import { testTemporalAddress } from './temporal';

export const REPO_ROOT = join(__dirname, '..', '..');
/**
 * The state folder of this test process: one per vitest worker (`VITEST_POOL_ID`), since test
 * files run in parallel and each file's ledger, keys and records must not see another file's
 * writes mid-test. `test/support/test-file-setup.ts` makes it, with the run's Temporal server
 * record and workflow-bundle cache shared (`temporal`, `cache` link to `.warden-test/`).
 */
export const TEST_STATE_DIR = testStateDirOf(process.env.VITEST_POOL_ID);

/** `.warden-test/pool-<id>` for the vitest worker `poolId` (1 outside vitest's pool). */
export function testStateDirOf(poolId: string | undefined): string {
  return join(REPO_ROOT, '.warden-test', `pool-${poolId ?? '1'}`);
}

export interface WardenTestEnv {
  client: Client;
  taskQueue: string;
  worker: WardenWorker;
  /** Tracing into the custody ledger of TEST_STATE_DIR (undefined with WARDEN_TELEMETRY=0). */
  telemetry: Telemetry | undefined;
  /** Every workflow id started through `runTask`. */
  workflowIds: string[];
  /** Validates a task document (paths relative to `baseDir`), runs it to its end, returns the result. */
  runTask(document: unknown, options?: { baseDir?: string; workflowId?: string }): Promise<TaskResult>;
  start(task: Task, workflowId?: string): ReturnType<typeof startAgentTask>;
  close(): Promise<void>;
}

/** Worker settings a test file may change (`configEnv`: WARDEN_ALERT_WEBHOOK, ...; `printAlert`: default stdout). */
export type WardenTestEnvOptions = Pick<WardenWorkerOptions, 'mcpPackagesDir' | 'sandboxReadOnlyPaths' | 'configEnv' | 'printAlert' | 'activityInterceptors' | 'sandboxHost' | 'workflowThread'>;

export async function startWardenTestEnv(env: NodeJS.ProcessEnv = process.env, workerOptions: WardenTestEnvOptions = {}): Promise<WardenTestEnv> {
  installQuietRuntime();
  const { address, namespace } = testTemporalAddress();
  const config = { ...loadTemporalConfig({}), address, namespace };
  // As `warden run` does: every task these tests run is traced into the test custody ledger.
  const telemetry = setupProcessTelemetry({ stateDir: TEST_STATE_DIR, serviceName: 'warden-worker', env });
  const { client, connection }: { client: Client; connection: Connection } = await connectClient(
    config,
    telemetry === undefined ? {} : { interceptors: telemetryClientInterceptors(telemetry) },
  );
  const workerConnection: NativeConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-test-${randomUUID()}`;
  const worker = await createWardenWorker({
    connection: workerConnection,
    namespace,
    taskQueue,
    stateDir: TEST_STATE_DIR,
    cacheDir: join(TEST_STATE_DIR, 'cache'),
    env,
    ...workerOptions,
    ...(telemetry === undefined ? {} : { telemetry }),
  });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const running = worker.run(stopped);
  const workflowIds: string[] = [];

  const start = async (task: Task, workflowId?: string) => {
    const handle = await startAgentTask(client, task, { taskQueue, workflowId: workflowId ?? `test-${task.agent.name}-${randomUUID()}` });
    workflowIds.push(handle.workflowId);
    return handle;
  };

  return {
    client,
    taskQueue,
    worker,
    telemetry,
    workflowIds,
    start,
    async runTask(document, options = {}) {
      const task = parseTask(document, 'test-task.yaml', options.baseDir ?? REPO_ROOT);
      return followAgentTask(await start(task, options.workflowId));
    },
    async close() {
      stop();
      await running;
      await workerConnection.close();
      await connection.close();
      await telemetry?.shutdown();
    },
  };
}
