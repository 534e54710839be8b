/**
 * Past runs to learn baselines from: the results of completed agent tasks, read from Temporal
 * (each root task's result holds its sub-agents'), or from files of `warden run --json` output.
 */
import { readUserFile, UserFileError } from '../regular-file';
import type { Client } from '@temporalio/client';
import { MonitorError } from '../errors';
import { jsonProblemText, jsonSyntaxProblem } from '../json-syntax';
import { TaskResultSchema, type TaskResult } from '../task/task-run';
import { AGENT_TASK_WORKFLOW } from '../workflows/definitions';

export interface CollectOptions {
  /** Only tasks started at or after (ISO 8601). */
  since?: string;
  /** At most this many root tasks, newest first (default 1000). */
  limit?: number;
}

/** Results of completed root agent tasks in Temporal's visibility store, newest first. */
export async function collectTaskResults(client: Client, options: CollectOptions = {}): Promise<{ results: TaskResult[]; unreadable: string[] }> {
  const limit = options.limit ?? 1000;
  const query = `WorkflowType = "${AGENT_TASK_WORKFLOW}" AND ExecutionStatus = "Completed"${options.since === undefined ? '' : ` AND StartTime >= "${options.since}"`}`;
  const results: TaskResult[] = [];
  const unreadable: string[] = [];
  for await (const execution of client.workflow.list({ query })) {
    if (execution.workflowId.includes('/')) continue; // sub-agents come with their root's result
    if (results.length + unreadable.length >= limit) break;
    try {
      const value = await client.workflow.getHandle(execution.workflowId, execution.runId).result();
      const parsed = TaskResultSchema.safeParse(value);
      if (parsed.success) results.push(parsed.data);
      else unreadable.push(execution.workflowId);
    } catch {
      unreadable.push(execution.workflowId);
    }
  }
  return { results, unreadable };
}

/**
 * Where `text` (neither JSON nor JSON lines) breaks: in its first line that is not JSON when its
 * first line is JSON on its own (JSON lines meant), else in the text as one JSON value.
 */
function jsonLinesProblem(text: string): string {
  const lines = text.split('\n');
  const first = lines.findIndex((line) => line.trim() !== '');
  if (first === -1 || jsonSyntaxProblem(lines[first]!) !== undefined) return jsonProblemText(text);
  const bad = lines.findIndex((line) => line.trim() !== '' && jsonSyntaxProblem(line) !== undefined);
  const problem = bad === -1 ? undefined : jsonSyntaxProblem(lines[bad]!);
  if (problem === undefined) return jsonProblemText(text);
  return `line ${bad + 1}, column ${problem.column}: ${problem.message}`;
}

/**
 * Task results from a file: one result (`warden run --json`), a JSON array of them, or one per
 * line. Throws MonitorError ERR_TASK_RESULTS_FILE_INVALID naming the file and what is wrong.
 */
export async function readTaskResultsFile(file: string): Promise<TaskResult[]> {
  let text: string;
  try {
    // The reader of every user's file (../regular-file.ts): a FIFO is refused, not waited on.
    text = await readUserFile(file, { what: 'results file' });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    throw new MonitorError('ERR_TASK_RESULTS_FILE_INVALID', error.message, { details: { file } });
  }
  let values: unknown[];
  try {
    const whole: unknown = JSON.parse(text);
    values = Array.isArray(whole) ? whole : [whole];
  } catch {
    try {
      values = text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as unknown);
    } catch {
      throw new MonitorError('ERR_TASK_RESULTS_FILE_INVALID', `${file} is neither JSON nor JSON lines of task results (${jsonLinesProblem(text)})`, { details: { file } });
    }
  }
  return values.map((value, i) => {
    const parsed = TaskResultSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new MonitorError('ERR_TASK_RESULTS_FILE_INVALID', `${file}: result ${i + 1} is not a task result (${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'invalid'})`, { details: { file, index: i } });
    }
    return parsed.data;
  });
}
