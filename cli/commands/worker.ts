/** `warden worker`: a standalone worker for a Temporal cluster (or the embedded server). */
import { parseCommandArgs, usageError } from '../parse-command-args';
import { WardenError } from '../../errors';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { createWardenWorkerFromConfig, installWorkerRuntime } from '../../worker/create-warden-worker';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { taskQueueOf } from '../default-task-queue';
import { checkWorkerId } from '../../dataplane/shared-storage';
import { stateDirOf } from '../../state-dir';
import { resolveTemporal } from '../temporal-client';
import { processStartTime, standaloneWorkerIdentity, writeStandaloneWorkerRecord, type StandaloneWorkerRegistration } from '../../worker/standalone-worker';
import { terminalLine, terminalLines } from '../../terminal-text';
import { checkSigningKeyFile } from '../../identity/credential-authority';

export const WORKER_USAGE = `usage: warden worker [--task-queue <name>]   (default: WARDEN_TASK_QUEUE, else warden-agent-tasks)

Runs a Warden worker until SIGINT/SIGTERM. Connects to TEMPORAL_ADDRESS when set, otherwise
starts or reuses the embedded server. It records itself in <state folder>/standalone-workers/
(pid, process start time, a random nonce; mode 0600; kept 2 minutes after it stops, while the
server still lists it, so runs then do not name it as a stranger) and polls as
warden-worker/<pid>@<host>/state-<hash of the state folder>/<nonce>: \`warden run\` of the same
user on the same machine, state folder, server and task queue starts its task on this worker
instead of starting a worker of its own, once the record vouches for it.`;

export async function workerCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('worker', WORKER_USAGE, argv, io, { 'task-queue': { type: 'string' } });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) return usageError('worker', WORKER_USAGE, io, `unexpected argument "${args.positionals[0]}"`);
  const { values } = args;
  // Naming rules (dataplane/worker-naming.ts), before anything starts: exit 2.
  let taskQueue: string;
  try {
    taskQueue = taskQueueOf(values['task-queue'], io.env);
    checkWorkerId(stateDirOf(io.env), io.env);
  } catch (error) {
    if (error instanceof WardenError) return usageError('worker', WORKER_USAGE, io, `${error.code}: ${terminalLines(error.message)}`);
    throw error;
  }
  // One line each: a line may quote text others wrote (a poller's identity, a server's or a tool's error).
  const log = (line: string) => io.stderr(`warden: ${terminalLine(line)}\n`);
  let telemetry: ReturnType<typeof setupProcessTelemetry>;
  let record: StandaloneWorkerRegistration | undefined;
  try {
    // Before the embedded server starts or a cluster is dialled: a bad key file is the one thing to fix.
    await checkSigningKeyFile(io.env);
    installWorkerRuntime();
    const { config, server, stateDir } = await resolveTemporal(io);
    telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-worker', env: io.env });
    // The record `warden run` checks before it trusts this worker's identity (worker/standalone-worker.ts).
    // Without procfs (not Linux) no record can pin the process's start time: the worker runs, and
    // `warden run` starts its own worker rather than trust one it cannot check.
    const procfs = processStartTime(process.pid) !== undefined;
    if (!procfs) log('note: /proc is not readable here, so this worker keeps no record and `warden run` will not reuse it (it starts a worker of its own)');
    if (procfs) try {
      record = writeStandaloneWorkerRecord(stateDir);
    } catch (error) {
      const message = (error as Error).message;
      throw new WardenError('ERR_CONFIG_INVALID', message.startsWith('cannot record') ? message : `cannot record the standalone worker in ${stateDir}/standalone-workers: ${message}`, { cause: error });
    }
    // Said once the Temporal workers exist and poll, not before: their creation may still fail.
    const onPolling = () => log(`worker polling ${taskQueue} on ${server.address} (namespace ${server.namespace}); data plane ${worker.dataPlane.taskQueue}, shared folder ${worker.dataPlane.sharedDir}; Ctrl-C stops it`);
    const worker = await createWardenWorkerFromConfig(config, { taskQueue, stateDir, ...(record === undefined ? {} : { identity: standaloneWorkerIdentity(stateDir, record.nonce) }), env: io.env, configEnv: io.env, onPolling, ...(telemetry === undefined ? {} : { telemetry }) });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await worker.run(stopped);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden worker: ${error.code}: ${terminalLines(error.message)}\n`);
      // A configuration this worker cannot run with (its id held by a live worker, a bad name, a namespace the server does not have): exit 2.
      return exitCodeOfError(error, error.code === 'ERR_WORKER_ID_IN_USE' || error.code === 'ERR_CONFIG_INVALID' ? EXIT.usage : EXIT.failed);
    }
    throw error;
  } finally {
    // Kept, marked ended: the server lists this worker ~90 s more, and runs must not take it for a forger.
    record?.ended();
    await telemetry?.shutdown();
  }
}
