/**
 * A Warden worker: the agent workflows, the activities, and the sandbox host process the
 * activities run tools in. The sandbox host is owned here and closed with the worker.
 *
 * Two Temporal workers in one: one polls the shared task queue (workflows, and activities any
 * worker may run); one polls this worker's own data-plane queue (`<taskQueue>@<workerId>`), where
 * the activities of the tasks whose overlay, grants and sandbox host sit here are sent (see
 * activities/place-task.ts). The shared folder is checked at start.
 *
 * With `WARDEN_DATABASE_URL` (or a shared `state` store) the worker keeps grants, revocations,
 * the jti replay store and its published public keys in the shared database, and refuses to start
 * when that database's schema is not the one this code knows (`warden db migrate`).
 */
import { NativeConnection, Runtime, Worker, DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../activities';
import { SandboxClient } from '../sandbox/sandbox-client';
import { TASK_QUEUE } from '../workflows/definitions';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCredentialAuthority, signingKeyFileOf } from '../identity/credential-authority';
import { openApproverStore } from '../identity/approver-registry';
import { stateDirOf } from '../state-dir';
import { openStateStore, usesSharedDatabase, type StateStore } from '../state/state-store';
import type { Telemetry } from '../telemetry/setup-telemetry';
import { telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../telemetry/temporal-interceptors';
import { heartbeatInterceptorFactory } from './heartbeat-interceptor';
import { workflowBundle } from './workflow-bundle';
import { McpConnectionPool } from '../executors/mcp-connection-pool';
import { defaultMcpPackagesDir } from '../mcp/resolve-server-command';
import { defaultCacheDir } from '../temporal/temporal-cli';
import { wardenResourcesOf } from './warden-resources';
import { openDataPlaneServices, type DataPlaneServices } from '../dataplane/data-plane-services';
import { checkSharedStorage } from '../dataplane/shared-storage';

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
  /** The folder every worker shares (default: WARDEN_SHARED_DIR of `configEnv`, else the state folder). */
  sharedDir?: string;
  /**
   * Environment the worker's own configuration is read from (`WARDEN_DATABASE_URL`,
   * `WARDEN_SIGNING_KEY_FILE`, `WARDEN_WORKER_ID`); default `process.env`.
   */
  configEnv?: NodeJS.ProcessEnv;
  /** An open shared state store to use (the caller closes it); default: opened from `configEnv` when it names a database. */
  state?: StateStore;
  /**
   * Tracing (`setupTelemetry`): workflow, activity and child-workflow spans go to its custody
   * ledger. The caller owns it and shuts it down after the worker.
   */
  telemetry?: Telemetry;
  /**
   * Folder whose node_modules holds installed MCP server packages (`warden mcp install`);
   * default `WARDEN_MCP_PACKAGES`, else `<cache>/mcp-packages`.
   */
  mcpPackagesDir?: string;
  /** More host folders stdio MCP servers see read-only (e.g. a folder of server scripts). */
  sandboxReadOnlyPaths?: readonly string[];
}

export interface WardenWorker {
  worker: Worker;
  /** The worker polling this worker's own data-plane task queue (activities only). */
  dataPlaneWorker: Worker;
  dataPlane: DataPlaneServices;
  sandbox: SandboxClient;
  /** The worker's MCP connections (closed with the worker). */
  mcp: McpConnectionPool;
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
  const mcpPool = new McpConnectionPool();
  const configEnv = options.configEnv ?? process.env;
  const ownedState = options.state === undefined && usesSharedDatabase(configEnv) ? await openStateStore({ stateDir, env: configEnv }) : undefined;
  const state = options.state ?? ownedState;
  const closeState = async () => {
    await ownedState?.close();
  };
  let authority: Awaited<ReturnType<typeof openCredentialAuthority>>;
  try {
    authority = await openCredentialAuthority({ stateDir, env: configEnv, ...(state === undefined ? {} : { state }) });
  } catch (error) {
    await closeState();
    throw error;
  }
  const { keystore, stores } = authority;
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const dataPlane = openDataPlaneServices({ stateDir, taskQueue, env: configEnv, ...(options.sharedDir === undefined ? {} : { sharedDir: options.sharedDir }), ...(state?.shared === true ? { db: state.db } : {}) });
  try {
    await checkSharedStorage({ sharedDir: dataPlane.sharedDir, explicit: dataPlane.sharedFolderNamed, workerId: dataPlane.workerId, stateDir });
  } catch (error) {
    await authority.close();
    await closeState();
    throw error;
  }
  const approvers = openApproverStore({ stateDir });
  const release = async () => {
    approvers.close();
    await authority.close();
    await closeState();
  };
  let sandbox: SandboxClient;
  try {
    // With one key from a key source, the host verifies with that key's public part only.
    let jwksFile: string | undefined;
    if (signingKeyFileOf(configEnv) !== undefined) {
      jwksFile = join(stateDir, 'key-source-jwks.json');
      writeFileSync(jwksFile, `${JSON.stringify(keystore.jwks())}\n`, { mode: 0o644 });
    }
    sandbox = await SandboxClient.start({
      identityStateDir: stateDir,
      ...(state?.shared === true && state.config.mode === 'postgres' ? { identityDatabaseUrl: state.config.url } : {}),
      ...(jwksFile === undefined ? {} : { identityJwksFile: jwksFile }),
    });
  } catch (error) {
    await release();
    throw error;
  }
  try {
    const env = options.env ?? process.env;
    const mcp = {
      pool: mcpPool,
      packagesDir: options.mcpPackagesDir ?? (env.WARDEN_MCP_PACKAGES ? env.WARDEN_MCP_PACKAGES : defaultMcpPackagesDir(defaultCacheDir(env))),
      ...(options.sandboxReadOnlyPaths === undefined ? {} : { extraReadOnlyPaths: options.sandboxReadOnlyPaths }),
    };
    const traced = options.telemetry === undefined ? undefined : telemetryWorkerOptions(options.telemetry);
    const activities = createActivities({
      sandbox,
      stateDir,
      identity: { keystore, stores },
      mcp,
      dataPlane,
      ...(options.telemetry === undefined ? {} : { tracer: options.telemetry.tracer }),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(state?.shared === true ? { shared: { db: state.db, workerId: state.workerId } } : {}),
      approvers,
      wardenResources: wardenResourcesOf({ env: options.env ?? process.env, stateDir, cacheDirs: options.cacheDir === undefined ? [] : [options.cacheDir] }),
    });
    const activityInterceptors = [...(traced?.interceptors.activity ?? []), heartbeatInterceptorFactory];
    const worker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue,
      // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
      workflowBundle: await workflowBundle(options.cacheDir, traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }),
      interceptors: { ...traced?.interceptors, activity: activityInterceptors },
      ...(traced === undefined ? {} : { sinks: traced.sinks }),
      activities,
    });
    const dataPlaneWorker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue: dataPlane.taskQueue,
      interceptors: { activity: activityInterceptors },
      activities,
    });
    return {
      worker,
      dataPlaneWorker,
      dataPlane,
      sandbox,
      mcp: mcpPool,
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
          await mcpPool.close();
          await sandbox.close();
          await release();
        }
      },
    };
  } catch (error) {
    await sandbox.close();
    await release();
    throw error;
  }
}
