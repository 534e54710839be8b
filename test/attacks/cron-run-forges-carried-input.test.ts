/**
 * Attack (issues 12/17, data flow, forged internal input): `trustedFlowInput`
 * (workflows/agent-task.ts) accepts Warden's own input fields (placement, task ref, carried state,
 * grant identity, policy state, deadline) only when `workflowInfo().continuedFromExecutionRunId`
 * is set, i.e. "from this task's previous run". But Temporal sets that id on every run that
 * follows another in a chain, not only on the flow's own continue-as-new: a **cron** run (and a
 * workflow retry) starts with the client's original input and the previous run's id. A client that
 * starts `agentTask` with a `cronSchedule` and forged fields is refused on the first run
 * (ERR_TASK_INPUT_INVALID) and believed on the second. Here it forges the policy state (negative
 * file counters): the task's own rule `never write more than 1 files` lets three writes through.
 *
 * Held now: carried fields are taken only from the task's own continue-as-new (a previous run,
 * no cron schedule, first attempt), so every cron run (and a workflow retry) is refused like the
 * first, and the budget rule holds.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

function writerTask(workspace: string) {
  return parseTask(
      {
        user: 'mallory@example.com',
        intent: 'write one file',
        agent: { name: 'writer', model: { driver: 'scripted', script: [1, 2, 3].map((n) => ({ tool: 'fs.write', args: { path: `f${n}.txt`, content: `file ${n}` } })).concat([{ final: 'done' } as never]) } },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        policies: ['never write more than 1 files'],
        limits: { toolTimeout: '60s', maxSteps: 10, deadline: '5m' },
        resources: { workspace },
        dataFlow: true,
      },
      'cron-forge.yaml',
      REPO_ROOT,
    );
}

describe('a cron run of agentTask', () => {
  it('(control) the budget rule holds the same task to one file when started plainly', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-cron-control-'));
    const workflowId = `cron-control-${Date.now()}`;
    const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: writerTask(workspace) }] });
    env.workflowIds.push(workflowId);
    const result = await followAgentTask(handle);
    // The second write is denied (the task stops and rolls back: nothing is committed).
    expect(result.status).toBe('denied');
    expect(result.steps[1]).toMatchObject({ decision: 'deny', executed: false });
    expect((await readdir(workspace)).filter((f) => f.endsWith('.txt'))).toHaveLength(0);
  });

  it('is refused forged carried fields like the first run', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-cron-forge-'));
    const task = writerTask(workspace);
    const workflowId = `cron-forge-${Date.now()}`;
    const counters = { files: -1000, calls: -1000, bytes: -1_000_000 };
    const policyState = { version: 1, agents: { [workflowId]: { name: 'writer', depth: 0, calls: 0, tools: { 'fs.write': counters, '*': counters } } }, recent: [] };
    const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, cronSchedule: '@every 2s', args: [{ task, policyState }] });
    try {
      // Runs of the chain, each closed with its outcome, until the second one has closed.
      const closed: { runId: string; event: temporal.api.history.v1.IHistoryEvent }[] = [];
      let runId: string | undefined = handle.firstExecutionRunId;
      while (closed.length < 2 && runId !== undefined) {
        const h = env.client.workflow.getHandle(workflowId, runId);
        let last: temporal.api.history.v1.IHistoryEvent | undefined;
        for (let i = 0; i < 1200; i++) {
          const events = (await h.fetchHistory()).events ?? [];
          last = events[events.length - 1];
          if (last?.workflowExecutionCompletedEventAttributes != null || last?.workflowExecutionFailedEventAttributes != null || last?.workflowExecutionTimedOutEventAttributes != null) break;
          last = undefined;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(last, `run ${closed.length + 1} closed`).toBeDefined();
        closed.push({ runId, event: last! });
        runId = last!.workflowExecutionCompletedEventAttributes?.newExecutionRunId ?? last!.workflowExecutionFailedEventAttributes?.newExecutionRunId ?? undefined;
      }
      const outcome = (e: temporal.api.history.v1.IHistoryEvent) =>
        e.workflowExecutionFailedEventAttributes != null
          ? `failed: ${e.workflowExecutionFailedEventAttributes.failure?.message ?? ''}`
          : `completed: ${Buffer.from(e.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0]?.data ?? []).toString('utf8').slice(0, 300)}`;
      const first = outcome(closed[0]!.event);
      const second = outcome(closed[1]!.event);
      expect(first).toContain('may only come from the task');
      // The second run, same input, must be refused the same way.
      expect(second).toContain('may only come from the task');
      // Today: the second run completes and commits three files past the one-file budget.
      expect((await readdir(workspace)).filter((f) => f.endsWith('.txt')).length).toBeLessThanOrEqual(1);
    } finally {
      await env.client.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
    }
  });
});
