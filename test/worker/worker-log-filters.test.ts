/**
 * What a standalone worker's log keeps (worker/create-warden-worker.ts): the SDK's "No workflows
 * registered" WARN is expected from the data-plane worker only (task queue `<queue>@<workerId>`,
 * activities by design) and becomes one INFO line there; from any other worker it stays a WARN.
 * And the isolate's execution timeout: above Temporal's default workflow task timeout (10 s), so
 * a slow activation on a loaded machine is not killed at the SDK's 5 s default and retried.
 */
import { describe, expect, it } from 'vitest';
import { DefaultLogger } from '@temporalio/worker';
import { compileWorkerOptions } from '@temporalio/worker/lib/worker-options';
import { WORKFLOW_WORKER_OPTIONS, isDataPlaneNoWorkflowsLog } from '../../worker/create-warden-worker';

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
