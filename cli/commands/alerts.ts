/** `warden alerts`: what the monitor raised, newest first, from the state store. */
import { formatAlert, type Alert } from '../../monitoring/alert';
import { createAlertStore } from '../../monitoring/alert-store';
import { WardenError } from '../../errors';
import { stateDirOf } from '../../state-dir';
import { openStateStore } from '../../state/state-store';
import { durationToMs } from '../../task/duration';
import { DurationSchema } from '../../task/task-schema';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { parseCommandArgs, workflowIdUsageError } from '../parse-command-args';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const ALERTS_USAGE = `usage: warden alerts [--task <workflowId>] [--since <duration>] [--limit <n>] [--json]

  lists the monitor's alerts, newest first: the agent and action, its anomaly score and the
  reasons, the response rules that fired, what Warden did (alert, step-up, block, remediate), when
  the task was blocked and how long after the anomalous action. Read from the state store
  (WARDEN_DATABASE_URL, else <state folder>/state.db).

  --task <id>         only alerts of this task (and its sub-agents)
  --since <duration>  only alerts of the last 30m, 2h, 7d... (s, m, h; d for days)
  --limit <n>         at most n alerts (default 100)
  --json              print a JSON array`;

function sinceOf(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  if (days !== null) return Number(days[1]) * 86_400_000;
  if (!DurationSchema.safeParse(text).success) throw new RangeError(`--since takes a duration such as 30m, 2h or 7d, not "${text}"`);
  return durationToMs(text);
}

/** An alert in lines; each holds others' text (an agent's action, a tool's arguments) made safe for a terminal line (../../terminal-text.ts). */
export function formatAlertLine(alert: Alert): string {
  const lines = [`${alert.detectedAt}  ${alert.id}  ${alert.workflowId}`, `    ${formatAlert(alert)}`];
  if (alert.rules.length > 0) lines.push(`    rules: ${alert.rules.map((r) => `${r.id} "${r.sentence}"`).join('; ')}`);
  if (alert.delivery !== undefined) lines.push(`    webhook: ${alert.delivery}`);
  return `${lines.map(terminalLine).join('\n')}\n`;
}

export async function alertsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('alerts', ALERTS_USAGE, argv, io, {
    task: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) {
    io.stderr(`${terminalLine(`warden alerts: unexpected ${args.positionals[0]}`)}\n${ALERTS_USAGE}\n`);
    return EXIT.usage;
  }
  const badId = workflowIdUsageError('alerts', ALERTS_USAGE, io, args.values.task);
  if (badId !== undefined) return badId;
  let since: string | undefined;
  let limit: number | undefined;
  try {
    if (args.values.since !== undefined) since = new Date(Date.now() - sinceOf(args.values.since)).toISOString();
    if (args.values.limit !== undefined) {
      limit = Number(args.values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`--limit takes a positive whole number, not "${args.values.limit}"`);
    }
  } catch (error) {
    io.stderr(`warden alerts: ${terminalLines((error as Error).message)}\n${ALERTS_USAGE}\n`);
    return EXIT.usage;
  }
  try {
    const state = await openStateStore({ stateDir: stateDirOf(io.env), env: io.env });
    try {
      const alerts = await createAlertStore(state.db).list({
        ...(args.values.task === undefined ? {} : { task: args.values.task }),
        ...(since === undefined ? {} : { since }),
        ...(limit === undefined ? {} : { limit }),
      });
      if (args.values.json) io.stdout(`${terminalJson(alerts, 2)}\n`);
      else if (alerts.length === 0) io.stdout('no alerts\n');
      else io.stdout(alerts.map(formatAlertLine).join(''));
      return EXIT.ok;
    } finally {
      await state.close();
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden alerts: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
