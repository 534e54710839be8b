/**
 * A Warden worker: the agent workflows, the activities, and the sandbox host process the
 * activities run tools in. The sandbox host is owned here and closed with the worker.
 *
 * Two Temporal workers in one: one polls the shared task queue (workflows, and activities any
 * worker may run, such as placing a task); one polls this worker's own data-plane queue
 * (`<taskQueue>@<workerId>`), where the activities of the tasks whose overlay, grants and sandbox
 * host sit here are sent (see activities/place-task.ts). The shared folder is checked at start.
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
import { openDataPlaneServices, type DataPlaneServices } from '../dataplane/data-plane-services';
import { checkSharedStorage } from '../dataplane/shared-storage';
import { workflowBundle } from './workflow-bundle';

export interface WardenWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /** Where the workflow bundle is cached; no disk cache when omitted. */
  cacheDir?: string;
  /** State folder holding the credential authority's keys and stores (default: WARDEN_STATE_DIR or ./.warden). */
  stateDir?: string;
  /** Environment model drivers read API keys from; also WARDEN_SHARED_DIR and WARDEN_WORKER_ID. */
  env?: NodeJS.ProcessEnv;
  /** The folder every worker shares (default: WARDEN_SHARED_DIR, else the state folder). */
  sharedDir?: string;
  /**
   * Tracing (`setupTelemetry`): workflow, activity and child-workflow spans go to its custody
   * ledger. The caller owns it and shuts it down after the worker.
   */
  telemetry?: Telemetry;
}

export interface WardenWorker {
  worker: Worker;
  /** The worker polling this worker's own data-plane task queue (activities only). */
  dataPlaneWorker: Worker;
  dataPlane: DataPlaneServices;
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

export async function createWardenWorker(options: WardenWorkerOptions): Promise<WardenWorker> {
  const stateDir = options.stateDir ?? stateDirOf();
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const env = options.env ?? process.env;
  const dataPlane = openDataPlaneServices({ stateDir, taskQueue, env, ...(options.sharedDir === undefined ? {} : { sharedDir: options.sharedDir }) });
  await checkSharedStorage({ sharedDir: dataPlane.sharedDir, explicit: dataPlane.explicitShared, workerId: dataPlane.workerId, stateDir });
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
    const activities = createActivities({
      sandbox,
      stateDir,
      identity: { keystore, stores },
      dataPlane,
      ...(options.telemetry === undefined ? {} : { tracer: options.telemetry.tracer }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    const worker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue,
      // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
      workflowBundle: await workflowBundle(options.cacheDir, traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }),
      ...(traced === undefined ? {} : { interceptors: traced.interceptors, sinks: traced.sinks }),
      activities,
    });
    const dataPlaneWorker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue: dataPlane.taskQueue,
      ...(traced === undefined ? {} : { interceptors: { activity: traced.interceptors.activity ?? [] } }),
      activities,
    });
    return {
      worker,
      dataPlaneWorker,
      dataPlane,
      sandbox,
      async run(until) {
        try {
          // Both stop together: whichever ends first (or fails) shuts the other down.
          let stopOther!: () => void;
          const stopped = new Promise<void>((resolve) => (stopOther = resolve));
          const end = until === undefined ? stopped : Promise.race([until, stopped]);
          const runs = [worker.runUntil(end), dataPlaneWorker.runUntil(end)].map((p) => p.finally(() => stopOther()));
          const results = await Promise.allSettled(runs);
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed !== undefined) throw failed.reason;
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
