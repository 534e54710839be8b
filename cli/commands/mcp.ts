/**
 * `warden mcp …`: put an existing agent behind Warden (`serve`), install MCP server packages for
 * stdio servers (`install`), and show what a task's servers offer (`tools`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, TaskFileError, WardenError } from '../../errors';
import { McpConnection } from '../../mcp/mcp-connection';
import { createTaskSession, MIN_BEARER_TOKEN_CHARS, serveTaskOverHttp, stdioServerTransport, type TaskSessionOptions } from '../../mcp/task-session-server';
import { defaultMcpPackagesDir } from '../../mcp/resolve-server-command';
import { loadTaskFile } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { telemetryClientInterceptors } from '../../telemetry/temporal-interceptors';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { defaultCacheDir } from '../../temporal/temporal-cli';
import { createWardenWorker, installQuietRuntime } from '../../worker/create-warden-worker';
import { recordRunWorker, runWorkerIdentity, type RunWorkerRegistration } from '../../worker/standalone-worker';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError, INTERRUPT_EXIT_CODES, type InterruptSignal } from '../exit-codes';
import { taskQueueOf } from '../default-task-queue';
import { stateDirOf } from '../../state-dir';
import { checkWorkerId } from '../../dataplane/shared-storage';
import { osSandboxProblem, taskNeedsOsSandbox } from '../../sandbox/os/os-sandbox-availability';
import { formatSummary } from '../format-summary';
import { parseCommandArgs } from '../parse-command-args';
import { resolveTemporal } from '../temporal-client';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const MCP_USAGE = `usage: warden mcp serve <task-file> [--http [--port <n>] [--token-env <NAME> | --no-auth]] [--task-queue <name>] [--worker | --no-worker]
       warden mcp install <package>... [--allow-scripts]
       warden mcp tools <task-file>

  serve     expose the task's granted tools as an MCP server, for an existing agent (IDE, CLI agent,
            SDK client): each MCP session is one Warden task (agent.model.driver: mcp-client), each
            tools/call one guarded step. stdio by default; --http serves streamable HTTP on
            127.0.0.1 (--port, default a free one; the URL is printed on stderr). Every HTTP request
            must carry "Authorization: Bearer <token>": the value of --token-env NAME, or else a
            token generated at start and printed once on stderr. --no-auth serves without any
            credential (any local process can then drive the task)
  install   install MCP server packages for stdio servers (they run without network, so nothing is
            fetched when a task starts); into WARDEN_MCP_PACKAGES, default <cache>/mcp-packages.
            Install scripts are not run unless --allow-scripts
  tools     start the task's MCP servers, print each one's tools under their Warden names and the pin`;

export async function mcpCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'serve':
      return serveCommand(rest, io);
    case 'install':
      return installCommand(rest, io);
    case 'tools':
      return toolsCommand(rest, io);
    case '--help':
    case '-h':
    case 'help':
      io.stdout(`${MCP_USAGE}\n`);
      return EXIT.ok;
    default:
      io.stderr(`${terminalLine(`warden mcp: ${sub === undefined ? 'missing sub-command' : `unknown sub-command "${sub}"`}`)}\n${MCP_USAGE}\n`);
      return EXIT.usage;
  }
}

/** The MCP packages folder the worker and `install` use. */
export function mcpPackagesDirOf(env: NodeJS.ProcessEnv): string {
  return env.WARDEN_MCP_PACKAGES ? env.WARDEN_MCP_PACKAGES : defaultMcpPackagesDir(defaultCacheDir(env));
}

