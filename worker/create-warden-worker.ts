/**
 * A Warden worker: the agent workflows, the activities, and the sandbox host process the
 * activities run tools in. The sandbox host is owned here and closed with the worker.
 */
import { inspect } from 'node:util';
import { NativeConnection, Runtime, Worker, DefaultLogger, type LogEntry } from '@temporalio/worker';
import { TASK_END_MESSAGE, TASK_FAILURE_TYPES } from '../workflows/task-close';
import { createActivities } from '../activities';
import { SandboxClient } from '../sandbox/sandbox-client';
import { AGENT_TASK_WORKFLOW, TASK_QUEUE } from '../workflows/definitions';
import { openKeystore } from '../identity/keystore';
import { openCredentialStores } from '../identity/credential-stores';
import { stateDirOf } from '../state-dir';
import type { Telemetry } from '../telemetry/setup-telemetry';
import { telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../telemetry/temporal-interceptors';
import { workflowBundle } from './workflow-bundle';

export interface WardenWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /** Where the workflow bundle is cached; no disk cache when omitted. */
  cacheDir?: string;
  /** State folder holding the credential authority's keys and stores (default: WARDEN_STATE_DIR or ./.warden). */
  stateDir?: string;
  /** Environment model drivers read API keys from. */
  env?: NodeJS.ProcessEnv;
  /**
   * Tracing (`setupTelemetry`): workflow, activity and child-workflow spans go to its custody
   * ledger. The caller owns it and shuts it down after the worker.
   */
  telemetry?: Telemetry;
}

export interface WardenWorker {
  worker: Worker;
  sandbox: SandboxClient;
  /** Runs until `until` settles (or forever), then shuts the worker and the sandbox host down. */
  run(until?: Promise<unknown>): Promise<void>;
}

let runtimeInstalled = false;

/**
 * Keeps the SDK's own logging to errors, for commands whose output is the task's steps (a failed
 * tool call is an outcome there, reported in the step, not a warning).
 * Must run before the first connection, which installs the SDK's default runtime.
 */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // A runtime was already installed by the host program; keep it.
  }
}

/** Whether a log entry is the SDK's "Workflow failed" for a task that closed with `ERR_TASK_<STATUS>` (task-close.ts). */
function isTaskEndLog(entry: LogEntry): boolean {
  if (entry.message !== 'Workflow failed' || entry.meta?.workflowType !== AGENT_TASK_WORKFLOW) return false;
  const error = entry.meta?.error as { name?: unknown; type?: unknown; message?: unknown } | undefined;
  if (typeof error?.type === 'string') return (Object.values(TASK_FAILURE_TYPES) as string[]).includes(error.type);
  // Copied out of the workflow thread, the failure is a plain Error: its message says what it was.
  return typeof error?.message === 'string' && TASK_END_MESSAGE.test(error.message);
}

/**
 * The runtime of a standalone worker: the SDK's logging at INFO, except that a task which ended
 * other than completed (denied, timed out, ... : an outcome, carried in its result) is one INFO
 * line, not the SDK's WARN "Workflow failed" with a stack trace. Call before the first connection.
 */
export function installWorkerRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const write = (entry: LogEntry) => {
    const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    process.stderr.write(`${time} [${entry.level}] ${entry.message}${entry.meta === undefined ? '' : ` ${inspect(entry.meta, { depth: 4, breakLength: Infinity })}`}\n`);
  };
  try {
    Runtime.install({
      logger: new DefaultLogger('INFO', (entry) => {
        if (!isTaskEndLog(entry)) return write(entry);
        const error = entry.meta?.error as { message?: string };
        write({ ...entry, level: 'INFO', message: `task ${String(entry.meta?.workflowId ?? '')} ended: ${error.message ?? ''}`, meta: undefined });
      }),
    });
  } catch {
    // A runtime was already installed by the host program; keep it.
  }
}

export async function createWardenWorker(options: WardenWorkerOptions): Promise<WardenWorker> {
  const stateDir = options.stateDir ?? stateDirOf();
  const keystore = await openKeystore({ stateDir });
  const stores = openCredentialStores({ stateDir });
  let sandbox: SandboxClient;
  try {
    sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  } catch (error) {
    stores.close();
    throw error;
  }
  try {
    const traced = options.telemetry === undefined ? undefined : telemetryWorkerOptions(options.telemetry);
    const worker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue: options.taskQueue ?? TASK_QUEUE,
      // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
      workflowBundle: await workflowBundle(options.cacheDir, traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }),
      ...(traced === undefined ? {} : { interceptors: traced.interceptors, sinks: traced.sinks }),
      activities: createActivities({ sandbox, stateDir, identity: { keystore, stores }, ...(options.env === undefined ? {} : { env: options.env }) }),
    });
    return {
      worker,
      sandbox,
      async run(until) {
        try {
          await (until === undefined ? worker.run() : worker.runUntil(until));
        } finally {
          await sandbox.close();
          stores.close();
        }
      },
    };
  } catch (error) {
    await sandbox.close();
    stores.close();
    throw error;
  }
}
