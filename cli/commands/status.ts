/** `warden status <workflowId>`: one task's status, steps so far, sub-agents and what waits for approval. */
import { WardenError } from '../../errors';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { formatPendingApproval, formatRecovery, formatSummary } from '../format-summary';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';
import { parseCommandArgs, usageError } from '../parse-command-args';
import { readTaskView, type TaskView } from '../task-view';
import { withRunningServer } from '../temporal-client';

export const STATUS_USAGE = `usage: warden status <workflowId> [--json]

  Shows a task: its status (Warden's, and Temporal's for the workflow), when it started and
  ended, its steps and sub-agents so far, the actions waiting for approval and, once it ended,
  what was committed or undone. Never starts a Temporal server.
  --json  one JSON object: { workflowId, runId, status, execution, startTime, closeTime?, state? | result? }
  Exit 0 when the task is running or completed, 1 when it ended otherwise or cannot be read.`;

/**
 * Warden's status of a task, plainly (`CANCELLED`, `FAILED`, ...). Temporal's execution status is
 * added only when it says more: when Warden's result could not be read and the two names differ
 * (`FAILED (workflow terminated)`). A cancelled task's workflow fails in Temporal by design; that
 * is no second failure.
 */
export function statusOf(view: Pick<TaskView, 'status' | 'execution' | 'result'>): string {
  const status = (view.status ?? 'unknown').toUpperCase();
  const execution = view.execution.toLowerCase();
  const saysMore = view.result === undefined && view.execution !== 'RUNNING' && view.execution !== 'COMPLETED' && execution !== view.status;
  return saysMore ? `${status} (workflow ${execution})` : status;
}

/** The human-readable status of a task. */
export function formatTaskView(view: TaskView): string {
  // Any client can start a task: its agent, user and result are others' text (../../terminal-text.ts).
  const lines = [
    `task ${view.workflowId}${view.agent === undefined ? '' : ` (agent ${view.agent}${view.user === undefined ? '' : ` for ${view.user}`})`}`,
    `  status:  ${statusOf(view)}`,
    `  started: ${view.startTime}${view.closeTime === undefined ? '' : `, ended ${view.closeTime}`}`,
    `  queue:   ${view.taskQueue}, run ${view.runId}`,
  ].map(terminalLine);
  if (view.note !== undefined) lines.push(terminalLine(`  note:    ${view.note}`));
  const body = view.result ?? view.state;
  if (body !== undefined) {
    lines.push(formatSummary({ ...body, runId: view.runId }).replace(/^/gm, '  '));
  }
  for (const pending of view.state?.pendingApprovals ?? []) lines.push(formatPendingApproval(view.workflowId, pending).replace(/^/gm, '  '));
  if (view.result !== undefined && view.result.status !== 'completed') lines.push(`  recovery: ${formatRecovery(view.result)}`);
  return `${lines.join('\n')}\n`;
}

export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('status', STATUS_USAGE, argv, io, { json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) return usageError('status', STATUS_USAGE, io, 'expected one workflow id');
  try {
    const view = await withRunningServer(io, (client) => readTaskView(client, workflowId));
    io.stdout(args.values.json === true ? `${terminalJson(view, 2)}\n` : formatTaskView(view));
    return view.status === 'running' || view.status === 'completed' ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden status: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
