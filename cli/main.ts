/**
 * The `warden` command line: finds the sub-command and hands over. Commands return exit codes.
 *
 * Start-up cost is part of the interface: this module imports nothing heavy, and each command's
 * module (with the Temporal SDK, isolated-vm, Cedar...) is loaded only when that command runs, so
 * `warden --help` and `warden --version` answer in a few tens of milliseconds.
 */
import { processIo, type CliIo } from './cli-io';
import { EXIT } from './exit-codes';
import { packageVersion } from './package-version';
import { environmentHelp } from './environment-variables';
import { nearestName } from '../task/field-suggestions';
import { terminalJson, terminalLine } from '../terminal-text';
import { deferUnusedModules } from './deferred-modules';

/** bin/warden.js writes a command's uncaught error through it too. */
export { processIo };

type Command = (argv: string[], io: CliIo) => Promise<number>;
interface LoadedCommand {
  run: Command;
  usage: string;
}
interface CommandEntry {
  /** One line for `warden --help`. */
  summary: string;
  load(): Promise<LoadedCommand>;
}

/** Every sub-command, grouped as `warden --help` lists them. Modules load on first use only. */
const GROUPS: Record<string, Record<string, CommandEntry>> = {
  Tasks: {
    run: { summary: 'run a task file and follow it to its end (Ctrl-C cancels it and undoes its effects)', load: async () => ((m) => ({ run: m.runCommand, usage: m.RUN_USAGE }))(await import('./commands/run.js')) },
    list: { summary: 'list tasks, newest first (--status running|completed|failed|...)', load: async () => ((m) => ({ run: m.listCommand, usage: m.LIST_USAGE }))(await import('./commands/list.js')) },
    status: { summary: "one task's status, steps so far and what waits for approval", load: async () => ((m) => ({ run: m.statusCommand, usage: m.STATUS_USAGE }))(await import('./commands/status.js')) },
    logs: { summary: "a task's steps as they happen (--follow) and its outcome", load: async () => ((m) => ({ run: m.logsCommand, usage: m.LOGS_USAGE }))(await import('./commands/logs.js')) },
    cancel: { summary: 'cancel a running task; its compensations run and are reported', load: async () => ((m) => ({ run: m.cancelCommand, usage: m.CANCEL_USAGE }))(await import('./commands/cancel.js')) },
    worker: { summary: 'run a standalone worker for a Temporal cluster or the embedded server', load: async () => ((m) => ({ run: m.workerCommand, usage: m.WORKER_USAGE }))(await import('./commands/worker.js')) },
    mcp: { summary: 'serve a task to an existing agent (IDE, CLI agent) as an MCP server', load: async () => ((m) => ({ run: m.mcpCommand, usage: m.MCP_USAGE }))(await import('./commands/mcp.js')) },
  },
  Approvals: {
    approvals: { summary: 'actions waiting for a human: effect, rules, deadline', load: async () => ((m) => ({ run: m.approvalsCommand, usage: m.APPROVALS_USAGE }))(await import('./commands/approvals.js')) },
    approve: { summary: 'let a held action run', load: async () => ((m) => ({ run: m.approveCommand, usage: m.APPROVALS_USAGE }))(await import('./commands/approvals.js')) },
    deny: { summary: 'refuse a held action', load: async () => ((m) => ({ run: m.denyCommand, usage: m.APPROVALS_USAGE }))(await import('./commands/approvals.js')) },
  },
  'Policies and identity': {
    policy: { summary: 'compile rules, or backtest packs on past runs', load: async () => ((m) => ({ run: m.policyCommand, usage: m.POLICY_USAGE }))(await import('./commands/policy.js')) },
    keys: { summary: "the credential authority's keys: jwks, list, rotate", load: async () => ((m) => ({ run: m.keysCommand, usage: m.KEYS_USAGE }))(await import('./commands/keys.js')) },
    credentials: { summary: 'explain and verify a Warden token', load: async () => ((m) => ({ run: m.credentialsCommand, usage: m.CREDENTIALS_USAGE }))(await import('./commands/credentials.js')) },
    approvers: { summary: 'who may decide approvals: add, list, remove approver keys', load: async () => ((m) => ({ run: m.approversCommand, usage: m.APPROVERS_USAGE }))(await import('./commands/approvers.js')) },
  },
  Recovery: {
    snapshots: { summary: "what a task's commit replaced, and its SQL journal", load: async () => ((m) => ({ run: m.snapshotsCommand, usage: m.SNAPSHOTS_USAGE }))(await import('./commands/snapshots.js')) },
    rollback: { summary: "undo a task's files and SQL, also after it completed", load: async () => ((m) => ({ run: m.rollbackCommand, usage: m.ROLLBACK_USAGE }))(await import('./commands/rollback.js')) },
  },
  'Chain of custody': {
    audit: { summary: 'verify the custody ledger; inclusion and consistency proofs', load: async () => ((m) => ({ run: m.auditCommand, usage: m.AUDIT_USAGE }))(await import('./commands/audit.js')) },
    trace: { summary: "a task's timeline from its custody records", load: async () => ((m) => ({ run: m.traceCommand, usage: m.TRACE_USAGE }))(await import('./commands/trace.js')) },
    replay: { summary: 'replay a history against this code and cross-check the ledger', load: async () => ((m) => ({ run: m.replayCommand, usage: m.REPLAY_USAGE }))(await import('./commands/replay.js')) },
    attest: { summary: 'verify signed claim attestations offline with the published JWKS', load: async () => ((m) => ({ run: m.attestCommand, usage: m.ATTEST_USAGE }))(await import('./commands/attest.js')) },
    receipt: { summary: "a task's signed receipt (actions, decisions, claims, custody proofs); verify one offline", load: async () => ((m) => ({ run: m.receiptCommand, usage: m.RECEIPT_USAGE }))(await import('./commands/receipt.js')) },
    console: { summary: 'a local web page: tasks, timelines with custody records, approvals', load: async () => ((m) => ({ run: m.consoleCommand, usage: m.CONSOLE_USAGE }))(await import('./commands/console.js')) },
  },
  Monitoring: {
    alerts: { summary: 'what the monitor raised: scores, reasons, responses, detection-to-block times', load: async () => ((m) => ({ run: m.alertsCommand, usage: m.ALERTS_USAGE }))(await import('./commands/alerts.js')) },
    kill: { summary: 'block a running task and roll it back now (signed by an approver key)', load: async () => ((m) => ({ run: m.killCommand, usage: m.KILL_USAGE }))(await import('./commands/kill.js')) },
    baseline: { summary: 'what normal looks like per agent: learn, list, show, forget', load: async () => ((m) => ({ run: m.baselineCommand, usage: m.BASELINE_USAGE }))(await import('./commands/baseline.js')) },
  },
  Server: {
    server: { summary: 'the embedded Temporal server: start, stop, status', load: async () => ((m) => ({ run: m.serverCommand, usage: m.SERVER_USAGE }))(await import('./commands/server.js')) },
    db: { summary: 'the shared state database: migrate, status', load: async () => ((m) => ({ run: m.dbCommand, usage: m.DB_USAGE }))(await import('./commands/db.js')) },
  },
};

