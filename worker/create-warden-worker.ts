/**
 * A Warden worker: the agent workflows, the activities, and the sandbox host process the
 * activities run tools in. The sandbox host is owned here and closed with the worker.
 *
 * Two Temporal workers in one: one polls the shared task queue (workflows, and activities any
 * worker may run); one polls this worker's own data-plane queue (`<taskQueue>@<workerId>`), where
 * the activities of the tasks whose overlay, grants and sandbox host sit here are sent (see
 * activities/place-task.ts). The shared folder is checked at start. Neither is created before
 * `run()`: a worker that never runs never polls.
 *
 * With `WARDEN_DATABASE_URL` (or a shared `state` store) the worker keeps grants, revocations,
 * the jti replay store and its published public keys in the shared database, and refuses to start
 * when that database's schema is not the one this code knows (`warden db migrate`).
 */
import { NativeConnection, Runtime, Worker, DefaultLogger, type ActivityInterceptorsFactory, type WorkerOptions } from '@temporalio/worker';
import { workerLogText } from './worker-log-filters';
import { createActivities } from '../activities';
import { SandboxClient } from '../sandbox/sandbox-client';
import { TASK_QUEUE } from '../workflows/definitions';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCredentialAuthority, signingKeyFileOf } from '../identity/credential-authority';
import { openApproverStore, openSqlApproverStore } from '../identity/approver-registry';
import { stateDirOf } from '../state-dir';
import { openStateStore, usesSharedDatabase, type StateStore } from '../state/state-store';
import { createBlobStore } from '../state/blob-store';
import { createMcpListingStore } from '../mcp/mcp-listing-store';
import type { Telemetry } from '../telemetry/setup-telemetry';
import { telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../telemetry/temporal-interceptors';
import { wellFormedFailureInterceptorFactory } from './well-formed-failure';
import { heartbeatInterceptorFactory } from './heartbeat-interceptor';
import { workflowBundle } from './workflow-bundle';
import { alertJsonLine } from '../activities/monitor-activities';
import type { Alert } from '../monitoring/alert';
import { createAlertStore } from '../monitoring/alert-store';
import { alertWebhookOf } from '../monitoring/alert-webhook';
import { createBaselineStore } from '../monitoring/baseline-store';
import { McpConnectionPool } from '../executors/mcp-connection-pool';
import { defaultMcpPackagesDir } from '../mcp/resolve-server-command';
import { defaultCacheDir } from '../temporal/temporal-cli';
import { wardenResourcesOf } from './warden-resources';
import { openDataPlaneServices, type DataPlaneServices } from '../dataplane/data-plane-services';
import { checkSharedStorage, checkTaskQueueName, checkWorkerId } from '../dataplane/shared-storage';
import { acquireWorkerLease, type WorkerLease } from '../dataplane/worker-lease';
import { connectWorkerConnection } from '../temporal/connect';
import { describeNewestRunVia, sweepClosedVolumes, VOLUME_SWEEP_INTERVAL_MS } from '../recovery/volume-sweep';
import type { TemporalConfig } from '../temporal/temporal-config';
import { markPhase, timedPhase } from '../cli/phase-timing';
import { withWorkflowStackTraces, workflowStackTracesOf } from './workflow-stack-traces';
import { prestartWorkflowThread, type PrestartedWorkflowThread } from './workflow-thread-prestart';
import { holdWorkerOnThread, type HeldWorker } from './prestarted-thread-worker';
import type { PrebootedSandboxHost } from './prebooted-sandbox-host';
import { terminalWriter } from '../terminal-text';
import { WorkerStateError } from '../errors';

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
   * Where each alert goes as it is raised (default: stdout, one JSON object a line). Alerts are also
   * recorded in the state store, in the task's result and custody, and sent to `WARDEN_ALERT_WEBHOOK`.
   */
  printAlert?: (alert: Alert) => void;
  /**
   * Called once the task-queue worker's preparation has begun (the bundle parsed, the workflow
   * thread loading it): `warden run` holds its client's connection until then, so the workflow
   * threads get the cores first. Not called when the start fails before that.
   */
  onWorkersCreating?: () => void;
  /**
   * Called once, when `run()` has created both Temporal workers (task queue and data plane) and
   * they poll: what `warden worker` waits for before it says it is polling. Not called when a
   * worker could not be created.
   */
  onPolling?: () => void;
  /**
   * Folder whose node_modules holds installed MCP server packages (`warden mcp install`);
   * default `WARDEN_MCP_PACKAGES`, else `<cache>/mcp-packages`.
   */
  mcpPackagesDir?: string;
  /** More host folders stdio MCP servers see read-only (e.g. a folder of server scripts). */
  sandboxReadOnlyPaths?: readonly string[];
  /** The identity the worker polls under (default: the SDK's `<pid>@<host>`); see standalone-worker.ts. */
  identity?: string;
  /** More activity interceptors, after Warden's own, on both task queues (a test holding an activity at a point it controls). */
  activityInterceptors?: readonly ActivityInterceptorsFactory[];
  /**
   * A workflow thread the caller started earlier (`prestartWorkflowThread`, e.g. `warden run` as
   * it starts); used when its stack-traces setting is this worker's. Default: one is started as
   * this function begins. Either way one not used by the time the worker is created is ended.
   */
  workflowThread?: PrestartedWorkflowThread;
  /**
   * A sandbox host the caller booted earlier (`prebootSandboxHost`, e.g. `warden run` as it starts);
   * used when it was booted with the options this worker boots its host with, else closed. The
   * caller discards it if the start fails before that.
   */
  sandboxHost?: PrebootedSandboxHost;
}

