/**
 * `warden run <task-file>`: validate the task, make sure a Temporal server is there (embedded by
 * default), run a worker in-process unless pointed at a cluster, start the task and follow it.
 *
 * Ctrl-C cancels the task and keeps the in-process worker running until the task has run its
 * compensations, then prints one line saying what was undone and exits 130. A second Ctrl-C
 * stops waiting: the task stays cancel-requested for the next worker to finish. SIGTERM and
 * SIGHUP do the same (exit 143, 129). A signal that comes when the task has already ended (its
 * cancel changed nothing) leaves the exit code the task's outcome, with a line saying so. The handlers are installed before anything starts: a signal
 * before the start request starts nothing; one while the request is in flight cancels the
 * workflow id once the request settled (the id is chosen here, so it is known even when the
 * reply is lost).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { followAgentTask, newTaskWorkflowId, startAgentTask, type ProgressEvent } from '../../client/start-agent-task';
import { registeredSearchAttributes } from '../../client/registered-search-attributes';
import { openDeploymentBlobStore, type DeploymentBlobStore } from '../../dataplane/open-deployment-blob-store';
import { ConfigError, TaskFileError, WardenError } from '../../errors';
import { loadTaskFile, taskNotices } from '../../task/load-task-file';
import { stateDirOf } from '../../state-dir';
import { taskResourceIssues, wardenKeyFiles, wardenResourcesOf } from '../../worker/warden-resources';
import type { TaskResult } from '../../task/task-run';
import { osSandboxProblem, taskNeedsOsSandbox } from '../../sandbox/os/os-sandbox-availability';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { telemetryClientInterceptors } from '../../telemetry/temporal-interceptors';
import { connectClient } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import type { WardenWorker } from '../../worker/create-warden-worker';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError, INTERRUPT_EXIT_CODES, type InterruptSignal } from '../exit-codes';
import { markPhase, timedPhase } from '../phase-timing';
import { taskQueueOf } from '../default-task-queue';
import { checkWorkerId, dataPlaneQueueOf, workerIdOf } from '../../dataplane/shared-storage';
import { newWorkflowIdUsageError, parseCommandArgs, usageError, type ParsedCommandArgs } from '../parse-command-args';
import { recentPollers, recentPolls, resolveTemporal } from '../temporal-client';
import { hasStandaloneWorkerRecords, latestPolls, liveStandaloneWorker, otherStateWorkers, possiblyOpenPollNote, possiblyOpenPolls, recordRunWorker, runWorkerIdentity, unvouchedPollers, type RunWorkerRegistration } from '../../worker/standalone-worker';
import { prestartWorkflowThread, type PrestartedWorkflowThread } from '../../worker/workflow-thread-prestart';
import { prebootSandboxHost, type PrebootedSandboxHost } from '../../worker/prebooted-sandbox-host';
import { usesSharedDatabase } from '../../state/state-store';
import { workflowStackTracesOf } from '../../worker/workflow-stack-traces';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const RUN_USAGE = `usage: warden run <task-file> [--json] [--workflow-id <id>] [--task-queue <name>] [--worker | --no-worker]

  Checks the task file first (fields, every path it names, dataFlow): a bad file exits 2 with each
  problem at file:line:column. Runs the task and prints each step as it finishes, each action held
  for approval (with the command that decides it), then a summary that lists only steps not shown
  yet (each step is printed once). Ctrl-C cancels the task: its compensations run and
  one line says what was undone (exit 130); Ctrl-C again leaves it to the next worker.
  SIGTERM and SIGHUP do the same (exit 143, 129); before the task started, a signal starts
  nothing.
  --json              print one JSON object with the result on stdout
  --workflow-id <id>  workflow id to start the task under (default: warden-<agent>-<uuid>); it may
                      not hold "/" or "#", which Warden puts in ids it derives (a sub-agent is
                      <parent>/<sub-agent>-<step>): ERR_WORKFLOW_ID_INVALID, exit 2
  --task-queue <name> task queue to start the task on (default: WARDEN_TASK_QUEUE, else warden-agent-tasks)
  --worker            run a worker in this process even with TEMPORAL_ADDRESS set
  --no-worker         rely on standalone workers (default when TEMPORAL_ADDRESS is set)
  Without TEMPORAL_ADDRESS, a standalone \`warden worker\` of this user on this machine and state
  folder that polls the queue runs the task (no worker starts here), once its record in the state
  folder vouches for it (README, \`warden run\`); --worker starts one here anyway.
  Any other poller on the queue (it may be handed the task) is named in a note on stderr.
  Exit 0 when the task completed, 1 when it ended otherwise, 2 for a bad task file, usage or
  a namespace the server does not have (TEMPORAL_NAMESPACE), 130 when interrupted (143 SIGTERM,
  129 SIGHUP); a signal that came after the task ended leaves the exit code of its outcome.`;

export { EXIT_INTERRUPTED, INTERRUPT_EXIT_CODES } from '../exit-codes';

/** Thrown at the next step of the start-up when a signal came before the start request. */
class InterruptedBeforeStart extends Error {}
/** How often `run` looks again for a worker when none polled the task queue. */
const WORKER_CHECK_MS = 5_000;

