/**
 * `warden logs <workflowId> [--follow] [--json]`: a task's steps (its sub-agents' too), the
 * actions held for approval and, once it ended, its outcome; with `--follow`, as they happen
 * until the task ends, the way `warden run` shows them.
 */
import { followAgentTask, type ProgressEvent } from '../../client/start-agent-task';
import { WardenError } from '../../errors';
import type { StepRecord, TaskResult, TaskState } from '../../task/task-run';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { formatPendingApproval, formatRecovery, formatStep } from '../format-summary';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';
import { parseCommandArgs, usageError } from '../parse-command-args';
import { readTaskView } from '../task-view';
import { withRunningServer } from '../temporal-client';

export const LOGS_USAGE = `usage: warden logs <workflowId> [--follow] [--json]

  Prints the task's steps (and its sub-agents'), the actions waiting for approval and, once the
  task ended, its outcome. Never starts a Temporal server.
  --follow  keep printing as the task goes on, until it ends
  --json    one JSON object a line: { kind: "step", path, workflowId, step }, { kind: "approval", path,
            workflowId, pending }, and last { kind: "result", result } once the task ended
  Exit 0 when the task completed (or, without --follow, still runs), 1 otherwise.`;

function eventsOf(state: TaskState | TaskResult, path: string[], out: ProgressEvent[]): void {
  for (const step of state.steps) out.push({ kind: 'step', step, path, workflowId: state.workflowId });
  for (const pending of 'pendingApprovals' in state ? state.pendingApprovals : []) out.push({ kind: 'approval', pending, workflowId: state.workflowId, path });
  for (const child of state.children) eventsOf(child, [...path, child.agent], out);
}

export async function logsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('logs', LOGS_USAGE, argv, io, { follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) return usageError('logs', LOGS_USAGE, io, 'expected one workflow id');
  const json = args.values.json === true;
  const print = (event: ProgressEvent): void => {
    if (json) io.stdout(`${terminalJson(event)}\n`);
    else if (event.kind === 'step') io.stdout(`${formatStep(event.step as StepRecord, event.path)}\n`);
    else io.stdout(`${formatPendingApproval(event.workflowId, event.pending)}\n`);
  };
  const printResult = (result: TaskResult): void => {
    if (json) io.stdout(`${terminalJson({ kind: 'result', result })}\n`);
    else {
      // The reason and the answer are others' text (a model's, a tool's): one line each (../../terminal-text.ts).
      io.stdout(`${terminalLine(`task ${result.workflowId}: ${result.status.toUpperCase()}${result.reason ? ` - ${result.reason}` : ''}`)}\n`);
      if (result.final) io.stdout(`${terminalLine(`  final: ${result.final.answer}`)}\n`);
      if (result.status !== 'completed') io.stdout(`  recovery: ${formatRecovery(result)}\n`);
    }
  };
  try {
    return await withRunningServer(io, async (client) => {
      const view = await readTaskView(client, workflowId);
      if (view.result !== undefined || view.execution !== 'RUNNING' || args.values.follow !== true) {
        const events: ProgressEvent[] = [];
        const body = view.result ?? view.state;
        if (body !== undefined) eventsOf(body, [], events);
        for (const event of events) print(event);
        if (view.result !== undefined) printResult(view.result);
        else if (view.note !== undefined) io.stderr(`${terminalLine(`warden logs: ${view.note}`)}\n`);
        return view.status === 'completed' || view.status === 'running' ? EXIT.ok : EXIT.failed;
      }
      if (view.note !== undefined) io.stderr(`${terminalLine(`warden logs: ${view.note}`)}\n`);
      const result = await followAgentTask(client.workflow.getHandle(workflowId), print);
      printResult(result);
      return result.status === 'completed' ? EXIT.ok : EXIT.failed;
    });
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden logs: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
