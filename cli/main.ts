/** The `warden` command line: parses the sub-command and hands over. Commands return exit codes. */
import { processIo, type CliIo } from './cli-io';
import { credentialsCommand, CREDENTIALS_USAGE } from './commands/credentials';
import { keysCommand, KEYS_USAGE } from './commands/keys';
import { runCommand, RUN_USAGE } from './commands/run';
import { serverCommand, SERVER_USAGE } from './commands/server';
import { workerCommand, WORKER_USAGE } from './commands/worker';
import { EXIT } from './exit-codes';

const USAGE = `warden: a zero-trust runtime for AI agents on Temporal

${RUN_USAGE}

${WORKER_USAGE}

${SERVER_USAGE}

${KEYS_USAGE}

${CREDENTIALS_USAGE}`;

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  run: runCommand,
  worker: workerCommand,
  server: serverCommand,
  keys: keysCommand,
  credentials: credentialsCommand,
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout(`${USAGE}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`warden: unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return EXIT.usage;
  }
  return command(rest, io);
}