const RUN_OPTIONS = {
  json: { type: 'boolean' },
  'workflow-id': { type: 'string' },
  'task-queue': { type: 'string' },
  worker: { type: 'boolean' },
  'no-worker': { type: 'boolean' },
} as const;

export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('run', RUN_USAGE, argv, io, RUN_OPTIONS);
  if (typeof args === 'number') return args;
  markPhase('run: command loaded', io.env);
  const [file, ...extra] = args.positionals;
  if (file === undefined || extra.length > 0) return usageError('run', RUN_USAGE, io, 'expected exactly one task file');
  if (args.values.worker === true && args.values['no-worker'] === true) return usageError('run', RUN_USAGE, io, '--worker and --no-worker exclude each other');
  const badId = newWorkflowIdUsageError('run', RUN_USAGE, io, args.values['workflow-id']);
  if (badId !== undefined) return badId;
  try {
    taskQueueOf(args.values['task-queue'], io.env);
    checkWorkerId(stateDirOf(io.env), io.env);
  } catch (error) {
    if (error instanceof ConfigError) return usageError('run', RUN_USAGE, io, `${error.code}: ${error.message}`);
    throw error;
  }

  // The worker's workflow thread, when this run will start one without asking the server first:
  // it loads its modules on the other core while the task is checked and the worker's parts load (issue 17).
  const workflowThread = prestartedThreadFor(args.values.worker === true, args.values['no-worker'] === true, io.env);
  // Its sandbox host too, when the worker will boot it with the state folder's own keys and
  // stores (no shared database, no key source: the worker checks the options are its own).
  // Only into a state folder that exists: the host opens its stores there, and a run refused for
  // its task file must leave no state behind (test/permissions/warden-resources.test.ts).
  const sandboxHost =
    workflowThread !== undefined && !usesSharedDatabase(io.env) && (io.env.WARDEN_SIGNING_KEY_FILE ?? '').trim() === '' && existsSync(stateDirOf(io.env))
      ? prebootSandboxHost({ identityStateDir: stateDirOf(io.env) })
      : undefined;
  try {
    return await runPrepared(args, file, { workflowThread, sandboxHost }, io);
  } finally {
    await workflowThread?.discard();
    await sandboxHost?.discard();
  }
}

/**
 * A workflow thread started now for the worker this run starts at once (embedded server or
 * `--worker`, and no standalone worker record that could make it a client only); undefined
 * otherwise, or when the settings are bad (the run reports that itself).
 */
export function prestartedThreadFor(workerFlag: boolean, noWorkerFlag: boolean, env: NodeJS.ProcessEnv): PrestartedWorkflowThread | undefined {
  try {
    if (noWorkerFlag || (!workerFlag && loadTemporalConfig(env).mode !== 'embedded')) return undefined;
    if (!workerFlag && hasStandaloneWorkerRecords(stateDirOf(env))) return undefined;
    return prestartWorkflowThread(workflowStackTracesOf(env));
  } catch {
    return undefined;
  }
}

/**
 * The problem with WARDEN_SIGNING_KEY_FILE when this run may start a worker that signs with it
 * (embedded server or `--worker`, not `--no-worker`): a file it cannot use exits 2 before any
 * server starts or is reached. Undefined when none is set, when it is good, or when no worker
 * starts here (a standalone worker's key file is its own). Loaded only when a file is set: the
 * key source brings the JWT library, which a run without one loads with the worker.
 */
