/** The `warden` command line: parses the sub-command and hands over. Commands return exit codes. */
import { processIo, type CliIo } from './cli-io';
import { approvalsCommand, approveCommand, APPROVALS_USAGE, denyCommand } from './commands/approvals';
import { approversCommand, APPROVERS_USAGE } from './commands/approvers';
import { auditCommand, AUDIT_USAGE } from './commands/audit';
import { credentialsCommand, CREDENTIALS_USAGE } from './commands/credentials';
import { dbCommand, DB_USAGE } from './commands/db';
import { keysCommand, KEYS_USAGE } from './commands/keys';
import { mcpCommand, MCP_USAGE } from './commands/mcp';
import { policyCommand, POLICY_USAGE } from './commands/policy';
import { replayCommand, REPLAY_USAGE } from './commands/replay';
import { rollbackCommand, ROLLBACK_USAGE } from './commands/rollback';
import { runCommand, RUN_USAGE } from './commands/run';
import { serverCommand, SERVER_USAGE } from './commands/server';
import { snapshotsCommand, SNAPSHOTS_USAGE } from './commands/snapshots';
import { traceCommand, TRACE_USAGE } from './commands/trace';
import { workerCommand, WORKER_USAGE } from './commands/worker';
import { EXIT } from './exit-codes';

type Command = (argv: string[], io: CliIo) => Promise<number>;

/** Every sub-command with its usage text, in the order `warden help` lists them. */
const COMMANDS: Record<string, { run: Command; usage: string }> = {
  run: { run: runCommand, usage: RUN_USAGE },
  worker: { run: workerCommand, usage: WORKER_USAGE },
  server: { run: serverCommand, usage: SERVER_USAGE },
  keys: { run: keysCommand, usage: KEYS_USAGE },
  credentials: { run: credentialsCommand, usage: CREDENTIALS_USAGE },
  policy: { run: policyCommand, usage: POLICY_USAGE },
  approvers: { run: approversCommand, usage: APPROVERS_USAGE },
  approvals: { run: approvalsCommand, usage: APPROVALS_USAGE },
  approve: { run: approveCommand, usage: '' },
  deny: { run: denyCommand, usage: '' },
  snapshots: { run: snapshotsCommand, usage: SNAPSHOTS_USAGE },
  rollback: { run: rollbackCommand, usage: ROLLBACK_USAGE },
  audit: { run: auditCommand, usage: AUDIT_USAGE },
  trace: { run: traceCommand, usage: TRACE_USAGE },
  replay: { run: replayCommand, usage: REPLAY_USAGE },
  db: { run: dbCommand, usage: DB_USAGE },
  mcp: { run: mcpCommand, usage: MCP_USAGE },
};

const USAGE = `warden: a zero-trust runtime for AI agents on Temporal

${Object.values(COMMANDS)
  .map((c) => c.usage)
  .filter((usage) => usage !== '')
  .join('\n\n')}`;

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
  return command.run(rest, io);
}
