/**
 * A Warden worker: the agent workflows, the activities, and the sandbox host process the
 * activities run tools in. The sandbox host is owned here and closed with the worker.
 */
import { NativeConnection, Runtime, Worker, DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../activities';
import { SandboxClient } from '../sandbox/sandbox-client';
import { TASK_QUEUE } from '../workflows/definitions';
import { openKeystore } from '../identity/keystore';
import { openCredentialStores } from '../identity/credential-stores';
import { stateDirOf } from '../state-dir';
import type { Telemetry } from '../telemetry/setup-telemetry';
import { telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../telemetry/temporal-interceptors';
import { workflowBundle } from './workflow-bundle';
import { join } from 'node:path';
import { connectWorkerConnection } from '../temporal/connect';
import type { TemporalConfig } from '../temporal/temporal-config';

export interface WardenWorkerOptions {
  /** The worker's connection; a promise lets it connect while the sandbox host boots. */
  connection: NativeConnection | Promise<NativeConnection>;
  /** The namespace; a promise when it is still being resolved (see createWardenWorkerFromConfig). */
  namespace: string | Promise<string>;
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
  /** Lets go of a worker that will never run: the sandbox host, the stores (and its own connection). */
  close(): Promise<void>;
}

let runtimeInstalled = false;

/**
 * Keeps the SDK's own logging to errors, for commands whose output is the task's steps (a failed
 * tool call is an outcome there, reported in the step, not a warning), and leaves signals to the
 * program: the SDK would otherwise shut every worker down on the first Ctrl-C, before a cancelled
 * task could run its compensations.
 * Must run before the first connection, which installs the SDK's default runtime.
 */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
  } catch {
    // A runtime was already installed by the host program; keep it.
  }
}

export async function createWardenWorker(options: WardenWorkerOptions): Promise<WardenWorker> {
  const stateDir = options.stateDir ?? stateDirOf();
  const traced = options.telemetry === undefined ? undefined : telemetryWorkerOptions(options.telemetry);
  // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
  // Loaded while the sandbox host boots: the two are most of a worker's start-up time.
  const bundle = workflowBundle(options.cacheDir, traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
  bundle.catch(() => undefined);
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
    const worker = await Worker.create({
      connection: await options.connection,
      namespace: await options.namespace,
      taskQueue: options.taskQueue ?? TASK_QUEUE,
      workflowBundle: await bundle,
      ...(traced === undefined ? {} : { interceptors: traced.interceptors, sinks: traced.sinks }),
      activities: createActivities({ sandbox, stateDir, identity: { keystore, stores }, ...(options.env === undefined ? {} : { env: options.env }) }),
    });
    const release = async () => {
      await sandbox.close();
      stores.close();
    };
    return {
      worker,
      sandbox,
      async run(until) {
        try {
          await (until === undefined ? worker.run() : worker.runUntil(until));
        } finally {
          await release();
        }
      },
      close: release,
    };
  } catch (error) {
    await sandbox.close();
    stores.close();
    throw error;
  }
}

/**
 * A worker on its own connection to the server `config` names (the embedded one or a cluster);
 * the connection is made while the worker's parts start (`config` may still be being resolved),
 * and closed when the worker stops.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE`.
 */
export async function createWardenWorkerFromConfig(
  config: TemporalConfig | Promise<TemporalConfig>,
  options: Omit<WardenWorkerOptions, 'connection' | 'namespace'> & { stateDir: string },
): Promise<WardenWorker> {
  const connecting = Promise.resolve(config).then(connectWorkerConnection);
  const namespace = Promise.resolve(config).then((c) => c.namespace);
  // Awaited later (or never, when an earlier part fails): not an unhandled rejection meanwhile.
  connecting.catch(() => undefined);
  namespace.catch(() => undefined);
  let wardenWorker: WardenWorker;
  try {
    wardenWorker = await createWardenWorker({ cacheDir: join(options.stateDir, 'cache'), ...options, connection: connecting, namespace: namespace });
  } catch (error) {
    await (await connecting.catch(() => undefined))?.close();
    throw error;
  }
  const connection = await connecting;
  return {
    ...wardenWorker,
    async run(until) {
      try {
        await wardenWorker.run(until);
      } finally {
        await connection.close();
      }
    },
    async close() {
      await wardenWorker.close();
      await connection.close();
    },
  };
}
