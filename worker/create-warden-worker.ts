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
import { McpConnectionPool } from '../executors/mcp-connection-pool';
import { defaultMcpPackagesDir } from '../mcp/resolve-server-command';
import { defaultCacheDir } from '../temporal/temporal-cli';

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
  const keystore = await openKeystore({ stateDir });
  const stores = openCredentialStores({ stateDir });
  const mcpPool = new McpConnectionPool();
  let sandbox: SandboxClient;
  try {
    sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  } catch (error) {
    stores.close();
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
    const worker = await Worker.create({
      connection: options.connection,
      namespace: options.namespace,
      taskQueue: options.taskQueue ?? TASK_QUEUE,
      // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
      workflowBundle: await workflowBundle(options.cacheDir, traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }),
      ...(traced === undefined ? {} : { interceptors: traced.interceptors, sinks: traced.sinks }),
      activities: createActivities({ sandbox, stateDir, identity: { keystore, stores }, mcp, ...(options.env === undefined ? {} : { env: options.env }) }),
    });
    return {
      worker,
      sandbox,
      mcp: mcpPool,
      async run(until) {
        try {
          await (until === undefined ? worker.run() : worker.runUntil(until));
        } finally {
          await mcpPool.close();
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
