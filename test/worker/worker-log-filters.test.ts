/**
 * What a standalone worker's log keeps (worker/create-warden-worker.ts): the SDK's "No workflows
 * registered" WARN is expected from the data-plane worker only (task queue `<queue>@<workerId>`,
 * activities by design) and becomes one INFO line there; from any other worker it stays a WARN.
 * And the isolate's execution timeout: above Temporal's default workflow task timeout (10 s), so
 * a slow activation on a loaded machine is not killed at the SDK's 5 s default and retried.
 */
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { compileWorkerOptions } from '@temporalio/worker/lib/worker-options';
import { WORKFLOW_WORKER_OPTIONS } from '../../worker/create-warden-worker';
import { isDataPlaneNoWorkflowsLog, isNeverRegisteredLog, workerLogText } from '../../worker/worker-log-filters';
import { toApplicationFailure } from '../../activities/to-application-failure';
import { WardenError, type ErrorCode } from '../../errors';
import { REFUSAL_CODES } from '../../refusal-codes';

const NO_WORKFLOWS = 'No workflows registered, not polling for workflow tasks';

describe('isDataPlaneNoWorkflowsLog', () => {
  it.each([
    ['the data-plane worker', NO_WORKFLOWS, { taskQueue: 'warden-agent-tasks@vm-8c6553bf' }, true],
    ['the task-queue worker (a real misconfiguration)', NO_WORKFLOWS, { taskQueue: 'warden-agent-tasks' }, false],
    ['no task queue named', NO_WORKFLOWS, undefined, false],
    ['another warning from the data-plane worker', 'Worker state changed', { taskQueue: 'q@w' }, false],
    ['a message that only starts the same', `${NO_WORKFLOWS} (and more)`, { taskQueue: 'q@w' }, false],
  ] as const)('%s', (_name, message, meta, expected) => {
    expect(isDataPlaneNoWorkflowsLog({ message, meta: meta as Record<string, unknown> | undefined })).toBe(expected);
  });
});

describe('what the SDK says of kinds of task Warden never registers (Nexus)', () => {
  const entry = (level: LogEntry['level'], message: string): LogEntry => ({ level, message, timestampNanos: 1_764_576_000_000_000_000n, meta: { sdkComponent: 'worker', taskQueue: 'warden-agent-tasks' } });
  it.each<[string, LogEntry, boolean]>([
    ["the SDK's INFO at each worker's start", entry('INFO', 'No Nexus services registered, not polling for Nexus tasks'), true],
    ['the same text at another level is kept (not what the SDK says at start)', entry('WARN', 'No Nexus services registered, not polling for Nexus tasks'), false],
    ['a message that only starts the same is kept', entry('INFO', 'No Nexus services registered, not polling for Nexus tasks (and more)'), false],
    ['another INFO is kept', entry('INFO', 'Worker state changed'), false],
  ])('%s', (_what, logEntry, dropped) => {
    expect(isNeverRegisteredLog(logEntry)).toBe(dropped);
    expect(workerLogText(logEntry) === '').toBe(dropped);
  });
});

describe('isolate execution timeout', () => {
  it("reaches the SDK's compiled options above Temporal's default workflow task timeout (10 s; the SDK's own default is 5 s)", () => {
    const compiled = compileWorkerOptions(
      { taskQueue: 'q', workflowsPath: __filename, ...WORKFLOW_WORKER_OPTIONS } as Parameters<typeof compileWorkerOptions>[0],
      new DefaultLogger('ERROR'),
      undefined as unknown as Parameters<typeof compileWorkerOptions>[2],
    );
    expect(compiled.isolateExecutionTimeoutMs).toBeGreaterThan(10_000);
  });
});

