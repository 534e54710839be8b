/**
 * What a standalone worker's log keeps of the SDK's entries (worker/create-warden-worker.ts,
 * `installWorkerRuntime`): an operator reads it for what needs them, so outcomes a task reports
 * itself are one line each, and unexpected errors keep their stack.
 *
 * - A task that ended other than completed (denied, timed out, ...: its result says so) is one
 *   INFO line, not the SDK's WARN "Workflow failed" with a stack.
 * - The data-plane worker's "No workflows registered" WARN is expected (activities only, by
 *   design) and becomes one INFO line saying what that worker is for.
 * - An activity that failed with a refusal (a guard refused the action: a code of
 *   refusal-codes.ts, which the task reports in its step) is one WARN line with the code and the
 *   why, no stack: the stack is the activity boundary's, where the refusal became a failure, and
 *   says nothing. Any other failure keeps the SDK's entry, stack and all.
 * - The SDK's INFO that a worker polls no Nexus tasks is dropped: Warden registers no Nexus
 *   services on any worker, so the line said the same thing at every start and nothing to act on.
 */
import { inspect } from 'node:util';
import type { LogEntry } from '@temporalio/worker';
import { TASK_END_MESSAGE, TASK_FAILURE_TYPES } from '../workflows/task-close';
import { AGENT_TASK_WORKFLOW } from '../workflows/definitions';
import { isRefusalCode } from '../refusal-codes';
import { terminalLine, terminalLines } from '../terminal-text';

const NO_WORKFLOWS_MESSAGE = 'No workflows registered, not polling for workflow tasks';
/** The SDK's entries about a kind of task Warden never registers (by message and level): dropped. */
const NEVER_REGISTERED: ReadonlyArray<{ level: LogEntry['level']; message: string }> = [{ level: 'INFO', message: 'No Nexus services registered, not polling for Nexus tasks' }];

/** Whether a log entry is the SDK saying, at its usual level, that a worker polls for nothing of a kind Warden never registers (Nexus). */
export function isNeverRegisteredLog(entry: Pick<LogEntry, 'level' | 'message'>): boolean {
  return NEVER_REGISTERED.some((known) => known.level === entry.level && known.message === entry.message);
}

/** What starts each line of a log entry after its first: no entry starts so. */
export const CONTINUATION = '  | ';

/**
 * Whether a log entry is the SDK's WARN that a worker has no workflows, from the data-plane worker
 * (task queue `<queue>@<workerId>`, see dataplane/shared-storage.ts), which is activities-only by
 * design. The same warning from any other worker is still a warning.
 */
export function isDataPlaneNoWorkflowsLog(entry: Pick<LogEntry, 'message' | 'meta'>): boolean {
  const taskQueue = entry.meta?.taskQueue;
  return entry.message === NO_WORKFLOWS_MESSAGE && typeof taskQueue === 'string' && taskQueue.includes('@');
}

/** Whether a log entry is the SDK's "Workflow failed" for a task that closed with `ERR_TASK_<STATUS>` (task-close.ts). */
export function isTaskEndLog(entry: Pick<LogEntry, 'message' | 'meta'>): boolean {
  if (entry.message !== 'Workflow failed' || entry.meta?.workflowType !== AGENT_TASK_WORKFLOW) return false;
  const error = entry.meta?.error as { name?: unknown; type?: unknown; message?: unknown } | undefined;
  if (typeof error?.type === 'string') return (Object.values(TASK_FAILURE_TYPES) as string[]).includes(error.type);
  // Copied out of the workflow thread, the failure is a plain Error: its message says what it was.
  return typeof error?.message === 'string' && TASK_END_MESSAGE.test(error.message);
}

/**
 * The refusal an SDK "Activity failed" entry reports: its code (the ApplicationFailure's `type`
 * the activity boundary gave it, or a WardenError's `code` thrown as is) and message, when that
 * code is one of refusal-codes.ts; undefined for any other entry or failure.
 */
export function activityRefusalOf(entry: Pick<LogEntry, 'message' | 'meta'>): { code: string; message: string } | undefined {
  if (entry.message !== 'Activity failed') return undefined;
  const error = entry.meta?.error as { type?: unknown; code?: unknown; message?: unknown } | undefined;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = typeof error.type === 'string' ? error.type : error.code;
  if (!isRefusalCode(code)) return undefined;
  return { code, message: typeof error.message === 'string' ? error.message : '' };
}

/** Which of an activity entry's fields a refusal's one line keeps: where it happened, not the task token. */
const REFUSAL_FIELDS = ['activityType', 'activityId', 'attempt', 'isLocal', 'workflowId', 'taskQueue', 'durationMs'] as const;

/**
 * `text` on one line: every run of white space holding a line break becomes one space (a
 * refusal's message may quote a statement over lines), then every control made safe for a
 * terminal line (../terminal-text.ts).
 */
function oneLine(text: string): string {
  return terminalLine(text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' '));
}

/**
 * What a standalone worker writes for the SDK's log entry `entry` (see the module comment): the
 * text, ending in a newline; time as ISO 8601 from the entry's `timestampNanos`. A refusal's or a
 * task's end line holds the tool's text on that one line; an entry kept whole keeps its own line
 * breaks (a stack), each line made safe and each after the first starting {@link CONTINUATION}: no
 * text a tool, server or model wrote reaches the terminal as a control or starts a line of the log
 * (../terminal-text.ts). The empty string for an entry the log drops ({@link isNeverRegisteredLog}).
 */
export function workerLogText(entry: LogEntry): string {
  if (isNeverRegisteredLog(entry)) return '';
  const line = (level: string, message: string, meta: Record<string, unknown> | undefined) => {
    const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    const text = terminalLines(`${time} [${level}] ${message}${meta === undefined ? '' : ` ${inspect(meta, { depth: 4, breakLength: Infinity })}`}`);
    // Only Warden starts a line with a time: every further line of an entry (a stack, a message
    // over lines a tool wrote) is marked as the entry's continuation.
    return `${text.split('\n').join(`\n${CONTINUATION}`)}\n`;
  };
  if (isDataPlaneNoWorkflowsLog(entry)) {
    return line('INFO', `data-plane worker polling ${String(entry.meta?.taskQueue)} (activities of the tasks this worker holds; no workflows by design)`, undefined);
  }
  if (isTaskEndLog(entry)) {
    const error = entry.meta?.error as { message?: string };
    return line('INFO', terminalLine(`task ${String(entry.meta?.workflowId ?? '')} ended: ${error.message ?? ''}`), undefined);
  }
  const refusal = activityRefusalOf(entry);
  if (refusal !== undefined) {
    const where = Object.fromEntries(REFUSAL_FIELDS.filter((field) => entry.meta?.[field] !== undefined).map((field) => [field, entry.meta![field]]));
    return line(entry.level, `${entry.message}, refused: ${refusal.code} ${oneLine(refusal.message)}`, where);
  }
  return line(entry.level, entry.message, entry.meta);
}