async function signingKeyFileProblem(workerFlag: boolean, noWorkerFlag: boolean, env: NodeJS.ProcessEnv): Promise<WardenError | undefined> {
  if (noWorkerFlag || (env.WARDEN_SIGNING_KEY_FILE ?? '').trim() === '') return undefined;
  let embedded = true;
  try {
    embedded = loadTemporalConfig(env).mode === 'embedded';
  } catch {
    // A bad Temporal setting is reported by the run itself, with its own message.
  }
  if (!workerFlag && !embedded) return undefined;
  const { checkSigningKeyFile } = await import('../../identity/credential-authority.js');
  try {
    await checkSigningKeyFile(env);
    return undefined;
  } catch (error) {
    if (error instanceof WardenError && error.code === 'ERR_SIGNING_KEY_FILE_INVALID') return error;
    throw error;
  }
}

async function runPrepared(args: ParsedCommandArgs<typeof RUN_OPTIONS>, file: string, early: { workflowThread: PrestartedWorkflowThread | undefined; sandboxHost: PrebootedSandboxHost | undefined }, io: CliIo): Promise<number> {
  let task;
  try {
    task = await loadTaskFile(file);
    // Refused here with exit 2 (and again by every worker, for tasks started another way).
    const stateDir = stateDirOf(io.env);
    const resources = wardenResourcesOf({ env: io.env, stateDir, cacheDirs: [join(stateDir, 'cache')] });
    const issues = await taskResourceIssues(task, resources, wardenKeyFiles(stateDir, io.env));
    if (issues.length > 0) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issues);
    markPhase('run: task file loaded and checked', io.env);
  } catch (error) {
    if (error instanceof TaskFileError) {
      io.stderr(`warden run: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }

  if (task.agent.model.driver === 'mcp-client') {
    io.stderr(`${terminalLine(`warden run: ${file}: an "mcp-client" agent is an MCP client that connects to Warden; run it with: warden mcp serve ${file}`)}\n`);
    return EXIT.usage;
  }
  // Programs and stdio MCP servers run only in the OS sandbox: say so before anything starts.
  const sandboxProblem = taskNeedsOsSandbox(task) ? osSandboxProblem(io.env) : undefined;
  if (sandboxProblem !== undefined) {
    io.stderr(`${terminalLine(`warden run: ERR_OS_SANDBOX_UNAVAILABLE: ${file} uses proc.run or a stdio MCP server, but ${sandboxProblem}`)}\n`);
    return EXIT.failed;
  }
  const keyFileProblem = await signingKeyFileProblem(args.values.worker === true, args.values['no-worker'] === true, io.env);
  if (keyFileProblem !== undefined) {
    io.stderr(`${terminalLines(`warden run: ${keyFileProblem.code}: ${keyFileProblem.message}`)}\n`);
    return EXIT.usage;
  }
  const json = args.values.json === true;
  // One line each: a line may quote text others wrote (a poller's identity, a server's or a tool's error).
  const log = (line: string) => io.stderr(`warden: ${terminalLine(line)}\n`);
  for (const notice of taskNotices(task)) log(`note: ${file}: ${notice.path}: ${notice.message}`);
  const stateDir = stateDirOf(io.env);
  let telemetry: ReturnType<typeof setupProcessTelemetry>;
  let worker: Promise<WardenWorker> | undefined;
  let runWorkerRecord: RunWorkerRegistration | undefined;
  // The client's connection; closed in `catch` when an error comes before its own try/finally.
  let connecting: ReturnType<typeof connectClient> | undefined;
  let connectionOwned = false;
  let deploymentBlobs: DeploymentBlobStore | undefined;
  // Signals, from here on (issue 17): Node's default action would kill the process with the task
  // it is starting (or started) left RUNNING, uncancelled, for the next worker to carry forward.
  let interruptedBy: InterruptSignal | undefined;
  /** Set once the start request went out; from then on a signal cancels rather than skips. */
  let startRequested = false;
  /** Set once the task's result is in hand: a signal then cancels nothing. */
  let taskEnded = false;
  /** Cancels the task; set once the start request settled. */
  let cancelTask: (() => void) | undefined;
  let abandon!: () => void;
  // Created now: a second signal while the start request is in flight is not lost.
  const abandoned = new Promise<'abandoned'>((resolve) => (abandon = () => resolve('abandoned')));
  /** Lets the client connect (it waits for the worker's start); called on any way out too. */
  let letClientConnect: () => void = () => undefined;
  let stopStarting!: (error: InterruptedBeforeStart) => void;
  const interruptedBeforeStart = new Promise<never>((_resolve, reject) => (stopStarting = reject));
  interruptedBeforeStart.catch(() => undefined);
  /** `step`, or the interruption when a signal comes first (only before the start request). */
  const unlessInterrupted = <T>(step: Promise<T>): Promise<T> => Promise.race([step, interruptedBeforeStart]);
  const onSignal = (signal: InterruptSignal) => {
    if (interruptedBy === undefined) {
      interruptedBy = signal;
      if (!startRequested) {
        log(`${signal}: stopping before the task starts; nothing is started (again to exit at once)`);
        stopStarting(new InterruptedBeforeStart());
        return;
      }
      // The result is in hand: nothing is left to cancel (the exit code stays the task's outcome).
      if (taskEnded) return;
      log(`${signal}: cancelling the task; its compensations run now (Ctrl-C again to stop waiting and leave them to the next worker)`);
      cancelTask?.();
      return;
    }
    // No task exists: nothing is left behind by exiting while the start-up is being undone.
    if (!startRequested) process.exit(INTERRUPT_EXIT_CODES[interruptedBy]);
    abandon();
  };
  const signalHandlers = (Object.keys(INTERRUPT_EXIT_CODES) as InterruptSignal[]).map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, handler] of signalHandlers) process.on(signal, handler);
  try {
    // One trace per task, from this client's StartWorkflow down; spans go to the custody ledger.
    telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-cli', env: io.env });
    markPhase('run: telemetry and custody ledger open', io.env);
    const taskQueue = taskQueueOf(args.values['task-queue'], io.env);
    const workerFlag = args.values.worker === true ? true : args.values['no-worker'] === true ? false : undefined;
    let useWorker = workerFlag ?? loadTemporalConfig(io.env).mode === 'embedded';
    const resolving = timedPhase('run: Temporal server found', resolveTemporal(io), io.env);
    // The client connects once this run's worker has begun creating its workers (or failed, or
    // none starts here): the connection's CPU then does not delay the workflow threads' start.
    let clientMayConnect!: () => void;
    const workersCreating = new Promise<void>((resolve) => (clientMayConnect = resolve));
    letClientConnect = clientMayConnect;
    connecting = resolving.then(async ({ config }) => {
      await workersCreating;
      markPhase('run: client connecting', io.env);
      // A namespace the server does not have fails here (connectClient asks for it), typed, and not at the start (or in the worker).
      const connected = await connectClient(config, telemetry === undefined ? {} : { interceptors: telemetryClientInterceptors(telemetry) });
      // Asked now, while the pollers are read and the worker starts: the start needs the answer
      // (cached per client, never rejects).
      void registeredSearchAttributes(connected.client);
      return connected;
    });
    // Awaited below (or never, when an earlier step fails): not an unhandled rejection meanwhile.
    connecting.catch(() => undefined);
    // The worker's parts (sandbox host, workflow bundle, native connection) start while the
    // server is found and the task is started: they are most of a run's start-up time.
    // This run's worker's identity: a nonce no other poller can have listed itself under before it.
    const ownIdentity = runWorkerIdentity();
    const startWorker = async () => {
      // The state folder's record of this worker: the one thing that lets a later run skip it, once
      // ended, in its note on other pollers. Without it (a folder it cannot write) it is noted.
      try {
        runWorkerRecord = recordRunWorker(stateDir, ownIdentity);
      } catch {
        // Stricter, not looser: later runs name this worker while the server lists it.
      }
      const { createWardenWorkerFromConfig, installQuietRuntime } = await import('../../worker/create-warden-worker.js');
      const { alertTextLine } = await import('../../activities/monitor-activities.js');
      // A signal came while the modules loaded: no worker (and no sandbox host) for a task that will not start.
      if (interruptedBy !== undefined) return;
      installQuietRuntime();
      markPhase('run: worker modules imported', io.env);
      worker = createWardenWorkerFromConfig(
        resolving.then((resolved) => resolved.config),
        {
          stateDir,
          env: io.env,
          configEnv: io.env,
          // Alerts are part of the progress on stderr; stdout keeps the summary (or the one JSON object).
          printAlert: (alert) => io.stderr(alertTextLine(alert)),
          onWorkersCreating: clientMayConnect,
          taskQueue,
          identity: ownIdentity,
          ...(early.workflowThread === undefined ? {} : { workflowThread: early.workflowThread }),
          ...(early.sandboxHost === undefined ? {} : { sandboxHost: early.sandboxHost }),
          ...(telemetry === undefined ? {} : { telemetry }),
        },
      );
      worker.then(clientMayConnect, clientMayConnect);
    };
    // A standalone worker is reused only when the state folder's records vouch for it: with no
    // record there, none can, so this run's worker starts now instead of after the server's list
    // of pollers (issue 17). The pollers are still read for the notes below.
    const mayReuseStandalone = useWorker && workerFlag === undefined && hasStandaloneWorkerRecords(stateDir);
    if (useWorker && !mayReuseStandalone) await unlessInterrupted(startWorker());
    // No worker started yet: the pollers (or the task) need the client now.
    if (worker === undefined) clientMayConnect();
    // Also with --worker (embedded server): the notes on other pollers are for that run too.
    if (useWorker && loadTemporalConfig(io.env).mode === 'embedded' && !(await unlessInterrupted(resolving)).server.started) {
      // A standalone `warden worker` on this machine and this state folder (the same keys, grant
      // stores and ledger) already polls the queue: the task runs there, warm, and this process
      // is a client only. See worker/standalone-worker.ts; --worker runs one here anyway.
      const { client } = await unlessInterrupted(connecting);
      // Workflow pollers pick the worker; the notes name activity pollers too (a tool call's or a
      // model turn's input reaches them), also those of the data-plane queue the task's tool calls
      // and commit are pinned to, `<queue>@<worker id>` (workflows/data-plane-affinity.ts): its
      // name is predictable and in every history, and Temporal hands its work to any poller.
      const dataPlaneQueue = dataPlaneQueueOf(taskQueue, workerIdOf(stateDir, io.env));
      const [pollers, activityPollers, dataPlanePollers] = await unlessInterrupted(
        Promise.all([recentPolls(client, taskQueue).catch(() => []), recentPolls(client, taskQueue, undefined, 'activity').catch(() => []), recentPolls(client, dataPlaneQueue, undefined, 'activity').catch(() => [])]),
      );
      // Each identity once, with the server's latest poll of it: an ended worker's record vouches only up to its end.
      const everyPoller = latestPolls(pollers, activityPollers);
      markPhase('run: task queue pollers read', io.env);
      const { worker: standalone } = liveStandaloneWorker(pollers, stateDir);
      const allQueues = latestPolls(everyPoller, dataPlanePollers);
      const { refused } = liveStandaloneWorker(allQueues, stateDir);
      const reused = standalone !== undefined && worker === undefined;
      // A poller's identity is its own claim: one the state folder's worker record does not vouch for is never used.
      for (const { identity, reason } of refused) log(`note: not reusing ${identity}, which claims to be a standalone worker of this state folder: ${reason}${reused ? '' : '; starting a worker in this process'}`);
      // An ended worker's last poll may still be open, and may be a stranger's under its identity: one line per poller, never vouched for silently.
      for (const open of possiblyOpenPolls(allQueues, stateDir)) log(`note: ${possiblyOpenPollNote(open)}`);
      // Temporal cannot keep another poller off the queue; the user is told who else may get the task.
      for (const [queue, queuePollers, handed] of [
        [taskQueue, everyPoller, 'this task and its input'],
        [dataPlaneQueue, dataPlanePollers, "this task's tool calls, their arguments and credentials"],
      ] as const) {
        for (const other of otherStateWorkers(queuePollers.map((poller) => poller.identity), stateDir)) log(`note: worker ${other} also polls ${queue} from another state folder: a task it runs uses that folder's keys and ledger`);
        for (const other of unvouchedPollers(queuePollers, stateDir, [ownIdentity])) log(`note: ${other} also polls ${queue} and is no worker this state folder vouches for: it may be handed ${handed} (give a queue only workers you trust; README, \`warden run\`)`);
      }
      if (reused) {
        useWorker = false;
        log(`running on the standalone worker ${standalone} (same state folder; --worker runs one in this process)`);
      }
    }
    if (useWorker && worker === undefined) await unlessInterrupted(startWorker());
    const { server } = await unlessInterrupted(resolving);
    const { client, connection } = await unlessInterrupted(connecting);
    connectionOwned = true;
    markPhase('run: client connected', io.env);
    try {
      // A worker that cannot start must fail the run before the task exists, not leave it waiting.
      const ready = worker === undefined ? undefined : await unlessInterrupted(worker);
      if (ready !== undefined) markPhase('run: worker created', io.env);
      // Its Temporal workers are created, and poll, while the blob store opens and the start
      // request is in flight (issue 17): one after the other, the start's round trip and the
      // workers' creation added up (the first workflow task then started 18-28 ms after the
      // workflow, now 15-19 ms at load 5-9). The worker runs until `stopWorkerWhen` is given
      // the task's end; on any other way out the `catch` below closes it (which stops the run).
      let stopWorkerWhen: (until: Promise<unknown>) => void = () => undefined;
      const workerUntil = new Promise<unknown>((resolve, reject) => (stopWorkerWhen = (until) => void until.then(resolve, reject)));
      let workerFailure: { error: unknown } | undefined;
      const workerRun = ready?.run(workerUntil);
      workerRun?.catch((error: unknown) => void (workerFailure = { error }));
      if (workerRun !== undefined) markPhase('run: worker running', io.env);
      // A long task's earlier steps and claim-checked outputs come back from where the workers
      // keep blobs: the shared database when WARDEN_DATABASE_URL is set, else the shared folder.
      // Opened before the task starts, so a database that cannot be reached fails the run early.
      deploymentBlobs = await unlessInterrupted(openDeploymentBlobStore(io.env, stateDir));
      // Loaded while the start request is in flight and the worker runs its first step (needed
      // only once the task reports); awaited after the start, so no signal waits on it.
      const formatting = import('../format-summary.js');
      formatting.catch(() => undefined);
      // Chosen here, not by startAgentTask: a signal during the request cancels this id even if the reply is lost.
      const workflowId = args.values['workflow-id'] ?? newTaskWorkflowId(task);
      let cancelling: Promise<unknown> = Promise.resolve();
      const reportCancelFailure = (error: unknown) => log(`could not cancel ${workflowId}: ${(error as Error).message}`);
      if (interruptedBy !== undefined) throw new InterruptedBeforeStart();
      // A worker whose Temporal workers could not be created fails the run before the task exists.
      if (workerFailure !== undefined) throw workerFailure.error;
      startRequested = true;
      markPhase('run: start requested', io.env);
      let handle: Awaited<ReturnType<typeof startAgentTask>>;
      try {
        handle = await startAgentTask(client, task, { taskQueue, workflowId });
      } catch (error) {
        // The server may have created the workflow before the reply was lost. Cancelled only when
        // the id is provably this run's: never after "already started" (the id is someone
        // else's running task), and a --workflow-id the user chose may name another task too.
        if (interruptedBy !== undefined) {
          if ((error as Error | undefined)?.name === 'WorkflowExecutionAlreadyStartedError') log(`${workflowId} was already running, not started by this run: left as it is`);
          else if (args.values['workflow-id'] === undefined) {
            await client.workflow.getHandle(workflowId).cancel().catch(reportCancelFailure);
          } else log(`the start of ${workflowId} may have reached the server; not cancelling an id this run cannot prove is its own: check \`warden status ${workflowId}\``);
        }
        throw error;
      }
      // Through the handle: bound to this run's first execution, so a later run under the same id is never cancelled by it.
      const cancelStarted = () => {
        cancelling = handle.cancel().catch(reportCancelFailure);
      };
      cancelTask = cancelStarted;
      if (interruptedBy !== undefined) cancelStarted();
      markPhase('run: workflow started', io.env);
      log(`started ${handle.workflowId} on ${server.address}${server.uiUrl ? ` (UI ${server.uiUrl}/namespaces/${server.namespace}/workflows/${encodeURIComponent(handle.workflowId)})` : ''}`);
      const { formatPendingApproval, formatRecovery, formatStep, formatSummary, shownStepKey } = await formatting;

      // Steps printed as they run are counted, not repeated, by the summary.
      const shown = new Map<string, string>();
      let firstProgress = true;
      const onProgress = (event: ProgressEvent) => {
        if (firstProgress) markPhase('run: first step reported', io.env);
        firstProgress = false;
        if (event.kind === 'approval') io.stderr(`${formatPendingApproval(event.workflowId, event.pending)}\n`);
        else if (!json) {
          io.stderr(`${formatStep(event.step, event.path)}\n`);
          shown.set(shownStepKey(event.workflowId, event.step.index), formatStep(event.step));
        }
      };
      const following = new AbortController();
      const follow = followAgentTask(handle, onProgress, { signal: following.signal, blobs: deploymentBlobs.blobs });
      const stopWatching = useWorker ? async () => undefined : watchForWorker(client, taskQueue, log);
      let outcome: TaskResult | 'abandoned';
      try {
        const finished = timedPhase('run: task ended (result in hand)', Promise.race([follow, abandoned]), io.env);
        stopWorkerWhen(finished);
        if (workerRun !== undefined) await workerRun;
        outcome = await finished;
        taskEnded = outcome !== 'abandoned';
        markPhase('run: worker shut down', io.env);
      } finally {
        await stopWatching();
        // Nothing may still be in flight when the connection closes below (a call retried on a
        // closed channel throws from a timer): stop following, and let a cancel request finish.
        following.abort();
        await follow.catch(() => undefined);
        await cancelling;
      }

      if (outcome === 'abandoned') {
        log(`left ${handle.workflowId} cancel-requested: the next worker on ${taskQueue} runs its compensations (warden worker; warden status ${handle.workflowId})`);
        return INTERRUPT_EXIT_CODES[interruptedBy ?? 'SIGINT'];
      }
      const result = outcome;
      markPhase('run: printing the result', io.env);
      io.stdout(json ? `${terminalJson(result, 2)}\n` : `${formatSummary(result, shown)}\n`);
      const outcomeExit = result.status === 'completed' ? EXIT.ok : EXIT.failed;
      if (interruptedBy !== undefined) {
        log(`${result.status === 'cancelled' ? 'cancelled' : `ended ${result.status}`} ${handle.workflowId}: ${formatRecovery(result)}`);
        if (result.status === 'cancelled') return INTERRUPT_EXIT_CODES[interruptedBy];
        // The cancel came too late to change anything: the exit code is the task's real outcome.
        log(`${interruptedBy} came after the task had ended ${result.status}: nothing was cancelled (exit ${outcomeExit}, the task's outcome)`);
      }
      return outcomeExit;
    } finally {
      await deploymentBlobs?.close().catch(() => undefined);
      await connection.close();
    }
  } catch (error) {
    letClientConnect();
    if (!connectionOwned) await (await connecting?.catch(() => undefined))?.connection.close().catch(() => undefined);
    // A worker made for a task that never started must still let go of its sandbox host.
    await worker?.then((w) => w.close(), () => undefined).catch(() => undefined);
    if (error instanceof InterruptedBeforeStart && interruptedBy !== undefined) {
      log(`${interruptedBy}: stopped before the task started; nothing was started`);
      return INTERRUPT_EXIT_CODES[interruptedBy];
    }
    if (error instanceof WardenError) {
      io.stderr(`warden run: ${error.code}: ${terminalLines(error.message)}\n`);
      // A namespace the server does not have is configuration, like a bad task file: exit 2.
      return exitCodeOfError(error);
    }
    throw error;
  } finally {
    // Flushes OTLP and closes the ledger; the task-end checkpoint was taken when the task ended.
    await timedPhase('run: telemetry shut down', Promise.resolve(telemetry?.shutdown()), io.env);
    if (worker !== undefined) await timedPhase('run: runtime released', (await import('../../worker/create-warden-worker.js')).releaseIdleRuntime(), io.env);
    runWorkerRecord?.ended();
    for (const [signal, handler] of signalHandlers) process.off(signal, handler);
  }
}

/**
 * With standalone workers only: says when no worker polls the task queue (the task would wait
 * silently), and again when one shows up. Returns a function that stops watching.
 */
function watchForWorker(client: Parameters<typeof recentPollers>[0], taskQueue: string, log: (line: string) => void): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let warned = false;
  let inFlight: Promise<void> = Promise.resolve();
  const check = async () => {
    let pollers: string[];
    try {
      pollers = await recentPollers(client, taskQueue);
    } catch {
      return; // the server cannot say; the task's own progress will
    }
    if (stopped) return;
    if (pollers.length === 0 && !warned) {
      warned = true;
      log(`no worker is polling task queue ${taskQueue}: the task waits until one does (start one with: warden worker --task-queue ${taskQueue})`);
    } else if (pollers.length > 0 && warned) {
      log(`a worker is polling ${taskQueue} now (${pollers[0]})`);
      return;
    } else if (pollers.length > 0) return;
    timer = setTimeout(() => void (inFlight = check()), WORKER_CHECK_MS);
  };
  inFlight = check();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await inFlight;
  };
}
