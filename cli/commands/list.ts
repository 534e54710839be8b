/**
 * `warden list [--status <status>] [--limit <n>] [--all] [--json]`: tasks on the Temporal server,
 * newest first. Temporal knows whether a workflow runs; whether a closed task completed, was
 * denied or rolled back is in its result, which is read for each closed task listed.
 */
import type { Client } from '@temporalio/client';
import { WardenError } from '../../errors';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';
import { TASK_STATUSES, type TaskResult, type TaskStatus } from '../../task/task-run';
import { AGENT_TASK_WORKFLOW } from '../../workflows/definitions';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { parseCommandArgs, usageError } from '../parse-command-args';
import { withRunningServer } from '../temporal-client';
import { closedTaskResult } from '../task-view';

export const LIST_USAGE = `usage: warden list [--status <status>] [--limit <n>] [--all] [--json]

  Lists agent tasks on the Temporal server, newest first. Never starts a server.
  --status <s>  only tasks in this state: ${TASK_STATUSES.join(', ')}
  --limit <n>   at most n tasks (default 20)
  --all         include sub-agents (child workflows), not only the tasks users started
  --json        one JSON array of { workflowId, runId, status, execution, agent?, user?, startTime, closeTime?, reason? }`;

export interface ListedTask {
  workflowId: string;
  runId: string;
  /** Warden's status; `unknown` when a closed workflow has no Warden result. */
  status: TaskStatus | 'unknown';
  /** Temporal's execution status. */
  execution: string;
  agent?: string;
  user?: string;
  parentWorkflowId?: string;
  startTime: string;
  closeTime?: string;
  reason?: string;
}

const DEFAULT_LIMIT = 20;

/** Lists tasks through Temporal's visibility API, reading the result of each closed one. */
export async function listTasks(client: Client, options: { status?: TaskStatus; limit: number; all: boolean }): Promise<ListedTask[]> {
  const running = options.status === 'running';
  const clauses = [`WorkflowType = "${AGENT_TASK_WORKFLOW}"`];
  if (running) clauses.push('ExecutionStatus = "Running"');
  else if (options.status !== undefined) clauses.push('ExecutionStatus != "Running"');
  const listed: ListedTask[] = [];
  for await (const execution of client.workflow.list({ query: clauses.join(' AND '), pageSize: Math.min(100, options.limit * 2) })) {
    if (!options.all && execution.parentExecution?.workflowId) continue;
    const memo = execution.memo ?? {};
    const task: ListedTask = {
      workflowId: execution.workflowId,
      runId: execution.runId,
      status: execution.status.name === 'RUNNING' ? 'running' : 'unknown',
      execution: execution.status.name,
      ...(typeof memo['agent'] === 'string' ? { agent: memo['agent'] } : {}),
      ...(typeof memo['user'] === 'string' ? { user: memo['user'] } : {}),
      ...(execution.parentExecution?.workflowId ? { parentWorkflowId: execution.parentExecution.workflowId } : {}),
      startTime: execution.startTime.toISOString(),
      ...(execution.closeTime === undefined ? {} : { closeTime: execution.closeTime.toISOString() }),
    };
    // Completed tasks return their result; tasks that did not complete carry it in their failure.
    const result = await closedTaskResult(client.workflow.getHandle(execution.workflowId, execution.runId), execution.status.name);
    if (result !== undefined) {
      task.status = result.status;
      task.agent ??= result.agent;
      if (result.reason !== undefined) task.reason = result.reason;
    } else if (execution.status.name !== 'RUNNING') {
      task.status = execution.status.name === 'CANCELLED' ? 'cancelled' : execution.status.name === 'TIMED_OUT' ? 'timed_out' : 'failed';
      task.reason = `workflow ${execution.status.name.toLowerCase()}`;
    }
    if (options.status !== undefined && task.status !== options.status) continue;
    listed.push(task);
    if (listed.length >= options.limit) break;
  }
  return listed;
}

function formatList(tasks: readonly ListedTask[]): string {
  if (tasks.length === 0) return 'no tasks\n';
  // Ids, agent names and reasons (a model's or tool's error text) are others' text: one line each, no control of theirs.
  const rows = tasks.map((t) => [t.workflowId, t.status.toUpperCase(), t.agent ?? '-', t.startTime.replace(/\.\d+Z$/, 'Z'), t.reason ?? ''].map(terminalLine));
  const header = ['WORKFLOW ID', 'STATUS', 'AGENT', 'STARTED', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export async function listCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('list', LIST_USAGE, argv, io, {
    status: { type: 'string' },
    limit: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) return usageError('list', LIST_USAGE, io, `unexpected argument "${args.positionals[0]}"`);
  const status = args.values.status;
  if (status !== undefined && !(TASK_STATUSES as readonly string[]).includes(status)) {
    return usageError('list', LIST_USAGE, io, `--status must be one of ${TASK_STATUSES.join(', ')}, not "${status}"`);
  }
  const limitText = args.values.limit ?? String(DEFAULT_LIMIT);
  if (!/^\d+$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 1000) return usageError('list', LIST_USAGE, io, '--limit must be a number from 1 to 1000');
  try {
    const tasks = await withRunningServer(io, (client) =>
      listTasks(client, { ...(status === undefined ? {} : { status: status as TaskStatus }), limit: Number(limitText), all: args.values.all === true }),
    );
    io.stdout(args.values.json === true ? `${terminalJson(tasks, 2)}\n` : formatList(tasks));
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden list: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
