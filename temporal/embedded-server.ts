/**
 * Gives Warden a Temporal server: the configured cluster in external mode, otherwise a
 * `temporal server start-dev` that Warden starts once per state folder and then reuses.
 *
 * Invariants:
 * - The embedded server binds 127.0.0.1 only; it has no authentication.
 * - At most one start per state folder runs at a time (lock file), and `server.json` names a
 *   server only once it was spawned by us; a record whose pid is dead is discarded.
 * - A port held by something that does not answer the Temporal gRPC API is never "reused":
 *   that is `ERR_TEMPORAL_PORT_IN_USE`, never a silent connection to the wrong service.
 * - The server runs detached in its own process group so the CLI can exit while it keeps
 *   running; stopping signals the whole group.
 */
import { stateDirOf } from '../state-dir';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { connect as netConnect, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { z } from 'zod';
import { TemporalServerError } from '../errors';
import { checkNamespace } from './connect';
import { processRuns, readProcStat } from '../process-stat';
import { acquireFileLock } from '../file-lock';
import { findOrBuildTemporalCli, formatDuration, type LogFn } from './temporal-cli';
import { EMBEDDED_TEMPORAL_HOST, loadEmbeddedPorts, loadTemporalConfig, toConnectionOptions, type TemporalConfig } from './temporal-config';
import { ensureSearchAttributes, startDevSearchAttributeFlags } from './search-attribute-registry';
import { missingDevServerSettings, startDevDynamicConfigFlags } from './dev-server-settings';
import { terminalWriter } from '../terminal-text';
import { longDelay, setLongTimeout, type LongTimeout } from '../long-timer';

const DEFAULT_READY_TIMEOUT_MS = 60_000;
const PROBE_TIMEOUT_MS = 3_000;
/** The second, last chance of a server that did not answer within PROBE_TIMEOUT_MS (a loaded machine). */
const PATIENT_PROBE_TIMEOUT_MS = 12_000;
const LOG_TAIL_LINES = 25;
/**
 * How long a held port may take to be let go before it is named in use: a dev server asked to stop
 * closes its listeners within a few seconds (`warden server stop` waits for its process group).
 */
const PORT_RELEASE_WAIT_MS = 10_000;
const PORT_RELEASE_POLL_MS = 250;

/** What `<stateDir>/temporal/server.json` holds about the server this state folder started. */
export const EmbeddedServerRecordSchema = z.object({
  pid: z.number().int().positive(),
  port: z.number().int().min(1).max(65535),
  uiPort: z.number().int().min(1).max(65535),
  /** Absent in records of servers started before the HTTP port was pinned. */
  httpPort: z.number().int().min(1).max(65535).optional(),
  startedAt: z.string(),
  /**
   * The server process's start time (/proc/<pid>/stat field 22, process-stat.ts), so that a pid
   * the kernel later gave to another `temporal server start-dev` (another state folder's, a
   * user's own) is never taken for this folder's server, reused or stopped. Absent in records
   * written before it was kept: those fall back to the command line alone.
   */
  startTime: z.string().regex(/^\d+$/).optional(),
  cliPath: z.string(),
});
export type EmbeddedServerRecord = z.infer<typeof EmbeddedServerRecordSchema>;

export interface EnsureTemporalServerOptions {
  env?: NodeJS.ProcessEnv;
  /** Defaults to {@link stateDirOf}. */
  stateDir?: string;
  /** Progress for humans; defaults to writing `warden: <line>` to stderr. */
  log?: LogFn;
  /** Where a go-built CLI is cached; defaults to `WARDEN_CACHE_DIR` / XDG / `~/.cache/warden`. */
  cacheDir?: string;
  /** How long a freshly started server may take to answer. Default 60 s. */
  readyTimeoutMs?: number;
}

export interface TemporalServerInfo {
  mode: 'external' | 'embedded';
  /** `host:port` for `Connection.connect` / `NativeConnection.connect`. */
  address: string;
  namespace: string;
  /** Web UI of an embedded server that this state folder started. */
  uiUrl?: string;
  /** True when this call spawned the server. */
  started: boolean;
  /** True when an already running server was found and is used as is. */
  reused: boolean;
  /** Process id of the embedded server, when Warden knows it. */
  pid?: number;
}

export interface EmbeddedServerStatus {
  stateDir: string;
  logFile: string;
  /** The recorded server, if any (possibly dead). */
  record?: EmbeddedServerRecord;
  /** The recorded process exists and is a Temporal dev server. */
  running: boolean;
  /** It answers `getSystemInfo`. */
  answering: boolean;
  address?: string;
  uiUrl?: string;
}

function serverDir(stateDir: string): string {
  return join(stateDir, 'temporal');
}
function recordFile(stateDir: string): string {
  return join(serverDir(stateDir), 'server.json');
}
function logFileOf(stateDir: string): string {
  return join(serverDir(stateDir), 'server.log');
}

/** On a terminal, controls in a line (a server's or a process's text quoted in it) are shown escaped: ../terminal-text.ts. */
const writeStderr = terminalWriter(process.stderr);
const stderrLog: LogFn = (line) => {
  writeStderr(`warden: ${line}\n`);
};

/**
 * Makes sure a Temporal server is reachable and says where. External mode (`TEMPORAL_ADDRESS`)
 * returns the configured address without starting or contacting anything. Embedded mode reuses
 * the server recorded in the state folder or any Temporal server already on the port, and
 * otherwise starts `temporal server start-dev` and waits until it answers.
 * @throws ConfigError `ERR_CONFIG_INVALID` for bad environment variables.
 * @throws TemporalServerError `ERR_TEMPORAL_PORT_IN_USE`, `ERR_TEMPORAL_CLI_BUILD`, `ERR_TEMPORAL_START`.
 */
export async function ensureTemporalServer(options: EnsureTemporalServerOptions = {}): Promise<TemporalServerInfo> {
  const env = options.env ?? process.env;
  const log = options.log ?? stderrLog;
  const config = loadTemporalConfig(env);
  if (config.mode === 'external') return { mode: 'external', address: config.address, namespace: config.namespace, started: false, reused: false };

  const { port, uiPort, httpPort } = loadEmbeddedPorts(env);
  const stateDir = resolve(options.stateDir ?? stateDirOf(env));
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  await mkdir(serverDir(stateDir), { recursive: true });
  const release = await acquireFileLock(join(serverDir(stateDir), 'start.lock'), {
    timeoutMs: readyTimeoutMs + 60_000,
    onWait: (pid) => log(`another Warden process (pid ${pid ?? '?'}) is starting the Temporal server; waiting for it`),
    timeoutError: () => startError(`timed out waiting for another process to start the Temporal server of ${stateDir}`, stateDir),
  });
  try {
    return await ensureUnderLock(config, { env, log, stateDir, port, uiPort, httpPort, readyTimeoutMs, cacheDir: options.cacheDir });
  } finally {
    await release();
  }
}

interface EnsureContext {
  env: NodeJS.ProcessEnv;
  log: LogFn;
  stateDir: string;
  port: number;
  uiPort: number;
  httpPort: number;
  readyTimeoutMs: number;
  cacheDir: string | undefined;
}

async function ensureUnderLock(config: TemporalConfig, ctx: EnsureContext): Promise<TemporalServerInfo> {
  const { port, uiPort, stateDir, log } = ctx;
  const address = `${EMBEDDED_TEMPORAL_HOST}:${port}`;
  const base = { mode: 'embedded' as const, address, namespace: config.namespace };

  const record = await readServerRecord(stateDir);
  if (record !== undefined) {
    if (isOurServerProcess(record)) {
      if (record.port !== port) {
        throw startError(
          `the Temporal server of ${stateDir} (pid ${record.pid}) is running on port ${record.port}, but WARDEN_TEMPORAL_PORT asks for ${port}. ` +
            `Stop it first (stopEmbeddedServer / \`warden server stop\`) or use port ${record.port}.`,
          stateDir,
        );
      }
      if (await probePatiently(address)) {
        noteMissingSettings(record.pid, log);
        await registerSearchAttributes(address, config.namespace, log);
        return { ...base, uiUrl: uiUrlOf(record.uiPort), started: false, reused: true, pid: record.pid };
      }
      log(`the recorded Temporal server (pid ${record.pid}) does not answer on ${address}; restarting it`);
      await stopProcessGroup(record, 10_000);
    }
    await rm(recordFile(stateDir), { force: true });
  }

  // A port held by a server on its way out (a test run's, `warden server stop`'s) is free a few
  // seconds later: each held port gets that long before it is named, from one shared budget.
  let releaseBy: number | undefined;
  const released = (held: number) => portReleasedBy(held, (releaseBy ??= Date.now() + PORT_RELEASE_WAIT_MS));
  if (await isPortInUse(port)) {
    if (await probePatiently(address)) {
      log(`reusing the Temporal server already listening on ${address}`);
      await registerSearchAttributes(address, config.namespace, log);
      return { ...base, started: false, reused: true };
    }
    if (!(await released(port))) throw new TemporalServerError(
      'ERR_TEMPORAL_PORT_IN_USE',
      `port ${port} on ${EMBEDDED_TEMPORAL_HOST} is in use by something that is not a Temporal server ` +
        `(it did not answer as one, nor let the port go within ${PORT_RELEASE_WAIT_MS / 1000} s, as a server shutting down would). ` +
        `Free it, choose another port for the embedded server with WARDEN_TEMPORAL_PORT=<port>, or point Warden at an existing cluster with TEMPORAL_ADDRESS=<host:port>.`,
      { details: { port, variable: 'WARDEN_TEMPORAL_PORT' } },
    );
  }
  if ((await isPortInUse(uiPort)) && !(await released(uiPort))) {
    throw new TemporalServerError(
      'ERR_TEMPORAL_PORT_IN_USE',
      `port ${uiPort} on ${EMBEDDED_TEMPORAL_HOST} (the Temporal web UI) is in use. ` +
        `Choose another with WARDEN_TEMPORAL_UI_PORT=<port>, or point Warden at an existing cluster with TEMPORAL_ADDRESS=<host:port>.`,
      { details: { port: uiPort, variable: 'WARDEN_TEMPORAL_UI_PORT' } },
    );
  }

  if ((await isPortInUse(ctx.httpPort)) && !(await released(ctx.httpPort))) {
    throw new TemporalServerError(
      'ERR_TEMPORAL_PORT_IN_USE',
      `port ${ctx.httpPort} on ${EMBEDDED_TEMPORAL_HOST} (the Temporal frontend's HTTP API) is in use. ` +
        `Choose another with WARDEN_TEMPORAL_HTTP_PORT=<port>, or point Warden at an existing cluster with TEMPORAL_ADDRESS=<host:port>.`,
      { details: { port: ctx.httpPort, variable: 'WARDEN_TEMPORAL_HTTP_PORT' } },
    );
  }

  const cliPath = await findOrBuildTemporalCli({ env: ctx.env, cacheDir: ctx.cacheDir, log });
  const started = await startServer(config, cliPath, ctx);
  // start-dev registers its --search-attribute flags only when it creates the database: a server
  // restarted on an older database gets them here.
  await registerSearchAttributes(address, config.namespace, log);
  return { ...base, ...started };
}

async function startServer(config: TemporalConfig, cliPath: string, ctx: EnsureContext): Promise<Pick<TemporalServerInfo, 'uiUrl' | 'started' | 'reused' | 'pid'>> {
  const { port, uiPort, stateDir, log } = ctx;
  const dir = serverDir(stateDir);
  const address = `${EMBEDDED_TEMPORAL_HOST}:${port}`;
  const args = [
    'server', 'start-dev',
    '--ip', EMBEDDED_TEMPORAL_HOST,
    '--port', String(port),
    '--ui-port', String(uiPort),
    '--http-port', String(ctx.httpPort),
    '--db-filename', join(dir, 'temporal.db'),
    '--log-format', 'json',
    '--log-level', 'warn',
    '--color', 'never',
    ...(config.namespace !== 'default' ? ['--namespace', config.namespace] : []),
    // Warden's search attributes (WardenUser, WardenStatus, ...), so the UI can filter tasks.
    ...startDevSearchAttributeFlags(),
    // A one-shard server's task-queue read rates (dev-server-settings.ts): without them every step waits on a 20/s limiter.
    ...startDevDynamicConfigFlags(),
  ];
  // The CLI reads TEMPORAL_* as client settings; none of them is meant for the dev server.
  const childEnv = Object.fromEntries(Object.entries(ctx.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
  const startedAt = Date.now();
  const logFd = openSync(logFileOf(stateDir), 'w');
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  let pid: number | undefined;
  try {
    const child = spawn(cliPath, args, { cwd: dir, env: childEnv, detached: true, stdio: ['ignore', logFd, logFd] });
    child.once('error', (error) => {
      spawnError = error;
    });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(logFd);
  }
  if (pid === undefined) {
    await new Promise((r) => setImmediate(r)); // let 'error' arrive
    throw startError(`could not run ${cliPath}: ${spawnError?.message ?? 'spawn failed'}`, stateDir, spawnError);
  }
  const startTime = readProcStat(pid)?.startTime;
  const record: EmbeddedServerRecord = { pid, port, uiPort, httpPort: ctx.httpPort, startedAt: new Date(startedAt).toISOString(), ...(startTime === undefined ? {} : { startTime }), cliPath };
  await writeServerRecord(stateDir, record);

  const deadline = startedAt + ctx.readyTimeoutMs;
  for (;;) {
    if (exited !== undefined || spawnError !== undefined || !processRuns(pid)) {
      await rm(recordFile(stateDir), { force: true });
      const how = spawnError ? `failed: ${spawnError.message}` : `exited (${exited?.signal ?? `code ${exited?.code ?? '?'}`})`;
      throw startError(`the Temporal server ${how} before answering on ${address}`, stateDir, spawnError);
    }
    const probeMs = Math.min(PROBE_TIMEOUT_MS, Math.max(deadline - Date.now(), 500));
    // A TCP check first: a gRPC probe against a closed port backs off for a second.
    if ((await isPortInUse(port)) && (await probeTemporal(address, { timeoutMs: probeMs, namespace: config.namespace }))) break;
    if (Date.now() >= deadline) {
      await stopProcessGroup(record, 5_000);
      await rm(recordFile(stateDir), { force: true });
      throw startError(`the Temporal server did not answer on ${address} within ${formatDuration(ctx.readyTimeoutMs)}`, stateDir);
    }
    await sleep(50);
  }
  log(`started the Temporal server on ${address} (web UI ${uiUrlOf(uiPort)}) in ${((Date.now() - startedAt) / 1000).toFixed(1)}s, state in ${dir}`);
  return { uiUrl: uiUrlOf(uiPort), started: true, reused: false, pid };
}

/**
 * Makes sure the embedded server (started now or earlier, or someone else's on the port) has
 * Warden's search attributes in the namespace. Best effort: a server that refuses is reported,
 * and tasks then run without search attributes.
 * @throws TemporalServerError `ERR_TEMPORAL_NAMESPACE_NOT_FOUND` when the server has no such namespace.
 */
async function registerSearchAttributes(address: string, namespace: string, log: LogFn): Promise<void> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: PROBE_TIMEOUT_MS });
  } catch (error) {
    log(`could not register Warden's search attributes on ${address}: ${error instanceof Error ? error.message : String(error)}; tasks run without them`);
    return;
  }
  try {
    // A namespace the server does not have is the user's setting, not a registration failure:
    // typed and named here, before a bare gRPC NOT_FOUND could be logged as one (temporal/connect.ts).
    await checkNamespace(connection.workflowService, { address, namespace, mode: 'embedded' });
    try {
      const { added } = await ensureSearchAttributes(connection, namespace);
      if (added.length > 0) log(`registered search attributes ${added.join(', ')} on ${address} (namespace ${namespace})`);
    } catch (error) {
      log(`could not register Warden's search attributes on ${address}: ${error instanceof Error ? error.message : String(error)}; tasks run without them`);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Stops the embedded server recorded in `stateDir`: SIGTERM to its process group, then SIGKILL
 * after `timeoutMs`. Removes the record. A server Warden did not start is never touched.
 */
export async function stopEmbeddedServer(stateDir: string = stateDirOf(), options: { timeoutMs?: number } = {}): Promise<{ stopped: boolean; pid?: number }> {
  const dir = resolve(stateDir);
  const record = await readServerRecord(dir);
  if (record === undefined) return { stopped: false };
  const running = isOurServerProcess(record);
  if (running) await stopProcessGroup(record, options.timeoutMs ?? 10_000);
  await rm(recordFile(dir), { force: true });
  return { stopped: running, pid: record.pid };
}

/** What the state folder knows about its embedded server, and whether it answers. */
export async function embeddedServerStatus(stateDir: string = stateDirOf()): Promise<EmbeddedServerStatus> {
  const dir = resolve(stateDir);
  const record = await readServerRecord(dir);
  const base = { stateDir: dir, logFile: logFileOf(dir) };
  if (record === undefined) return { ...base, running: false, answering: false };
  const address = `${EMBEDDED_TEMPORAL_HOST}:${record.port}`;
  const running = isOurServerProcess(record);
  const answering = running && (await probeTemporal(address, { timeoutMs: PROBE_TIMEOUT_MS }));
  return { ...base, record, running, answering, address, uiUrl: uiUrlOf(record.uiPort) };
}

/** The record in `<stateDir>/temporal/server.json`, or undefined when absent or unreadable. */
export async function readServerRecord(stateDir: string): Promise<EmbeddedServerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(recordFile(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = EmbeddedServerRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function writeServerRecord(stateDir: string, record: EmbeddedServerRecord): Promise<void> {
  const tmp = `${recordFile(stateDir)}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
  await rename(tmp, recordFile(stateDir));
}

/**
 * True when a Temporal frontend answers `getSystemInfo` at `address` within `timeoutMs` (and,
 * with `namespace`, knows that namespace: a fresh dev server is only ready once it does).
 * Called explicitly (not via `Connection.connect`, which accepts servers that answer
 * UNIMPLEMENTED) so any other gRPC service on the port counts as "not Temporal".
 */
export async function probeTemporal(
  address: string,
  options: { timeoutMs: number; config?: TemporalConfig; namespace?: string } = { timeoutMs: PROBE_TIMEOUT_MS },
): Promise<boolean> {
  const connectionOptions = options.config ? { ...toConnectionOptions(options.config), address } : { address };
  // No retry interceptor: a probe asks once. The SDK's default retries on UNAVAILABLE from a
  // timer, and a retry that fires after the connection below is closed throws "Channel has been
  // shut down" as an uncaught exception.
  const connection = Connection.lazy({ ...connectionOptions, connectTimeout: options.timeoutMs, interceptors: [] });
  let timer: LongTimeout | undefined;
  const call = connection.withDeadline(Date.now() + options.timeoutMs, async () => {
    await connection.workflowService.getSystemInfo({});
    if (options.namespace !== undefined) await connection.workflowService.describeNamespace({ namespace: options.namespace });
  });
  const settled = call.then(
    () => true,
    () => false,
  );
  try {
    // The deadline bounds the call; the timer bounds everything else (channel setup).
    const timeout = new Promise<false>((resolve) => {
      timer = setLongTimeout(() => resolve(false), options.timeoutMs + 500);
    });
    return await Promise.race([settled, timeout]);
  } finally {
    timer?.clear();
    // Closed only once the call has settled (its deadline guarantees it does), so nothing of it
    // can touch the closed channel.
    await settled;
    await connection.close().catch(() => {});
  }
}

/**
 * {@link probeTemporal} for deciding whether a listening port is a Temporal server: a server
 * that answered "no" (an HTTP/1 reply, a reset) is not one; a probe that merely ran out of time
 * may have met a Temporal server on a busy machine, so it is asked once more with a longer
 * deadline before anyone is told the port belongs to something else.
 */
async function probePatiently(address: string): Promise<boolean> {
  const started = Date.now();
  if (await probeTemporal(address, { timeoutMs: PROBE_TIMEOUT_MS })) return true;
  if (Date.now() - started < PROBE_TIMEOUT_MS) return false;
  return probeTemporal(address, { timeoutMs: PATIENT_PROBE_TIMEOUT_MS });
}

/**
 * Whether `port` on 127.0.0.1 becomes free by `deadline` (epoch ms), checked every
 * PORT_RELEASE_POLL_MS; false at once for a deadline already past.
 */
async function portReleasedBy(port: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, PORT_RELEASE_POLL_MS));
    if (!(await isPortInUse(port))) return true;
  }
  return false;
}

/** Something accepts connections on 127.0.0.1:port, or the port cannot be bound there. */
export async function isPortInUse(port: number, host: string = EMBEDDED_TEMPORAL_HOST): Promise<boolean> {
  const accepts = await new Promise<boolean>((done) => {
    const socket = netConnect({ port, host });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(true); // a listener with a full backlog, or a firewall: not usable either way
    });
    socket.on('error', () => done(false)); // `done` is idempotent: a promise settles once
  });
  if (accepts) return true;
  return new Promise<boolean>((done) => {
    const server = createServer();
    server.once('error', () => done(true));
    server.listen({ port, host, exclusive: true }, () => server.close(() => done(false)));
  });
}

/**
 * Says so when the recorded server (started by an older Warden) runs without the settings this
 * Warden starts it with: it keeps pacing tasks until restarted, which reuse never does by itself
 * (workers and tasks may be using it).
 */
function noteMissingSettings(pid: number, log: LogFn): void {
  if (process.platform !== 'linux') return;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return; // gone meanwhile: the probe above answered, the next call sees it
  }
  const missing = missingDevServerSettings(argv);
  if (missing.length > 0) {
    log(`the Temporal server (pid ${pid}) was started without ${missing.join(', ')}; activity and workflow tasks wait on its default read rates until it restarts (\`warden server stop\`, then any command starts it again)`);
  }
}

/**
 * The recorded server still runs: its pid the same process (its start time, when recorded:
 * processRuns) and a Temporal dev server (its command line; all a record without a start time has
 * against a recycled pid). A pid now a thread's id is no process (processRuns): its command line
 * is its process's, and stopping it would signal that whole process. Never pid 1: a server Warden
 * started is its child, and pid 1 is a namespace's init (a container's `temporal server start-dev`),
 * whose "process group" kill(-1) would be every process of the namespace (a copied or edited record).
 */
function isOurServerProcess({ pid, startTime }: Pick<EmbeddedServerRecord, 'pid' | 'startTime'>): boolean {
  if (pid <= 1 || !processRuns(pid, startTime)) return false;
  if (process.platform !== 'linux') return true;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('start-dev');
  } catch {
    return false;
  }
}

async function stopProcessGroup({ pid, startTime }: Pick<EmbeddedServerRecord, 'pid' | 'startTime'>, timeoutMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    if (pid <= 1) return; // kill(-1) signals every process the caller may signal, not a group
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  if (await waitForExit(pid, startTime, timeoutMs)) return;
  signal('SIGKILL');
  await waitForExit(pid, startTime, 5_000);
}

async function waitForExit(pid: number, startTime: string | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processRuns(pid, startTime)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

function uiUrlOf(uiPort: number): string {
  return `http://${EMBEDDED_TEMPORAL_HOST}:${uiPort}`;
}

function startError(message: string, stateDir: string, cause?: unknown): TemporalServerError {
  const logFile = logFileOf(stateDir);
  const tail = readLogTail(logFile);
  return new TemporalServerError('ERR_TEMPORAL_START', `${message}${tail ? `\n--- ${logFile} (tail) ---\n${tail}` : `\n(log: ${logFile})`}`, {
    details: { stateDir, logFile, logTail: tail },
    cause,
  });
}

function readLogTail(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function sleep(ms: number): Promise<void> {
  return longDelay(ms);
}