export interface WardenWorker {
  dataPlane: DataPlaneServices;
  sandbox: SandboxClient;
  /** The worker's MCP connections (closed with the worker). */
  mcp: McpConnectionPool;
  /**
   * Creates the two Temporal workers (none exists before: nothing of a Warden worker polls until
   * it runs), runs them until `until` settles, `close()` is called (or forever), then shuts them
   * and the sandbox host down. Once only: on a worker that is running or has ended (run before,
   * closed, its start failed) it rejects at once, creating and closing nothing.
   * @throws WorkerStateError `ERR_WORKER_STATE` for a call out of order.
   */
  run(until?: Promise<unknown>): Promise<void>;
  /**
   * Ends the worker: unrun, lets go of it (its prepared workflow thread, the sandbox host, the
   * stores, and its own connection); running, stops the run and resolves once it has stopped and
   * closed its parts (never closing them under it); ended, nothing. Never rejects for the order.
   */
  close(): Promise<void>;
}

/**
 * Where a Warden worker is in its one life (`unrun`, then `running` or straight to `ended`),
 * shared by `run()` and `close()`: each call is decided at once, on the state it finds, so a call
 * out of order (a second run(), run() after close() or after a failed start, close() racing
 * run()'s start) never creates Temporal workers for a worker whose parts are closed, nor closes
 * the parts of a worker that runs.
 */
export class WorkerLifecycle {
  private state: 'unrun' | 'running' | 'ended' = 'unrun';
  /** Settles when the one run or close has finished (its parts closed). */
  private finished: Promise<void> | undefined;
  private requestStop: (() => void) | undefined;

  /** The state now (for tests and messages). */
  get current(): 'unrun' | 'running' | 'ended' {
    return this.state;
  }

  /**
   * Runs `body` if the worker is unrun (it then is running until `body` settles, and ended after);
   * `body` is given a promise that resolves when close() asks the run to stop.
   * @throws WorkerStateError `ERR_WORKER_STATE` (at once, `body` not called) unless unrun.
   */
  run(body: (stopRequested: Promise<void>) => Promise<void>): Promise<void> {
    if (this.state !== 'unrun') {
      return Promise.reject(new WorkerStateError('ERR_WORKER_STATE', `the Warden worker cannot run: it ${this.state === 'running' ? 'is running (run() is once only)' : 'has ended (closed, run before, or its start failed)'}`, { details: { state: this.state } }));
    }
    this.state = 'running';
    const stopRequested = new Promise<void>((resolve) => (this.requestStop = resolve));
    const running = (async () => {
      try {
        await body(stopRequested);
      } finally {
        this.state = 'ended';
      }
    })();
    this.finished = running.then(() => undefined, () => undefined);
    return running;
  }

  /**
   * Ends the worker: unrun, runs `closeParts` (ended as it starts); running, asks the run to stop
   * and waits for it (the run closes its own parts); ended, waits for the end under way, if any.
   */
  async close(closeParts: () => Promise<void>): Promise<void> {
    if (this.state === 'unrun') {
      this.state = 'ended';
      this.finished = closeParts();
      return this.finished;
    }
    this.requestStop?.();
    await this.finished?.catch(() => undefined);
  }
}

