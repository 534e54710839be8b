/** `warden server start|stop|status`: the embedded Temporal server by hand. */
import { WardenError } from '../../errors';
import { stateDirOf } from '../../state-dir';
import { embeddedServerStatus, ensureTemporalServer, stopEmbeddedServer } from '../../temporal/embedded-server';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';

export const SERVER_USAGE = `usage: warden server start|stop|status

  start   start (or reuse) the embedded Temporal server and leave it running
  stop    stop the embedded server this state folder started
  status  say whether it runs, where, and where its log is`;

export async function serverCommand(argv: string[], io: CliIo): Promise<number> {
  const [action, ...extra] = argv;
  if (action === '--help' || action === '-h') {
    io.stdout(`${SERVER_USAGE}\n`);
    return EXIT.ok;
  }
  if (extra.length > 0 || (action !== 'start' && action !== 'stop' && action !== 'status')) {
    io.stderr(`warden server: expected start, stop or status\n${SERVER_USAGE}\n`);
    return EXIT.usage;
  }
  const stateDir = stateDirOf(io.env);
  try {
    if (action === 'start') {
      const server = await ensureTemporalServer({ env: io.env, stateDir, log: (line) => io.stderr(`warden: ${line}\n`) });
      io.stdout(
        `${server.mode === 'external' ? 'external' : server.reused ? 'reused' : 'started'} Temporal server at ${server.address} (namespace ${server.namespace})${server.uiUrl ? `, UI ${server.uiUrl}` : ''}\n`,
      );
      return EXIT.ok;
    }
    if (action === 'stop') {
      const { stopped, pid } = await stopEmbeddedServer(stateDir);
      io.stdout(stopped ? `stopped the embedded Temporal server (pid ${pid})\n` : `no embedded Temporal server recorded under ${stateDir}\n`);
      return EXIT.ok;
    }
    const status = await embeddedServerStatus(stateDir);
    io.stdout(
      status.running
        ? `running: ${status.address} (pid ${status.record?.pid}), ${status.answering ? 'answering' : 'NOT answering'}${status.uiUrl ? `, UI ${status.uiUrl}` : ''}\nlog: ${status.logFile}\n`
        : `not running (state folder ${stateDir})\n`,
    );
    return status.running ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden server: ${error.code}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