const COMMANDS: Record<string, CommandEntry> = Object.assign({}, ...Object.values(GROUPS));

/** `warden --help`: one line per command. */
export function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  const lines = [`warden ${packageVersion()}: a zero-trust runtime for AI agents on Temporal`, '', 'usage: warden <command> [options]', ''];
  for (const [group, commands] of Object.entries(GROUPS)) {
    lines.push(`${group}:`);
    for (const [name, entry] of Object.entries(commands)) lines.push(`  ${name.padEnd(width)}${entry.summary}`);
    lines.push('');
  }
  lines.push('warden <command> --help   usage of one command', 'warden --version          the installed version', '');
  lines.push(...environmentHelp());
  return `${lines.join('\n')}\n`;
}

/** The known command nearest to a mistyped one, when it is close enough to be a typo. */
function nearest(name: string): string | undefined {
  return nearestName(name, Object.keys(COMMANDS));
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(overview());
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h') {
    io.stdout(overview());
    return EXIT.ok;
  }
  const VERSION_FLAGS = ['--version', '-V', 'version'];
  if (VERSION_FLAGS.includes(name) || (name === '--json' && rest.length === 1 && VERSION_FLAGS.includes(rest[0]!))) {
    const json = name === '--json' || rest.includes('--json');
    const extra = (name === '--json' ? [] : rest).filter((arg) => arg !== '--json');
    if (extra.length > 0) {
      io.stderr(`${terminalLine(`warden: --version takes no arguments but --json (got ${extra.join(' ')})`)}\n`);
      return EXIT.usage;
    }
    io.stdout(json ? `${terminalJson({ version: packageVersion() })}\n` : `warden ${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (name === 'help') {
    const [topic] = rest;
    if (topic === undefined) {
      io.stdout(overview());
      return EXIT.ok;
    }
    const entry = COMMANDS[topic];
    if (entry === undefined) return unknown(topic, io);
    io.stdout(`${(await entry.load()).usage}\n`);
    return EXIT.ok;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) return unknown(name, io);
  // Before any command loads zod: the parts of it no command uses wait until used (cli/deferred-modules.ts).
  deferUnusedModules();
  const command = await entry.load();
  return command.run(rest, io);
}

function unknown(name: string, io: CliIo): number {
  const guess = nearest(name);
  io.stderr(`${terminalLine(`warden: unknown command "${name}"${guess === undefined ? '' : `; did you mean "${guess}"?`} (warden --help lists the commands)`)}\n`);
  return EXIT.usage;
}