let runtimeInstalled = false;

/**
 * Keeps the SDK's own logging to errors, for commands whose output is the task's steps (a failed
 * tool call is an outcome there, reported in the step, not a warning), keeps the native core's
 * logs off stdout, and leaves signals to the
 * program: the SDK would otherwise shut every worker down on the first Ctrl-C, before a cancelled
 * task could run its compensations.
 * Must run before the first connection, which installs the SDK's default runtime.
 */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    // Written as the standalone worker's log is (terminal-safe, one entry per line): an SDK error
    // may quote an agent's text, a workflow's failure message, with terminal controls in it.
    const writeStderr = terminalWriter(process.stderr);
    Runtime.install({
      logger: new DefaultLogger('ERROR', (entry) => writeStderr(workerLogText(entry))),
      // The native core's own logs go through the same logger (stderr, errors only): written to
      // the console directly they would land on stdout, inside `warden run --json`.
      telemetryOptions: { logging: { forward: {}, filter: { core: 'ERROR', other: 'ERROR' } } },
      shutdownSignals: [],
    });
  } catch {
    // A runtime was already installed by the host program; keep it.
  }
}

/**
 * Shuts the SDK's runtime down if nothing uses it any more. The runtime shuts itself down when its
 * last native connection or worker is closed; one installed for a worker whose connection was
 * never made (the server could not be found) would otherwise hold the process open forever.
 * `shutdownIfIdle` is the SDK's own (internal) check.
 */
export async function releaseIdleRuntime(): Promise<void> {
  const runtime = (Runtime as unknown as { _instance?: { shutdownIfIdle(): Promise<void> } })._instance;
  await runtime?.shutdownIfIdle();
}

/**
 * How long one workflow activation may run in the isolate before the SDK fails it. The SDK's
 * default (5 s) guards against a workflow that loops forever; Warden's workflow code is
 * deterministic and bounded, but on a loaded machine (2 shared cores, a full CI run) one
 * activation of a long task (policy checks over its steps, a large history replayed on a cache
 * miss) can exceed 5 s: the SDK then fails the activation ("Script execution timed out"), logs an
 * ERROR, and retries the workflow task: slower, alarming, and no safer. 30 s is above the workflow
 * task timeout (10 s, Temporal's default), so the isolate never kills an activation the server
 * would still accept, and a real infinite loop is still stopped.
 */
export const ISOLATE_EXECUTION_TIMEOUT = '30s';

/**
 * Options of the workflow worker beyond the SDK's defaults. `isolateExecutionTimeout` is read by
 * the SDK (worker-options.ts spreads the given options over its defaults) but not in its public
 * `WorkerOptions` type, hence the cast; test/worker/worker-log-filters.test.ts checks the SDK's
 * compiled options still carry it.
 */
export const WORKFLOW_WORKER_OPTIONS = { isolateExecutionTimeout: ISOLATE_EXECUTION_TIMEOUT } as Partial<WorkerOptions>;

/**
 * The runtime of a standalone worker: the SDK's logging at INFO, less what a task reports itself
 * (a task that ended other than completed, a refused tool call: one line each, no stack) and the
 * data-plane worker's expected "No workflows registered" (one INFO line): worker/worker-log-filters.ts.
 * Call before the first connection.
 */
export function installWorkerRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    const writeStderr = terminalWriter(process.stderr);
    Runtime.install({ logger: new DefaultLogger('INFO', (entry) => writeStderr(workerLogText(entry))) });
  } catch {
    // A runtime was already installed by the host program; keep it.
  }
}

/**
 * Creates a Warden worker (see the module comment). Its workflow thread starts first, loading its
 * modules while the stores, the sandbox host and the bundle are opened (worker/workflow-thread-prestart.ts).
 */
export async function createWardenWorker(options: WardenWorkerOptions): Promise<WardenWorker> {
  let stackTraces: ReturnType<typeof workflowStackTracesOf>;
  try {
    stackTraces = workflowStackTracesOf(options.configEnv ?? process.env);
  } catch {
    // Reported by the start itself, in its own order of checks.
    void options.workflowThread?.discard();
    return createWardenWorkerOn(options, undefined);
  }
  let thread = options.workflowThread;
  if (thread !== undefined && thread.stackTraces !== stackTraces) {
    void thread.discard();
    thread = undefined;
  }
  thread ??= prestartWorkflowThread(stackTraces);
  try {
    return await createWardenWorkerOn(options, thread);
  } finally {
    // Ended unless the workflow worker took it (a start that failed before, or a thread that could not be used).
    await thread.discard();
  }
}

