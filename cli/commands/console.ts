/**
 * `warden console`: the web console on 127.0.0.1, for the human side of Warden: running and past
 * tasks, each task's timeline with its custody records, and the actions waiting for approval.
 * Thin: resolves Temporal and the approver, then hands over to `console/`.
 */
import { parseCommandArgs } from '../parse-command-args';
import { ConsoleData } from '../../console/console-data';
import { startConsoleServer } from '../../console/console-server';
import { WardenError } from '../../errors';
import { connectClient } from '../../temporal/connect';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { resolveTemporal } from '../temporal-client';
import { findApproverKeyFile } from '../../client/approvals';
import type { ApproverKeyFile } from '../../identity/approval-decision';
import { terminalLine, terminalLines } from '../../terminal-text';

export const CONSOLE_USAGE = `usage: warden console [--port <n>] [--approver <name> | --key <file>]

  Serves the Warden console on http://127.0.0.1:<port> (loopback only) until Ctrl-C: running and
  past tasks, each task's timeline (turns, actions, decisions, effects, sub-agents) with its
  custody records and their verification, and the actions waiting for approval.
  Prints a login token at start; every call the page makes needs it. Approvals decided in the
  console are signed with a registered approver's key (\`warden approvers add <name>\`), found as
  \`warden approve\` finds it; without one the console only shows them.
  --port <n>         port on 127.0.0.1 (default: a free one)
  --approver <name>  decide as this approver (its key in the approver key folder)
  --key <file>       decide with this approver key file (default WARDEN_APPROVER_KEY, WARDEN_APPROVER)`;

export async function consoleCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('console', CONSOLE_USAGE, argv, io, { port: { type: 'string' }, approver: { type: 'string' }, key: { type: 'string' } });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) {
    io.stderr(`${terminalLine(`warden console: unexpected argument "${args.positionals[0]}"`)}\n${CONSOLE_USAGE}\n`);
    return EXIT.usage;
  }
  const port = args.values.port === undefined ? 0 : Number(args.values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.stderr(`${terminalLine(`warden console: --port must be a port number (0-65535), got "${args.values.port}"`)}\n`);
    return EXIT.usage;
  }
  const env: NodeJS.ProcessEnv = { ...io.env, ...(args.values.approver === undefined ? {} : { WARDEN_APPROVER: args.values.approver }) };
  // An approver asked for and not found is a usage error, as for `warden approve`; none asked for: read-only.
  let approverKey: ApproverKeyFile | undefined;
  if (args.values.key !== undefined || env.WARDEN_APPROVER_KEY || env.WARDEN_APPROVER?.trim()) {
    try {
      approverKey = await findApproverKeyFile(env, args.values.key);
    } catch (error) {
      if (!(error instanceof WardenError)) throw error;
      io.stderr(`warden console: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.usage;
    }
  }
  try {
    const { config, server, stateDir } = await resolveTemporal(io);
    const { client, connection } = await connectClient(config);
    try {
      const data = new ConsoleData({
        client,
        stateDir,
        namespace: server.namespace,
        ...(approverKey === undefined ? {} : { approverKey }),
        ...(server.uiUrl === undefined ? {} : { temporalUiUrl: server.uiUrl }),
      });
      const consoleServer = await startConsoleServer({ data, port, onError: (error) => io.stderr(`${terminalLine(`warden console: ${error instanceof Error ? error.message : String(error)}`)}\n`) });
      io.stderr(
        `warden console: serving on ${consoleServer.url} (127.0.0.1 only)\n` +
          `  login token: ${consoleServer.token}  (every call needs it; it ends with this process)\n` +
          (approverKey === undefined
            ? `  read-only: no approver key (start with --approver <name> to decide approvals here)\n`
            : `  approvals decided here are signed as approver ${terminalLine(approverKey.name)}\n`) +
          `  Ctrl-C stops it\n`,
      );
      // Last, so a script reading it knows the console is up.
      io.stdout(`${consoleServer.loginUrl}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await consoleServer.close();
      return EXIT.ok;
    } finally {
      await connection.close();
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden console: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      io.stderr(`warden console: port ${port} on 127.0.0.1 is in use; choose another with --port, or --port 0 for a free one\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
