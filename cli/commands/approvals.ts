/**
 * `warden approvals`, `warden approve`, `warden deny`: the human side of actions the policy engine
 * held for approval. A decision is a Temporal signal carrying the approver's identity, recorded
 * in the task's history and in its step.
 */
import { userInfo } from 'node:os';
import { parseCommandArgs } from '../parse-command-args';
import { WardenError } from '../../errors';
import { AGENT_TASK_WORKFLOW, approvalSignal, taskStateQuery } from '../../workflows/definitions';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { withRunningServer } from '../temporal-client';
import { formatPendingApproval } from '../format-summary';

export const APPROVALS_USAGE = `usage: warden approvals [--json]
       warden approve <workflowId> <requestId> [--reason <text>]
       warden deny <workflowId> <requestId> [--reason <text>]

  approvals  list the actions waiting for a human, across running tasks: the action, the effect
             Warden measured, the rules that held it, its deadline, and the command that decides
             (--json: one array of { workflowId, requestId, tool, args, effect?, rules, expiresAt })
  approve    let the held action run;  deny: refuse it (the task then stops or goes on, per onDeny)
  The approver is WARDEN_APPROVER, else user:<login name>.`;

/** How long `warden approvals` waits for one task to answer. */
const QUERY_DEADLINE_MS = 2000;

/** Who is deciding: `WARDEN_APPROVER`, else the login name. */
export function approverOf(env: NodeJS.ProcessEnv): string {
  const named = env.WARDEN_APPROVER?.trim();
  if (named) return named.includes(':') ? named : `user:${named}`;
  return `user:${userInfo().username}`;
}

export async function approvalsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('approvals', APPROVALS_USAGE, argv, io, { json: { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  const { values } = args;
  try {
    const pending = await withRunningServer(io, async (client) => {
      const ids: string[] = [];
      const running = client.workflow.list({ query: `WorkflowType = "${AGENT_TASK_WORKFLOW}" AND ExecutionStatus = "Running"` });
      for await (const execution of running) ids.push(execution.workflowId);
      // Asked in parallel, each briefly: a task whose worker is gone cannot answer, and must not
      // hold up the list.
      const answers = await Promise.all(
        ids.map(async (workflowId) => {
          try {
            const state = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => client.workflow.getHandle(workflowId).query(taskStateQuery));
            return (state.pendingApprovals ?? []).map((p) => ({ workflowId, ...p }));
          } catch {
            return [];
          }
        }),
      );
      return answers.flat();
    });
    if (values.json) io.stdout(`${JSON.stringify(pending, null, 2)}\n`);
    else if (pending.length === 0) io.stdout('no actions are waiting for approval\n');
    else {
      for (const p of pending) io.stdout(`${formatPendingApproval(p.workflowId, p)}\n`);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden approvals: ${error.code}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}

function decisionCommand(approved: boolean) {
  const name = approved ? 'approve' : 'deny';
  return async function (argv: string[], io: CliIo): Promise<number> {
    const parsed = parseCommandArgs(name, APPROVALS_USAGE, argv, io, { reason: { type: 'string' } });
    if (typeof parsed === 'number') return parsed;
    const [workflowId, requestId, ...extra] = parsed.positionals;
    if (workflowId === undefined || requestId === undefined || extra.length > 0) {
      io.stderr(`warden ${name}: expected <workflowId> <requestId>\n${APPROVALS_USAGE}\n`);
      return EXIT.usage;
    }
    const approver = approverOf(io.env);
    try {
      const outcome = await withRunningServer(io, async (client) => {
        const handle = client.workflow.getHandle(workflowId);
        const state = await handle.query(taskStateQuery);
        if (!(state.pendingApprovals ?? []).some((p) => p.requestId === requestId)) return 'not-pending' as const;
        await handle.signal(approvalSignal, { requestId, approved, approver, ...(parsed.values.reason === undefined ? {} : { reason: parsed.values.reason }) });
        return 'sent' as const;
      });
      if (outcome === 'not-pending') {
        io.stderr(`warden ${name}: ${workflowId} has no action ${requestId} waiting for approval (see warden approvals)\n`);
        return EXIT.failed;
      }
      io.stdout(`${approved ? 'approved' : 'denied'} ${workflowId} ${requestId} as ${approver}\n`);
      return EXIT.ok;
    } catch (error) {
      if (error instanceof WardenError) {
        io.stderr(`warden ${name}: ${error.code}: ${error.message}\n`);
        return EXIT.failed;
      }
      io.stderr(`warden ${name}: ${(error as Error).message}\n`);
      return EXIT.failed;
    }
  };
}

export const approveCommand = decisionCommand(true);
export const denyCommand = decisionCommand(false);
