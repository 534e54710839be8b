/**
 * What a standalone worker's log keeps (worker/create-warden-worker.ts): the SDK's "No workflows
 * registered" WARN is expected from the data-plane worker only (task queue `<queue>@<workerId>`,
 * activities by design) and becomes one INFO line there; from any other worker it stays a WARN.
 * And the isolate's execution timeout: above Temporal's default workflow task timeout (10 s), so
 * a slow activation on a loaded machine is not killed at the SDK's 5 s default and retried.
 */
import { describe, expect, it } from 'vitest';
import { msToNumber } from '@temporalio/common/lib/time';
import { ISOLATE_EXECUTION_TIMEOUT, isDataPlaneNoWorkflowsLog } from '../../worker/create-warden-worker';

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
  it("is above Temporal's default workflow task timeout (10 s) and the SDK's 5 s default", () => {
    expect(msToNumber(ISOLATE_EXECUTION_TIMEOUT)).toBeGreaterThan(10_000);
  });
});