/** An entry as the SDK's activity logs a failed activity (`Activity.execute`, @temporalio/worker/lib/activity.js). */
function activityFailed(error: unknown): LogEntry {
  return {
    level: 'WARN',
    message: 'Activity failed',
    timestampNanos: 1_764_576_000_000_000_000n,
    meta: { sdkComponent: 'worker', taskQueue: 'q@w', isLocal: false, attempt: 1, namespace: 'default', taskToken: 'CiQwMWEy-secret-ish-token', activityId: '6', activityType: 'runTool', workflowId: 'warden-a-1', workflowRunId: 'r', workflowType: 'agentTask', error, durationMs: 12 },
  };
}
/** A stack frame, on a continuation line of its entry (CONTINUATION). */
const STACK = /\n  \| \s+at /;

describe('a refused tool call in the worker log: one line with the code, no stack', () => {
  it.each([...REFUSAL_CODES].map((code) => [code]))('%s, as the activity boundary turns it into a failure', (code) => {
    const failure = toApplicationFailure(new WardenError(code as ErrorCode, `refused because of ${code}`, { details: { path: '../x' } }));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    const text = workerLogText(activityFailed(failure));
    expect(text.endsWith('\n')).toBe(true);
    expect(text.slice(0, -1)).not.toContain('\n');
    expect(text).toContain(`[WARN] Activity failed, refused: ${code} refused because of ${code}`);
    expect(text).toContain("activityType: 'runTool'");
    expect(text).toContain("workflowId: 'warden-a-1'");
    expect(text).not.toContain('taskToken');
  });

  it.each<[string, unknown, string]>([
    ['a WardenError thrown as is (its code, no type)', new WardenError('ERR_NETWORK_DENIED', 'host x is denied'), 'refused: ERR_NETWORK_DENIED host x is denied'],
    ['a refusal whose message spans lines', toApplicationFailure(new WardenError('ERR_SQL_DENIED', 'DROP is denied:\n  DROP TABLE t\r\n')), 'refused: ERR_SQL_DENIED DROP is denied: DROP TABLE t'],
  ])('%s', (_what, error, expected) => {
    const text = workerLogText(activityFailed(error));
    expect(text.slice(0, -1)).not.toContain('\n');
    expect(text).toContain(expected);
  });
});

describe('any other failure keeps the SDK entry with its stack', () => {
  it.each<[string, unknown]>([
    ['an unexpected error (a bug: TypeError)', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a Warden failure that is no refusal (a tool threw)', toApplicationFailure(new WardenError('ERR_TOOL_THREW', 'boom'))],
    ['a Warden failure that is no refusal (the sandbox crashed)', toApplicationFailure(new WardenError('ERR_SANDBOX_CRASHED', 'gone', { retryable: true }))],
    ['an ApplicationFailure of a type Warden does not know', ApplicationFailure.create({ type: 'ERR_SOMETHING_ELSE', message: 'x' })],
    ['an ApplicationFailure without a type', ApplicationFailure.create({ message: 'x' })],
  ])('%s', (_what, error) => {
    const text = workerLogText(activityFailed(error));
    expect(text).toContain('[WARN] Activity failed {');
    expect(text).not.toContain('refused:');
    expect(text).toMatch(STACK);
  });

  it('a task that ended denied is still one INFO line, the data-plane notice too', () => {
    const ended = workerLogText({ level: 'WARN', message: 'Workflow failed', timestampNanos: 0n, meta: { workflowType: 'agentTask', workflowId: 'warden-a-1', error: ApplicationFailure.create({ type: 'ERR_TASK_DENIED', message: 'denied: no' }) } });
    expect(ended).toBe('1970-01-01T00:00:00.000Z [INFO] task warden-a-1 ended: denied: no\n');
    const dataPlane = workerLogText({ level: 'WARN', message: NO_WORKFLOWS, timestampNanos: 0n, meta: { taskQueue: 'q@w' } });
    expect(dataPlane).toBe('1970-01-01T00:00:00.000Z [INFO] data-plane worker polling q@w (activities of the tasks this worker holds; no workflows by design)\n');
  });
});