async function createWardenWorkerOn(options: WardenWorkerOptions, workflowThread: PrestartedWorkflowThread | undefined): Promise<WardenWorker> {
  const stateDir = options.stateDir ?? stateDirOf();
  const traced = options.telemetry === undefined ? undefined : telemetryWorkerOptions(options.telemetry);
  // With a pre-built bundle the workflow interceptors must be bundled in (see workflow-bundle.ts).
  // Loaded while the sandbox host boots: the two are most of a worker's start-up time.
  const configEnv = options.configEnv ?? process.env;
  // Naming rules first (dataplane/worker-naming.ts): nothing is opened for a worker that cannot run.
  checkWorkerId(stateDir, configEnv);
  if (options.taskQueue !== undefined) checkTaskQueueName(options.taskQueue, 'the task queue');
  const stackTraces = workflowStackTracesOf(configEnv);
  const bundle = timedPhase('worker: workflow bundle loaded', workflowBundle(options.cacheDir, { stackTraces, ...(traced === undefined ? {} : { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }) }), configEnv);
  bundle.catch(() => undefined);
  const mcpPool = new McpConnectionPool();
  const ownedState = options.state === undefined && usesSharedDatabase(configEnv) ? await openStateStore({ stateDir, env: configEnv }) : undefined;
  const state = options.state ?? ownedState;
  // Baselines and alerts live in the state database: the shared one, else <stateDir>/state.db.
  const ownedMonitorState = state === undefined ? await openStateStore({ stateDir, env: configEnv }).catch(async (error: unknown) => {
    await ownedState?.close();
    throw error;
  }) : undefined;
  const monitorDb = (state ?? ownedMonitorState)!.db;
  const closeState = async () => {
    await ownedMonitorState?.close();
    await ownedState?.close();
  };
  let alertWebhook: ReturnType<typeof alertWebhookOf>;
  try {
    alertWebhook = alertWebhookOf(configEnv);
  } catch (error) {
    await closeState();
    throw error;
  }
  let authority: Awaited<ReturnType<typeof openCredentialAuthority>>;
  try {
    authority = await openCredentialAuthority({ stateDir, env: configEnv, ...(state === undefined ? {} : { state }) });
  } catch (error) {
    await closeState();
    throw error;
  }
  markPhase('worker: state store and credential authority open', configEnv);
  const { keystore, stores } = authority;
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const dataPlane = openDataPlaneServices({ stateDir, taskQueue, env: configEnv, ...(options.sharedDir === undefined ? {} : { sharedDir: options.sharedDir }), ...(state?.shared === true ? { db: state.db } : {}) });
  let lease: WorkerLease;
  try {
    await checkSharedStorage({ sharedDir: dataPlane.sharedDir, explicit: dataPlane.sharedFolderNamed, workerId: dataPlane.workerId, stateDir });
    // One state folder's workers per worker id: see dataplane/worker-lease.ts.
    lease = await acquireWorkerLease({ workerId: dataPlane.workerId, stateDir, sharedDir: dataPlane.sharedDir, ...(state?.shared === true ? { db: state.db } : {}) });
  } catch (error) {
    await authority.close();
    await closeState();
    throw error;
  }
  // Shared with every worker when the state is (a key registered anywhere verifies here).
  const approvers = state?.shared === true ? openSqlApproverStore(state.db) : openApproverStore({ stateDir });
  const release = async () => {
    await lease.release();
    await approvers.close();
    await authority.close();
    await closeState();
  };
  let sandbox: SandboxClient;
  let sandboxReady: Promise<void>;
  try {
    // With one key from a key source, the host verifies with that key's public part only.
    let jwksFile: string | undefined;
    if (signingKeyFileOf(configEnv) !== undefined) {
      jwksFile = join(stateDir, 'key-source-jwks.json');
      writeFileSync(jwksFile, `${JSON.stringify(keystore.jwks())}\n`, { mode: 0o644 });
    }
    // The host boots (a process of its own) while the task-queue worker below is prepared (its
    // workflow thread loads the bundle): the two were most of a worker's start, one after the
    // other (issue 17). Nothing is handed out before the host answered, and no Temporal Worker
    // exists (so none polls) before run().
    const hostOptions = {
      identityStateDir: stateDir,
      ...(state?.shared === true && state.config.mode === 'postgres' ? { identityDatabaseUrl: state.config.url } : {}),
      ...(jwksFile === undefined ? {} : { identityJwksFile: jwksFile }),
    };
    ({ client: sandbox, ready: sandboxReady } = (await options.sandboxHost?.take(hostOptions)) ?? SandboxClient.boot(hostOptions));
  } catch (error) {
    await release();
    throw error;
  }
  sandboxReady.then(() => markPhase('worker: sandbox host ready', configEnv), () => undefined);
  let held: HeldWorker | undefined;
  try {
    const env = options.env ?? process.env;
    const mcp = {
      pool: mcpPool,
      packagesDir: options.mcpPackagesDir ?? (env.WARDEN_MCP_PACKAGES ? env.WARDEN_MCP_PACKAGES : defaultMcpPackagesDir(defaultCacheDir(env))),
      ...(options.sandboxReadOnlyPaths === undefined ? {} : { extraReadOnlyPaths: options.sandboxReadOnlyPaths }),
    };
    const activities = createActivities({
      sandbox,
      stateDir,
      identity: { keystore, stores },
      mcp,
      dataPlane,
      ...(options.telemetry === undefined ? {} : { tracer: options.telemetry.tracer }),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(state?.shared === true ? { shared: { db: state.db, workerId: state.workerId } } : {}),
      monitor: {
        baselines: createBaselineStore(monitorDb),
        alerts: createAlertStore(monitorDb),
        print: options.printAlert ?? ((alert) => terminalWriter(process.stdout)(alertJsonLine(alert))),
        ...(alertWebhook === undefined ? {} : { webhook: alertWebhook }),
      },
      approvers,
      listings: createMcpListingStore(createBlobStore(monitorDb)),
      blobs: createBlobStore(monitorDb),
      ...(options.telemetry === undefined ? {} : { custody: options.telemetry.ledger }),
      wardenResources: wardenResourcesOf({ env: options.env ?? process.env, stateDir, cacheDirs: options.cacheDir === undefined ? [] : [options.cacheDir] }),
    });
    const activityInterceptors = [wellFormedFailureInterceptorFactory, ...(traced?.interceptors.activity ?? []), heartbeatInterceptorFactory, ...(options.activityInterceptors ?? [])];
    markPhase('worker: activities created', configEnv);
    const connection = await options.connection;
    const namespace = await options.namespace;
    markPhase('worker: native connection ready', configEnv);
    const workflowBundleLoaded = await bundle;
    // The Temporal workers are built up to their Core workers (the part that polls) while the
    // host boots, and created only in run(): a worker that must not run (its host never answered,
    // or close() instead of run()) then has no Temporal Worker to let go of, so nothing of it ever
    // polls (issue 17: the SDK's only release of an unrun Worker, run() then shutdown(), let a poll
    // take a task waiting on the queue).
    // WARDEN_WORKFLOW_STACK_TRACES=off: the workflow threads start without stack traces (workflow-stack-traces.ts).
    const preparing = withWorkflowStackTraces(stackTraces, async () => {
      held = holdWorkerOnThread({
        connection,
        namespace,
        taskQueue,
        ...(options.identity === undefined ? {} : { identity: options.identity }),
        workflowBundle: workflowBundleLoaded,
        // A slow activation on a loaded machine is not killed at 5 s (see ISOLATE_EXECUTION_TIMEOUT).
        ...WORKFLOW_WORKER_OPTIONS,
        interceptors: { ...traced?.interceptors, activity: activityInterceptors },
        ...(traced === undefined ? {} : { sinks: traced.sinks }),
        activities,
      }, workflowThread);
      await held.prepared;
    });
    void preparing.then(() => markPhase('worker: task-queue worker prepared', configEnv), () => undefined);
    const dataPlaneOptions: WorkerOptions = { connection, namespace, taskQueue: dataPlane.taskQueue, ...(options.identity === undefined ? {} : { identity: options.identity }), interceptors: { activity: activityInterceptors }, activities };
    // A turn later: the task-queue worker's threads have been spawned by then.
    if (options.onWorkersCreating !== undefined) setImmediate(options.onWorkersCreating);
    const [prepared, hostBooted] = await Promise.allSettled([preparing, sandboxReady]);
    if (prepared.status === 'rejected') throw prepared.reason;
    if (hostBooted.status === 'rejected') throw hostBooted.reason;
    const heldWorker = held!;
    // One life, shared by run() and close(): a call out of order creates and closes nothing.
    const lifecycle = new WorkerLifecycle();
    const closeParts = async () => {
      await heldWorker.discard();
      await mcpPool.close();
      await sandbox.close();
      await release();
    };
    return {
      dataPlane,
      sandbox,
      mcp: mcpPool,
      run: (until) => lifecycle.run(async (stopRequested) => {
        try {
          // Created now, as they will run: the host has answered. Should one of them fail, the
          // other runs only to stop at once (it is a whole worker, meant to run: a task it took
          // is finished or handed back as by any worker that shuts down).
          const creations = await Promise.allSettled([withWorkflowStackTraces(stackTraces, () => heldWorker.create()), Worker.create(dataPlaneOptions)]);
          markPhase('worker: Temporal workers created', configEnv);
          const workers = creations.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
          const creationFailure = creations.find((c): c is PromiseRejectedResult => c.status === 'rejected');
          // Both stop together: `until`, a shutdown signal or a failure of either shuts both down.
          // (Not runUntil: a worker stopped by a signal before `until` settled would throw
          // PromiseCompletionTimeoutError, and `warden worker` would exit failed on SIGTERM.)
          const stopAll = () => {
            for (const w of workers) {
              try {
                if (w.getState() === 'RUNNING') w.shutdown();
              } catch {
                // Already stopping.
              }
            }
          };
          const runs = workers.map((w) => w.run().finally(stopAll));
          if (creationFailure !== undefined) stopAll();
          else options.onPolling?.();
          // Volumes of trees closed without their saga (terminated, timed out): at start and every few minutes.
          const sweep = () => void sweepClosedVolumes(stateDir, describeNewestRunVia(connection.workflowService, namespace)).catch(() => undefined);
          sweep();
          const sweeping = setInterval(sweep, VOLUME_SWEEP_INTERVAL_MS);
          sweeping.unref();
          void Promise.allSettled(runs).then(() => clearInterval(sweeping));
          // Another state folder took this id (this worker stalled past its lease): stop polling
          // its data-plane queue rather than share it.
          let leaseLost: unknown;
          void lease.lost.then((error) => {
            leaseLost = error;
            stopAll();
          });
          let untilFailure: { error: unknown } | undefined;
          until?.then(stopAll, (error: unknown) => {
            untilFailure = { error };
            stopAll();
          });
          // close() while running stops the run; the parts are closed below, once it has stopped.
          void stopRequested.then(stopAll);
          const results = await Promise.allSettled(runs);
          if (creationFailure !== undefined) throw creationFailure.reason;
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed !== undefined) throw failed.reason;
          if (leaseLost !== undefined) throw leaseLost;
          if (untilFailure !== undefined) throw untilFailure.error;
        } finally {
          await closeParts();
        }
      }),
      // Unrun: no Temporal Worker exists, only the prepared workflow thread to end (closeParts).
      close: () => lifecycle.close(closeParts),
    };
  } catch (error) {
    await held?.discard();
    await sandbox.close();
    await release();
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
    wardenWorker = await createWardenWorker({ cacheDir: join(options.stateDir, 'cache'), ...options, connection: connecting, namespace });
  } catch (error) {
    await (await connecting.catch(() => undefined))?.close();
    throw error;
  }
  const connection = await connecting;
  // Closed once, after the worker's own end: a refused run() (ERR_WORKER_STATE) closes nothing,
  // least of all the connection a running worker polls on.
  let connectionClosed: Promise<void> | undefined;
  const closeConnection = () => (connectionClosed ??= connection.close());
  return {
    ...wardenWorker,
    async run(until) {
      let refused = false;
      try {
        await wardenWorker.run(until);
      } catch (error) {
        refused = error instanceof WorkerStateError;
        throw error;
      } finally {
        if (!refused) await closeConnection();
      }
    },
    async close() {
      await wardenWorker.close();
      await closeConnection();
    },
  };
}