async function loadTask(command: string, file: string | undefined, extra: string[], io: CliIo): Promise<Task | number> {
  if (file === undefined || extra.length > 0) {
    io.stderr(`${terminalLine(`warden mcp ${command}: expected exactly one task file`)}\n${MCP_USAGE}\n`);
    return EXIT.usage;
  }
  try {
    return await loadTaskFile(file);
  } catch (error) {
    if (error instanceof TaskFileError) {
      io.stderr(`${terminalLine(`warden mcp ${command}: ${error.code}: ${error.message}`)}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}

async function serveCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('mcp serve', MCP_USAGE, argv, io, {
    http: { type: 'boolean', default: false },
    port: { type: 'string' },
    'token-env': { type: 'string' },
    'no-auth': { type: 'boolean', default: false },
    'task-queue': { type: 'string' },
    worker: { type: 'boolean' },
    'no-worker': { type: 'boolean' },
  });
  if (typeof args === 'number') return args;
  try {
    taskQueueOf(args.values['task-queue'], io.env);
    checkWorkerId(stateDirOf(io.env), io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`warden mcp serve: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const [file, ...extra] = args.positionals;
  const task = await loadTask('serve', file, extra, io);
  if (typeof task === 'number') return task;
  if (task.agent.model.driver !== 'mcp-client') {
    io.stderr(`${terminalLine(`warden mcp serve: ${file}: agent.model.driver must be "mcp-client" (the connecting MCP client is the agent), not "${task.agent.model.driver}"`)}\n`);
    return EXIT.usage;
  }
  const sandboxProblem = taskNeedsOsSandbox(task) ? osSandboxProblem(io.env) : undefined;
  if (sandboxProblem !== undefined) {
    io.stderr(`${terminalLine(`warden mcp serve: ERR_OS_SANDBOX_UNAVAILABLE: ${file} uses proc.run or a stdio MCP server, but ${sandboxProblem}`)}\n`);
    return EXIT.failed;
  }
  const port = args.values.port === undefined ? undefined : Number(args.values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    io.stderr(`${terminalLine(`warden mcp serve: --port must be a port number, not "${args.values.port}"`)}\n`);
    return EXIT.usage;
  }
  const noAuth = args.values['no-auth'] === true;
  if ((port !== undefined || args.values['token-env'] !== undefined || noAuth) && args.values.http !== true) {
    io.stderr('warden mcp serve: --port, --token-env and --no-auth need --http\n');
    return EXIT.usage;
  }
  const tokenEnv = args.values['token-env'];
  if (tokenEnv !== undefined && noAuth) {
    io.stderr('warden mcp serve: --token-env and --no-auth exclude each other\n');
    return EXIT.usage;
  }
  const bearerToken = tokenEnv === undefined ? undefined : io.env[tokenEnv];
  if (tokenEnv !== undefined && (bearerToken === undefined || bearerToken.length < MIN_BEARER_TOKEN_CHARS)) {
    io.stderr(`${terminalLine(`warden mcp serve: --token-env ${tokenEnv}: the variable must hold a token of at least ${MIN_BEARER_TOKEN_CHARS} characters`)}\n`);
    return EXIT.usage;
  }
  // stdout may be the MCP channel: everything else goes to stderr.
  // One line each: a line may quote text others wrote (a poller's identity, a server's or a tool's error).
  const log = (line: string) => io.stderr(`warden: ${terminalLine(line)}\n`);
  let telemetry: ReturnType<typeof setupProcessTelemetry>;
  try {
    const { config, server, stateDir } = await resolveTemporal({ ...io, stdout: io.stderr });
    const useWorker = args.values['no-worker'] === true ? false : args.values.worker === true || server.mode === 'embedded';
    telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-mcp', env: io.env });
    const { client, connection } = await connectClient(config, telemetry === undefined ? {} : { interceptors: telemetryClientInterceptors(telemetry) });
    const taskQueue = taskQueueOf(args.values['task-queue'], io.env);
    let stopWorker: () => void = () => undefined;
    let workerDone: Promise<void> = Promise.resolve();
    let workerRecord: RunWorkerRegistration | undefined;
    if (useWorker) {
      installQuietRuntime();
      // Polls as `warden run`'s worker does, under a fresh nonce identity the state folder records
      // (worker/standalone-worker.ts): once this server has ended, the runs that follow in the
      // server's ~90 s poller memory do not name its worker as a stranger. Without the record (a
      // folder it cannot write) it is named: stricter, not looser.
      const identity = runWorkerIdentity();
      try {
        workerRecord = recordRunWorker(stateDir, identity);
      } catch {
        workerRecord = undefined;
      }
      const workerConnection = await connectWorkerConnection(config);
      const worker = await createWardenWorker({
        connection: workerConnection,
        namespace: config.namespace,
        taskQueue,
        stateDir,
        cacheDir: join(stateDir, 'cache'),
        env: io.env,
        mcpPackagesDir: mcpPackagesDirOf(io.env),
        identity,
        ...(telemetry === undefined ? {} : { telemetry }),
      });
      const stopped = new Promise<void>((resolve) => (stopWorker = resolve));
      workerDone = worker.run(stopped).finally(() => workerConnection.close());
    }
    // One signal handling for both transports. A client that stops its server with a signal (the
    // MCP stdio shutdown escalates from closing stdin to SIGTERM), a closed terminal or dropped
    // ssh (SIGHUP), Ctrl-C: Node's default would exit with every session's task left running for
    // the next worker. Every session's task is cancelled (its compensations run) and the exit code
    // says which signal (130/143/129); a second signal stops waiting for the tasks' end once the
    // cancellations have reached the server.
    let cancelAll: () => { requested: Promise<unknown> } = () => ({ requested: Promise.resolve() });
    const signals = watchInterruptSignals((first) => void cancelAll().requested.finally(() => process.exit(INTERRUPT_EXIT_CODES[first])));
    try {
      const sessionOptions = {
        client,
        taskQueue,
        task,
        log,
        onStarted: (workflowId: string) => log(`session started task ${workflowId}`),
        // The summary's lines are made safe one by one (format-summary.ts).
        onEnded: (result: Parameters<NonNullable<TaskSessionOptions['onEnded']>>[0]) => {
          log(`task ${result.workflowId} ended:`);
          io.stderr(`${formatSummary(result)}\n`);
        },
      };
      if (args.values.http === true) {
        const httpServer = await serveTaskOverHttp({
          ...sessionOptions,
          ...(port === undefined ? {} : { port }),
          ...(bearerToken === undefined ? {} : { bearerToken }),
          ...(noAuth ? { allowUnauthenticated: true } : {}),
        });
        cancelAll = () => httpServer.cancel();
        log(`serving ${file} over MCP streamable HTTP at ${httpServer.url} (Ctrl-C to stop)`);
        if (noAuth) log('WARNING: --no-auth: any local process can open sessions of this task');
        // Printed once, on this terminal only (like a notebook server's token): it is never logged elsewhere.
        else if (tokenEnv === undefined) log(`clients must send "Authorization: Bearer ${httpServer.bearerToken}" (a token made for this run; set --token-env NAME to choose it)`);
        else log(`clients must send "Authorization: Bearer <value of ${tokenEnv}>"`);
        const signal = await signals.interrupted;
        log(`${signal}: cancelling every session's task; (again to stop waiting)`);
        await httpServer.cancel().ended;
        await httpServer.close();
        return INTERRUPT_EXIT_CODES[signal];
      }
      const session = createTaskSession(sessionOptions);
      const transport = stdioServerTransport();
      // The client is gone when its end of either pipe is: stdin ends or fails, or a write to
      // stdout fails (EPIPE). The session then ends as the agent's own end, even while a call
      // waits (a call held for approval is withdrawn): a process left behind would keep its task
      // running with nobody to answer.
      const closed = new Promise<void>((resolve) => {
        transport.onclose = () => resolve();
        process.stdin.once('end', () => resolve());
        process.stdin.once('close', () => resolve());
        process.stdin.once('error', () => resolve());
        process.stdout.on('error', () => resolve());
      });
      cancelAll = () => session.cancel();
      await session.server.connect(transport);
      log(`serving ${file} over MCP stdio`);
      // The client's end (stdin closed) ends the session as the agent's own end, unless a signal comes first or meanwhile.
      const ending = Promise.race([closed.then(() => session.end('the client disconnected')), signals.interrupted]);
      const outcome = await ending;
      if (typeof outcome !== 'string') return outcome === undefined || outcome.status === 'completed' ? EXIT.ok : EXIT.failed;
      log(`${outcome}: cancelling the session's task; (again to stop waiting)`);
      // Its result is logged by onEnded.
      await session.cancel().ended.catch((error: unknown) => log(`could not cancel the session's task: ${(error as Error).message}`));
      await transport.close().catch(() => undefined);
      return INTERRUPT_EXIT_CODES[outcome];
    } finally {
      signals.dispose();
      stopWorker();
      await workerDone;
      // Its end time: the record vouches for the ended worker while the server still lists it.
      workerRecord?.ended();
      await connection.close();
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden mcp serve: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  } finally {
    await telemetry?.shutdown();
  }
}

/**
 * Handles SIGINT, SIGTERM and SIGHUP from now until `dispose()`: the first resolves `interrupted`
 * with its name, each later one calls `again` with the first's name.
 */
function watchInterruptSignals(again: (first: InterruptSignal) => void): { interrupted: Promise<InterruptSignal>; dispose(): void } {
  let signalled!: (signal: InterruptSignal) => void;
  const interrupted = new Promise<InterruptSignal>((resolve) => (signalled = resolve));
  let first: InterruptSignal | undefined;
  const handlers = (Object.keys(INTERRUPT_EXIT_CODES) as InterruptSignal[]).map(
    (signal) =>
      [
        signal,
        () => {
          if (first === undefined) {
            first = signal;
            signalled(signal);
          } else again(first);
        },
      ] as const,
  );
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return {
    interrupted,
    dispose: () => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}

async function installCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('mcp install', MCP_USAGE, argv, io, { 'allow-scripts': { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  if (args.positionals.length === 0) {
    io.stderr(`warden mcp install: name at least one package\n${MCP_USAGE}\n`);
    return EXIT.usage;
  }
  const bad = args.positionals.find((p) => !/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(@[A-Za-z0-9._^~<>=|* -]+)?$/.test(p));
  if (bad !== undefined) {
    io.stderr(`${terminalLine(`warden mcp install: "${bad}" is not an npm package name (optionally with @version)`)}\n`);
    return EXIT.usage;
  }
  const dir = mcpPackagesDirOf(io.env);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'warden-mcp-packages', private: true }, null, 2)}\n`);
  const npmArgs = ['install', '--prefix', dir, '--no-audit', '--no-fund', ...(args.values['allow-scripts'] === true ? [] : ['--ignore-scripts']), ...args.positionals];
  io.stderr(`${terminalLine(`warden: npm ${npmArgs.join(' ')}`)}\n`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn('npm', npmArgs, { stdio: ['ignore', 'inherit', 'inherit'], env: io.env });
    child.on('error', () => resolve(1));
    child.on('exit', (status) => resolve(status ?? 1));
  });
  if (code !== 0) {
    io.stderr(`warden mcp install: npm failed (exit ${code})\n`);
    return EXIT.failed;
  }
  io.stdout(`${terminalLine(`installed ${args.positionals.join(', ')} in ${dir}`)}\n`);
  return EXIT.ok;
}

async function toolsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('mcp tools', MCP_USAGE, argv, io, {});
  if (typeof args === 'number') return args;
  const [file, ...extra] = args.positionals;
  const task = await loadTask('tools', file, extra, io);
  if (typeof task === 'number') return task;
  const servers = Object.entries(task.tools.mcp ?? {});
  if (servers.length === 0) {
    io.stderr(`${terminalLine(`warden mcp tools: ${file} declares no MCP servers (tools.mcp)`)}\n`);
    return EXIT.usage;
  }
  let status: number = EXIT.ok;
  for (const [name, config] of servers) {
    try {
      const connection = await McpConnection.open(name, config, {
        env: io.env,
        allowedHosts: [],
        packagesDir: mcpPackagesDirOf(io.env),
        // Listing only: no workspace is shown to the servers.
        lifetimeMs: 60_000,
      });
      try {
        // The server's name, version and tool names are its own text: one line each (../../terminal-text.ts).
        io.stdout(`${terminalLine(`${name} (${connection.listing.serverInfo?.name ?? 'unnamed'} ${connection.listing.serverInfo?.version ?? ''}) pin ${connection.listing.hash}`)}\n`);
        for (const tool of connection.listing.tools) {
          const granted = task.grants.tools.includes(tool.name) ? 'granted' : '       ';
          io.stdout(`${terminalLine(`  ${granted}  ${tool.name.padEnd(40)} ${terminalJson(tool.annotations ?? {})}`)}\n`);
        }
      } finally {
        await connection.close();
      }
    } catch (error) {
      if (!(error instanceof WardenError)) throw error;
      io.stderr(`${terminalLine(`warden mcp tools: ${name}: ${error.code}: ${error.message}`)}\n`);
      status = EXIT.failed;
    }
  }
  return status;
}
