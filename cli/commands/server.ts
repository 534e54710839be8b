/** `warden server start|stop|status`: the embedded Temporal server by hand. */
import { WardenError } from '../../errors';
import { stateDirOf } from '../../state-dir';
import { embeddedServerStatus, ensureTemporalServer, isPortInUse, stopEmbeddedServer } from '../../temporal/embedded-server';
import { loadEmbeddedPorts } from '../../temporal/temporal-config';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { argumentCountText, parseCommandArgs, usageError } from '../parse-command-args';
import { environmentHelp } from '../environment-variables';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const SERVER_USAGE = `usage: warden server start|stop|status [--json]

  start   start (or reuse) the embedded Temporal server and leave it running
  stop    stop the embedded server this state folder started
  status  say whether it runs, where, and where its log is (exit 0 running, 1 not)
  --json  status as one JSON object: { running, answering, address?, uiUrl?, pid?, logFile, stateDir }

A state folder stops only the server it started: a server another state folder started (or one
started by hand) is stopped with that folder's WARDEN_STATE_DIR, or by whoever started it.

${environmentHelp({ server: true }).join('\n')}`;

/** The embedded server's gRPC port, or undefined when a cluster is configured or the port variables are bad (a hint only: `stop` never fails on it). */
function embeddedPortOrUndefined(env: NodeJS.ProcessEnv): number | undefined {
  if ((env['TEMPORAL_ADDRESS'] ?? '').trim() !== '') return undefined;
  try {
    return loadEmbeddedPorts(env).port;
  } catch {
    return undefined;
  }
}

export async function serverCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('server', SERVER_USAGE, argv, io, { json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [action, ...extra] = args.positionals;
  if (action !== 'start' && action !== 'stop' && action !== 'status') {
    return usageError('server', SERVER_USAGE, io, `expected start, stop or status${action === undefined ? '' : ` (got "${action}")`}`);
  }
  if (extra.length > 0) {
    return usageError('server', SERVER_USAGE, io, argumentCountText(action, 0, extra));
  }
  if (args.values.json === true && action !== 'status') return usageError('server', SERVER_USAGE, io, '--json applies to status only');
  const stateDir = stateDirOf(io.env);
  try {
    if (action === 'start') {
      const server = await ensureTemporalServer({ env: io.env, stateDir, log: (line) => io.stderr(`${terminalLine(`warden: ${line}`)}\n`) });
      io.stdout(
        `${terminalLine(`${server.mode === 'external' ? 'external' : server.reused ? 'reused' : 'started'} Temporal server at ${server.address} (namespace ${server.namespace})${server.uiUrl ? `, UI ${server.uiUrl}` : ''}`)}\n`,
      );
      return EXIT.ok;
    }
    if (action === 'stop') {
      const { stopped, pid } = await stopEmbeddedServer(stateDir);
      io.stdout(stopped ? `stopped the embedded Temporal server (pid ${pid})\n` : `no embedded Temporal server recorded under ${stateDir}\n`);
      if (!stopped) {
        // Nothing of this folder's, yet a server answers on the port: say whose it is not, and how to stop it.
        const port = embeddedPortOrUndefined(io.env);
        if (port !== undefined && (await isPortInUse(port))) {
          io.stdout(
            `a server is listening on 127.0.0.1:${port}, but this state folder did not start it: stop it with the WARDEN_STATE_DIR it was started with ` +
              `(\`warden server start\` and \`warden run\` default to ./.warden; the tests use .warden-test), or where it was started by hand\n`,
          );
        }
      }
      return EXIT.ok;
    }
    const status = await embeddedServerStatus(stateDir);
    if (args.values.json === true) {
      const { record, ...rest } = status;
      io.stdout(`${terminalJson({ ...rest, ...(record === undefined ? {} : { pid: record.pid, startedAt: record.startedAt }) }, 2)}\n`);
      return status.running ? EXIT.ok : EXIT.failed;
    }
    io.stdout(
      status.running
        ? `running: ${status.address} (pid ${status.record?.pid}), ${status.answering ? 'answering' : 'NOT answering'}${status.uiUrl ? `, UI ${status.uiUrl}` : ''}\nlog: ${status.logFile}\n`
        : `not running (state folder ${stateDir})\n`,
    );
    return status.running ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden server: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
