/**
 * A task whose step-up hold was approved replays, after a worker restart, as it ran.
 *
 * The fault: the monitor named its holds with `uuid4()`, drawn from the workflow sandbox's seeded
 * `Math.random`. That stream is shared: the OpenTelemetry workflow interceptors draw span ids from
 * it, one for every Update validator (run when an Update arrives, never on replay), and a replay
 * by a worker without tracing draws none. Replayed, the hold got another id than the one the
 * approver answered; `decide` found nothing pending, and the replay failed with "Update machine
 * does not handle this event: ActivityTaskScheduled" (the original run's verifyApproval): the
 * approved task stuck. Now a hold's id comes from a key recorded in history (`beginMonitoring`),
 * and no workflow code draws from the random stream (the scan below keeps it so).
 *
 * Each row approves a step-up hold (an Update whose validator ran) and denies the next one, then
 * every run is replayed with the plain bundle and with the traced one (what a restarted worker
 * with and without telemetry runs). Fails on the old code: the plain replay at the approval, the
 * traced one at the denial (the approval's validator span shifted the stream).
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveCommand, denyCommand } from '../../cli/commands/approvals';
import { followAgentTask } from '../../client/start-agent-task';
import { holdRequestId } from '../../monitoring/hold-request-id';
import { parseTask } from '../../task/load-task-file';
import type { PendingApproval, TaskState } from '../../task/task-run';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { workflowBundle } from '../../worker/workflow-bundle';
import { taskStateQuery } from '../../workflows/definitions';
import { historiesOfRuns } from '../support/replay-runs';
import { registeredApprover } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());
const { name: approver, cli } = registeredApprover('hold-replay');

function stepUpTask(dataFlow: boolean, workspace: string) {
  // The rule fires at the fourth call; from then on every action waits for a human.
  const script = [...Array.from({ length: 6 }, (_, i) => ({ tool: 'add', args: { a: i, b: 2, note: 'x'.repeat(1100) } })), { final: 'done' }];
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'add numbers',
      agent: { name: 'hold-replayer', model: { driver: 'scripted', script } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', approvalTimeout: '2m' },
      resources: { workspace },
      policies: ['require approval for the next actions when it makes more than 3 calls of tool add'],
      dataFlow,
    },
    'hold-replay.yaml',
    REPO_ROOT,
  );
}

/** The task's pending approval other than `seen`, from its current run. */
async function pendingApproval(workflowId: string, seen: string | undefined): Promise<PendingApproval> {
  for (;;) {
    const state: TaskState | undefined = await env.client.workflow.getHandle(workflowId).query(taskStateQuery).catch(() => undefined);
    const pending = state?.pendingApprovals.find((p) => p.requestId !== seen);
    if (pending !== undefined) return pending;
    const { status } = await env.client.workflow.getHandle(workflowId).describe();
    if (status.name !== 'RUNNING' && status.name !== 'CONTINUED_AS_NEW') throw new Error(`${workflowId} ended ${status.name} without holding another action`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Replays every run of `workflowId` with one bundle variant; returns the failures. */
async function replayWith(workflowId: string, interceptorModules: readonly string[]): Promise<{ runs: number; failures: string[] }> {
  const histories = await historiesOfRuns(env.client, workflowId);
  const bundle = await workflowBundle(undefined, { workflowInterceptorModules: [...interceptorModules] });
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories.map((history) => ({ workflowId, history })))) {
    if (result.error !== undefined) failures.push(String(result.error));
  }
  return { runs: histories.length, failures };
}

describe('a task whose monitor hold was decided by an Update replays', () => {
  it.each([
    { name: 'the ordinary loop', dataFlow: false },
    { name: 'the data flow (the next hold in the next run)', dataFlow: true },
  ])('$name: approve one step-up hold, deny the next, replay plain and traced', async ({ dataFlow }) => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-hold-replay-'));
    const workflowId = `hold-replay-${dataFlow}-${randomUUID().slice(0, 8)}`;
    const args = [{ task: stepUpTask(dataFlow, workspace), ...(dataFlow ? { flow: { maxRunStepBytes: 1024 } } : {}) }];
    const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args });
    env.workflowIds.push(workflowId);
    const first = await pendingApproval(workflowId, undefined);
    const approve = cli();
    expect(await approveCommand([workflowId, first.requestId, '--reason', 'checked'], approve.io), approve.out.join('')).toBe(0);
    const second = await pendingApproval(workflowId, first.requestId);
    const deny = cli();
    expect(await denyCommand([workflowId, second.requestId, '--reason', 'enough'], deny.io), deny.out.join('')).toBe(0);
    const result = await followAgentTask(handle);
    expect(result.status).toBe('denied');
    // Named from the run's recorded key, one id per step.
    for (const held of [first, second]) expect(held.requestId).toMatch(/^m-[0-9a-f]{32}$/);
    expect(second.requestId).not.toBe(first.requestId);

    const plain = await replayWith(workflowId, []);
    expect(plain.failures).toEqual([]);
    const traced = await replayWith(workflowId, WORKFLOW_INTERCEPTOR_MODULES);
    expect(traced.failures).toEqual([]);
    if (dataFlow) expect(plain.runs).toBeGreaterThan(1);
  });
});

describe('holdRequestId', () => {
  it('is the same for the same key, run and step, and differs when any of them does', () => {
    const key = 'k'.repeat(43);
    const id = holdRequestId(key, 'run-1', 3);
    expect(id).toMatch(/^m-[0-9a-f]{32}$/);
    expect(holdRequestId(key, 'run-1', 3)).toBe(id);
    expect(new Set([id, holdRequestId(`${key}x`, 'run-1', 3), holdRequestId(key, 'run-2', 3), holdRequestId(key, 'run-1', 4)]).size).toBe(4);
  });

  it('refuses an empty key (it would name holds anyone can compute)', () => {
    expect(() => holdRequestId('', 'run-1', 3)).toThrow(/empty hold key/);
  });
});

describe('workflow code and the sandbox random stream', () => {
  // The stream differs between a run and its replay (interceptor spans, Update validators), so
  // nothing a workflow decides or shows may be drawn from it. The one allowed use: runs recorded
  // before holds had a key replay with the uuid4() they drew then.
  const ALLOWED = ['workflows/monitor-step.ts: const requestId = this.holdKey === undefined ? uuid4() : holdRequestId(this.holdKey, run.runId, step.index);'];

  it('no file under workflows/ draws from it (uuid4, Math.random, crypto.getRandomValues)', async () => {
    const uses: string[] = [];
    for (const name of (await readdir(join(REPO_ROOT, 'workflows'))).filter((n) => n.endsWith('.ts'))) {
      const lines = (await readFile(join(REPO_ROOT, 'workflows', name), 'utf8')).split('\n');
      for (const line of lines) {
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) continue;
        if (/\buuid4\s*\(|Math\.random|getRandomValues|randomUUID/.test(line)) uses.push(`workflows/${name}: ${line.trim()}`);
      }
    }
    expect(uses).toEqual(ALLOWED);
  });
});
