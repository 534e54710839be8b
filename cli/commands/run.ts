/**
 * `warden run <task-file>`: validate the task, make sure a Temporal server is there (embedded by
 * default), run a worker in-process unless pointed at a cluster, start the task and follow it.
 */
import { parseCommandArgs } from '../parse-command-args';
import { join } from 'node:path';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import { sharedDirOf } from '../../dataplane/shared-storage';
import { TaskFileError, WardenError } from '../../errors';
import { loadTaskFile, taskNotices } from '../../task/load-task-file';
import { wardenResourceIssues } from '../../permissions/warden-resources';
import { stateDirOf } from '../../state-dir';
import { realTaskPathsOf, wardenResourcesOf } from '../../worker/warden-resources';
import type { TaskResult } from '../../task/task-run';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { createWardenWorker, installQuietRuntime } from '../../worker/create-warden-worker';
import { EXIT } from '../exit-codes';
import { osSandboxProblem, taskNeedsOsSandbox } from '../../sandbox/os/sandboxed-process';
import { resolveTemporal } from '../temporal-client';
import { TASK_QUEUE } from '../../workflows/definitions';
import { formatStep, formatSummary } from '../format-summary';
import type { CliIo } from '../cli-io';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { telemetryClientInterceptors } from '../../telemetry/temporal-interceptors';

export const RUN_USAGE = `usage: warden run <task-file> [--json] [--workflow-id <id>] [--task-queue <name>] [--worker | --no-worker]

  --json              print one JSON object with the result on stdout
  --workflow-id <id>  workflow id to start the task under (default: warden-<agent>-<uuid>)
  --task-queue <name> task queue to start the task on (default: warden-agent-tasks)
  --worker            run a worker in this process even with TEMPORAL_ADDRESS set
  --no-worker         rely on standalone workers (default when TEMPORAL_ADDRESS is set)`;

export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('run', RUN_USAGE, argv, io, {
    json: { type: 'boolean', default: false },
    'workflow-id': { type: 'string' },
    'task-queue': { type: 'string' },
    worker: { type: 'boolean' },
    'no-worker': { type: 'boolean' },
  });
  if (typeof args === 'number') return args;
  const [file, ...extra] = args.positionals;
  if (file === undefined || extra.length > 0) {
    io.stderr(`warden run: expected exactly one task file\n${RUN_USAGE}\n`);
    return EXIT.usage;
  }

  let task;
  try {
    task = await loadTaskFile(file);
    // Refused here with exit 2 (and again by every worker, for tasks started another way).
    const stateDir = stateDirOf(io.env);
    const resources = wardenResourcesOf({ env: io.env, stateDir, cacheDirs: [join(stateDir, 'cache')] });
    const issues = wardenResourceIssues(task, realTaskPathsOf(task), resources);
    if (issues.length > 0) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issues);
  } catch (error) {
    if (error instanceof TaskFileError) {
      io.stderr(`warden run: ${error.code}: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }

  if (task.agent.model.driver === 'mcp-client') {
    io.stderr(`warden run: ${file}: an "mcp-client" agent is an MCP client that connects to Warden; run it with: warden mcp serve ${file}\n`);
    return EXIT.usage;
  }
  // Programs and stdio MCP servers run only in the OS sandbox: say so before anything starts.
  const sandboxProblem = taskNeedsOsSandbox(task) ? osSandboxProblem(io.env) : undefined;
  if (sandboxProblem !== undefined) {
    io.stderr(`warden run: ERR_OS_SANDBOX_UNAVAILABLE: ${file} uses proc.run or a stdio MCP server, but ${sandboxProblem}\n`);
    return EXIT.failed;
  }
  const json = args.values.json === true;
  const log = (line: string) => io.stderr(`warden: ${line}\n`);
  for (const notice of taskNotices(task)) log(`note: ${file}: ${notice.path}: ${notice.message}`);
  let telemetry: ReturnType<typeof setupProcessTelemetry>;
  try {
    const { config: effective, server, stateDir } = await resolveTemporal(io);
    const useWorker = args.values['no-worker'] === true ? false : args.values.worker === true || server.mode === 'embedded';
    // One trace per task, from this client's StartWorkflow down; spans go to the custody ledger.
    telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-cli', env: io.env });
    const { client, connection } = await connectClient(effective, telemetry === undefined ? {} : { interceptors: telemetryClientInterceptors(telemetry) });
    try {
      const taskQueue = args.values['task-queue'] ?? TASK_QUEUE;
      const handle = await startAgentTask(client, task, {
        taskQueue,
        ...(args.values['workflow-id'] === undefined ? {} : { workflowId: args.values['workflow-id'] }),
      });
      log(`started ${handle.workflowId} on ${server.address}${server.uiUrl ? ` (UI ${server.uiUrl}/namespaces/${server.namespace}/workflows/${encodeURIComponent(handle.workflowId)})` : ''}`);
      const interrupt = () => {
        log('cancelling the task (Ctrl-C again to leave it running)');
        process.off('SIGINT', interrupt);
        handle.cancel().catch(() => undefined);
      };
      process.on('SIGINT', interrupt);
      // Earlier runs' steps and claim-checked outputs come back from the shared blob store.
      const blobs = openBlobStore(sharedDirOf(io.env, stateDir));
      const follow = followAgentTask(handle, json ? undefined : ({ step, path }) => io.stderr(`${formatStep(step, path)}\n`), 250, { blobs });
      let result: TaskResult;
      try {
        if (useWorker) {
          installQuietRuntime();
          const workerConnection = await connectWorkerConnection(effective);
          try {
            const worker = await createWardenWorker({
              connection: workerConnection,
              namespace: effective.namespace,
              taskQueue,
              stateDir,
              cacheDir: join(stateDir, 'cache'),
              env: io.env,
              configEnv: io.env,
              ...(telemetry === undefined ? {} : { telemetry }),
            });
            await worker.run(follow);
          } finally {
            await workerConnection.close();
          }
        }
        result = await follow;
      } finally {
        process.off('SIGINT', interrupt);
      }
      io.stdout(json ? `${JSON.stringify(result, null, 2)}\n` : `${formatSummary(result)}\n`);
      return result.status === 'completed' ? EXIT.ok : EXIT.failed;
    } finally {
      await connection.close();
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden run: ${error.code}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  } finally {
    // Flushes OTLP and closes the ledger; the task-end checkpoint was taken when the task ended.
    await telemetry?.shutdown();
  }
}
