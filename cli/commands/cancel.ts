/**
 * `warden cancel <workflowId>`: asks a running task to stop. The workflow ends itself as
 * `cancelled` and runs its compensations (SQL undone, overlay discarded, compensating tools),
 * which this command waits for and reports, unless `--no-wait` or no worker is there to run them.
 */
import type { Client } from '@temporalio/client';
import { WardenError } from '../../errors';
import type { TaskResult } from '../../task/task-run';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { formatRecovery } from '../format-summary';
import { parseCommandArgs, usageError } from '../parse-command-args';
import { readTaskView } from '../task-view';
import { agentTaskResult } from '../../client/start-agent-task';
import { recentPollers, withRunningServer } from '../temporal-client';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const CANCEL_USAGE = `usage: warden cancel <workflowId> [--no-wait] [--json]

  Cancels a running task (and its sub-agents). The task's compensations run (its SQL is undone,
  its uncommitted file writes are discarded) and this command prints what was undone.
  --no-wait  return once the cancellation is recorded, without waiting for the compensations
  --json     one JSON object: { workflowId, requested: true, waited, result? }
  Exit 0 when the cancellation was recorded (and the task ended cancelled), 1 otherwise.`;

export interface CancelOutcome {
  workflowId: string;
  requested: boolean;
  waited: boolean;
  /** Why it did not wait, when it did not. */
  note?: string;
  result?: TaskResult;
}

/** Requests cancellation and, when a worker can run the compensations, waits for the result. */
export async function cancelTask(client: Client, workflowId: string, options: { wait: boolean }): Promise<CancelOutcome> {
  const view = await readTaskView(client, workflowId, { queryTimeoutMs: 1_000 });
  if (view.execution !== 'RUNNING') {
    throw new WardenError('ERR_TASK_NOT_RUNNING', `task ${workflowId} is not running (it ended ${view.status ?? view.execution.toLowerCase()})`, { details: { workflowId } });
  }
  const handle = client.workflow.getHandle(workflowId);
  await handle.cancel();
  if (!options.wait) return { workflowId, requested: true, waited: false };
  if ((await recentPollers(client, view.taskQueue)).length === 0) {
    return {
      workflowId,
      requested: true,
      waited: false,
      note: `no worker polls task queue ${view.taskQueue}: the task ends and runs its compensations when one does (warden worker)`,
    };
  }
  return { workflowId, requested: true, waited: true, result: await agentTaskResult(handle) };
}

export async function cancelCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('cancel', CANCEL_USAGE, argv, io, { 'no-wait': { type: 'boolean' }, json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) return usageError('cancel', CANCEL_USAGE, io, 'expected one workflow id');
  try {
    const outcome = await withRunningServer(io, (client) => cancelTask(client, workflowId, { wait: args.values['no-wait'] !== true }));
    if (args.values.json === true) io.stdout(`${terminalJson(outcome, 2)}\n`);
    else if (outcome.result !== undefined) {
      const { result } = outcome;
      io.stdout(`${terminalLine(`${result.status === 'cancelled' ? 'cancelled' : `ended ${result.status}`} ${workflowId}: ${formatRecovery(result)}`)}\n`);
    } else io.stdout(`${terminalLine(`cancellation of ${workflowId} recorded${outcome.note === undefined ? '' : `; ${outcome.note}`}`)}\n`);
    return outcome.result === undefined || outcome.result.status === 'cancelled' ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden cancel: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
