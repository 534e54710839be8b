/**
 * `warden kill <workflowId>`: block a running task now (no more actions; its credentials and its
 * sub-agents' stop verifying) and remediate it (its compensations run), by hand.
 */
import { findApproverKeyFile } from '../../client/approvals';
import { killedTaskResult, killTask } from '../../client/kill-task';
import { WardenError } from '../../errors';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { parseCommandArgs, workflowIdUsageError } from '../parse-command-args';
import { withRunningServer } from '../temporal-client';

export const KILL_USAGE = `usage: warden kill <workflowId> [--key <file>] [--reason <text>] [--no-wait] [--json]

  blocks the task now: it starts no more actions, its grant is revoked (its credentials and its
  sub-agents' stop verifying), running sub-agents are stopped; then its compensations run (files
  discarded, SQL undone, compensating tools run). A task the monitor blocked and holds for a
  human is remediated. The kill is signed with a registered approver's key, like an approval.

  --key <file>     the approver key file (default: WARDEN_APPROVER_KEY, else
                   <approver key folder>/<WARDEN_APPROVER>.json; see warden approvers)
  --reason <text>  why, recorded in the alert, the custody ledger and the task's result
  --no-wait        return once the task is blocked, without waiting for its compensations
  --json           print one JSON object: the kill (and the task's result unless --no-wait)`;

export async function killCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('kill', KILL_USAGE, argv, io, {
    key: { type: 'string' },
    reason: { type: 'string' },
    'no-wait': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) {
    io.stderr(`warden kill: expected one workflow id\n${KILL_USAGE}\n`);
    return EXIT.usage;
  }
  const badId = workflowIdUsageError('kill', KILL_USAGE, io, workflowId);
  if (badId !== undefined) return badId;
  try {
    const key = await findApproverKeyFile(io.env, args.values.key);
    return await withRunningServer(io, async (client) => {
      const kill = await killTask(client, { workflowId, key, ...(args.values.reason === undefined ? {} : { reason: args.values.reason }) });
      const sent = Date.parse(kill.requestedAt);
      const toBlock = kill.blockedAt === undefined ? undefined : Date.parse(kill.blockedAt) - sent;
      if (!args.values.json) {
        if (kill.status === 'ended') io.stdout(`${terminalLine(`${workflowId} had already finished its work; nothing to block`)}\n`);
        else if (kill.status === 'already-blocked') io.stdout(`${terminalLine(`${workflowId} was already blocked; remediating it now`)}\n`);
        else io.stdout(`${terminalLine(`blocked ${workflowId} by ${kill.operator}${toBlock === undefined ? '' : `: credentials revoked ${toBlock} ms after the kill was sent`} (alert ${kill.alertId})`)}\n`);
      }
      if (args.values['no-wait']) {
        if (args.values.json) io.stdout(`${terminalJson({ kill, killToBlockMs: toBlock })}\n`);
        return EXIT.ok;
      }
      const result = await killedTaskResult(client, workflowId);
      if (args.values.json) {
        io.stdout(`${terminalJson({ kill, killToBlockMs: toBlock, result }, 2)}\n`);
      } else {
        const undone = result.recovery?.rolledBack ?? [];
        io.stdout(`${terminalLine(`${workflowId} ended ${result.status}${result.reason ? ` (${result.reason})` : ''}`)}\n`);
        for (const r of undone) io.stdout(`${terminalLine(`  undone: ${r.kind}${r.forTool ? ` ${r.forTool}` : ''}${r.callId ? ` ${r.callId}` : ''}: ${r.status}${r.detail ? ` - ${r.detail}` : ''}`)}\n`);
        for (const n of result.recovery?.notUndoable ?? []) io.stdout(`${terminalLine(`  could not be undone: ${n}`)}\n`);
      }
      return EXIT.ok;
    });
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden kill: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
