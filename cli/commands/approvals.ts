/**
 * `warden approvals`, `warden approve`, `warden deny`: the human side of actions the policy engine
 * held for approval. A decision is signed with the approver's key (`warden approvers add`) and
 * sent as the task's approval Update through `client/approvals.ts`, the one client path every
 * front end uses; the task verifies it before it counts and records who decided.
 */
import { parseCommandArgs, usageError } from '../parse-command-args';
import { WardenError } from '../../errors';
import { decideApproval, findApproverKeyFile, readPendingApprovals } from '../../client/approvals';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { withRunningServer } from '../temporal-client';
import { formatPendingApproval } from '../format-summary';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const APPROVALS_USAGE = `usage: warden approvals [--json]
       warden approve <workflowId> <requestId> [--reason <text>] [--key <file>]
       warden deny <workflowId> <requestId> [--reason <text>] [--key <file>]

  approvals  list the actions waiting for a human, across running tasks: the action, the effect
             Warden measured, the rules that held it, its deadline, and the command that decides
             (--json: one array of { workflowId, requestId, tool, args, effect?, rules, expiresAt })
  approve    let the held action run;  deny: refuse it (the task then stops or goes on, per onDeny)
  --key      the approver key file \`warden approvers add <name>\` wrote (default: WARDEN_APPROVER_KEY,
             else <approver key folder>/<WARDEN_APPROVER>.json); the decision is signed with it`;

export async function approvalsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('approvals', APPROVALS_USAGE, argv, io, { json: { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) return usageError('approvals', APPROVALS_USAGE, io, `unexpected argument "${args.positionals[0]}" (approve or deny an action with \`warden approve|deny <workflowId> <requestId>\`)`);
  const { values } = args;
  try {
    const { approvals: pending, unanswered } = await withRunningServer(io, (client) => readPendingApprovals(client));
    // A task that did not answer may be waiting too: said on stderr, so --json's array stays what it was.
    for (const u of unanswered) io.stderr(`${terminalLine(`warden approvals: task ${u.workflowId} did not answer (${u.reason}); actions it holds, if any, are not listed`)}\n`);
    if (values.json) io.stdout(`${terminalJson(pending, 2)}\n`);
    else if (pending.length === 0) io.stdout(unanswered.length === 0 ? 'no actions are waiting for approval\n' : 'no actions are waiting for approval in the tasks that answered\n');
    else {
      for (const p of pending) io.stdout(`${formatPendingApproval(p.workflowId, p)}\n`);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden approvals: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}

function decisionCommand(approved: boolean) {
  const name = approved ? 'approve' : 'deny';
  return async function (argv: string[], io: CliIo): Promise<number> {
    const parsed = parseCommandArgs(name, APPROVALS_USAGE, argv, io, { reason: { type: 'string' }, key: { type: 'string' } });
    if (typeof parsed === 'number') return parsed;
    const [workflowId, requestId, ...extra] = parsed.positionals;
    if (workflowId === undefined || requestId === undefined || extra.length > 0) {
      io.stderr(`warden ${name}: expected <workflowId> <requestId>\n${APPROVALS_USAGE}\n`);
      return EXIT.usage;
    }
    try {
      const key = await findApproverKeyFile(io.env, parsed.values.key);
      const reason = parsed.values.reason;
      const outcome = await withRunningServer(io, (client) => decideApproval(client, { workflowId, requestId, approved, key, ...(reason === undefined ? {} : { reason }) }));
      io.stdout(`${terminalLine(`${outcome.status} ${workflowId} ${requestId} as ${outcome.approver}`)}\n`);
      return EXIT.ok;
    } catch (error) {
      if (error instanceof WardenError) {
        io.stderr(`warden ${name}: ${error.code}: ${terminalLines(error.message)}\n`);
        return exitCodeOfError(error);
      }
      io.stderr(`warden ${name}: ${terminalLines((error as Error).message)}\n`);
      return EXIT.failed;
    }
  };
}

export const approveCommand = decisionCommand(true);
export const denyCommand = decisionCommand(false);
