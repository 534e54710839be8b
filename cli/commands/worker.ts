/** `warden worker`: a standalone worker for a Temporal cluster (or the embedded server). */
import { parseCommandArgs, usageError } from '../parse-command-args';
import { WardenError } from '../../errors';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { createWardenWorkerFromConfig, installWorkerRuntime } from '../../worker/create-warden-worker';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { defaultTaskQueue } from '../default-task-queue';
import { resolveTemporal } from '../temporal-client';
import { standaloneWorkerIdentity } from '../../worker/standalone-worker';

export const WORKER_USAGE = `usage: warden worker [--task-queue <name>]   (default: WARDEN_TASK_QUEUE, else warden-agent-tasks)

Runs a Warden worker until SIGINT/SIGTERM. Connects to TEMPORAL_ADDRESS when set, otherwise
starts or reuses the embedded server. It polls as warden-worker/<pid>@<host>/state-<hash of the
state folder>: \`warden run\` on the same machine, state folder, server and task queue starts its
task on this worker instead of starting a worker of its own.`;

export async function workerCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('worker', WORKER_USAGE, argv, io, { 'task-queue': { type: 'string' } });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) return usageError('worker', WORKER_USAGE, io, `unexpected argument "${args.positionals[0]}"`);
  const { values } = args;
  const log = (line: string) => io.stderr(`warden: ${line}\n`);
  let telemetry: ReturnType<typeof setupProcessTelemetry>;
  try {
    installWorkerRuntime();
    const { config, server, stateDir } = await resolveTemporal(io);
    const taskQueue = values['task-queue'] ?? defaultTaskQueue(io.env);
    telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-worker', env: io.env });
    const worker = await createWardenWorkerFromConfig(config, { taskQueue, stateDir, identity: standaloneWorkerIdentity(stateDir), env: io.env, configEnv: io.env, ...(telemetry === undefined ? {} : { telemetry }) });
    const stop = () => worker.worker.shutdown();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log(`worker polling ${taskQueue} on ${server.address} (namespace ${server.namespace}); data plane ${worker.dataPlane.taskQueue}, shared folder ${worker.dataPlane.sharedDir}; Ctrl-C stops it`);
    try {
      await worker.run();
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden worker: ${error.code}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  } finally {
    await telemetry?.shutdown();
  }
}
