/**
 * Attack (issues 12/17, data flow, continue-as-new): the monitor's per-run history (calls so far,
 * the same call in a row, bytes and rows sent so far, calls per tool, armed response rules, a
 * step-up in force, the alerts raised) started empty in every run, and a run that continued as
 * new carried the grant, the policy state and the saga but not the monitor. An agent whose run
 * hands over every couple of steps (here the client's own `flow.maxRunStepBytes`, which anyone
 * starting a task may set; in production every ~2,000 events) repeated one call eight times: on
 * the original loop identical-loop climbed to 75 and the task was held and denied; on the data
 * flow it never went above 30 (each run restarted the count) and the task completed.
 *
 * Held now: the monitor hands a bounded summary of its state to the next run
 * (monitoring/monitor-carry.ts, `warden-monitor-carried`), taken only from the task's own
 * continue-as-new. Each row runs one task on the original loop and on the data flow with runs
 * handing over every couple of steps, and asks for the same verdict on every step, the same
 * alerts and the same end; a step-up approved in one run still holds the next action in the next
 * run; a client cannot start a task with a monitor state of its own. Every piece of state is
 * tested on its own in test/monitoring/monitor-carry.test.ts.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveCommand, denyCommand } from '../../cli/commands/approvals';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { openBlobStore } from '../../dataplane/blob-store';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { PendingApproval, TaskResult, TaskState } from '../../task/task-run';
import { taskStateQuery } from '../../workflows/definitions';
import { replayAllRuns } from '../support/replay-runs';
import { runCountingRuns } from '../support/monitor-kit';
import { registeredApprover } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());
/** A registered approver (unique per run: the test registry outlives runs). */
const { name: approver, cli } = registeredApprover('monitor-can');

interface Row {
  name: string;
  /** The calls the agent makes (then it answers). */
  calls: Record<string, unknown>[];
  policies?: string[];
  /** What the original loop must show, so the row tests what it names. */
  loop: { status: string; signal?: string; response?: string };
}

const ROWS: Row[] = [
  {
    // The finding: the same call eight times; the foundation's rules step up at score 60, the held call times out (denied).
    name: 'the same call eight times (identical-loop, step-up, alerts)',
    calls: Array.from({ length: 8 }, () => ({ a: 1, b: 2 })),
    loop: { status: 'denied', signal: 'identical-loop', response: 'step-up' },
  },
  {
    name: 'a whole-run count rule (calls of one tool) crossed in a later run',
    calls: Array.from({ length: 12 }, (_, i) => ({ a: i, b: 2 })),
    policies: ['block the task when it makes more than 9 calls of tool add'],
    loop: { status: 'blocked', response: 'block' },
  },
];

function task(row: Row, dataFlow: boolean, workspace: string, approvalTimeout = '3s') {
  const script = [...row.calls.map((args) => ({ tool: 'add', args })), { final: 'done' }];
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'add numbers',
      agent: { name: 'looper', model: { driver: 'scripted', script } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', approvalTimeout },
      resources: { workspace },
      ...(row.policies === undefined ? {} : { policies: row.policies }),
      dataFlow,
    },
    'loop.yaml',
    REPO_ROOT,
  );
}

async function run(row: Row, dataFlow: boolean): Promise<{ result: TaskResult; runs: number }> {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-monitor-can-'));
  const workflowId = `monitor-can-${dataFlow}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  return runCountingRuns(env, workflowId, task(row, dataFlow, workspace), dataFlow);
}

/** What the monitor and the guards decided on each step, and how the task ended. */
function verdicts(r: TaskResult) {
  return {
    status: r.status,
    steps: r.steps.map((s) => ({
      index: s.index,
      decision: s.decision,
      approval: s.approval?.status,
      score: s.monitor?.score ?? 0,
      reasons: (s.monitor?.reasons ?? []).map((x) => x.detail),
      response: s.monitor?.response,
    })),
    alerts: (r.alerts ?? []).map((a) => ({ stepIndex: a.stepIndex, score: a.score, response: a.response, rules: a.rules.map((f) => f.id) })),
  };
}

describe('the monitor across continue-as-new', () => {
  it.each(ROWS)('$name: scores, holds and ends as on the original loop', async (row) => {
    const loop = await run(row, false);
    const flow = await run(row, true);
    const expected = verdicts(loop.result);
    expect(expected.status).toBe(row.loop.status);
    if (row.loop.signal !== undefined) expect(loop.result.steps.some((s) => (s.monitor?.reasons ?? []).some((x) => x.signal === row.loop.signal))).toBe(true);
    if (row.loop.response !== undefined) expect(expected.steps.some((s) => s.response === row.loop.response)).toBe(true);
    // The flow really handed over several times, and every run's steps are in the result.
    expect(flow.runs).toBeGreaterThan(2);
    expect(verdicts(flow.result)).toEqual(expected);
  });

  it('keeps a step-up in force in the next run: the action after an approved hold is held again', async () => {
    // One step per run (each step's record is over `maxRunStepBytes`); the rule fires once, at the
    // fourth call, and from then on every action waits for a human.
    const row: Row = {
      name: 'step-up',
      calls: Array.from({ length: 6 }, (_, i) => ({ a: i, b: 2, note: 'x'.repeat(1100) })),
      policies: ['require approval for the next actions when it makes more than 3 calls of tool add'],
      loop: { status: 'denied' },
    };
    const outcomes: unknown[] = [];
    for (const dataFlow of [false, true]) {
      const workspace = await mkdtemp(join(tmpdir(), 'warden-monitor-can-stepup-'));
      const workflowId = `monitor-can-stepup-${dataFlow}-${Date.now()}`;
      const args = [{ task: task(row, dataFlow, workspace, '2m'), ...(dataFlow ? { flow: { maxRunStepBytes: 1024 } } : {}) }];
      const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args });
      env.workflowIds.push(workflowId);
      const first = await pendingApproval(workflowId, undefined);
      const approve = cli();
      expect(await approveCommand([workflowId, first.requestId, '--reason', 'checked'], approve.io), approve.out.join('')).toBe(0);
      // The next action (on the data flow, in the next run) waits too; denied, the task ends there.
      const second = await pendingApproval(workflowId, first.requestId);
      const deny = cli();
      expect(await denyCommand([workflowId, second.requestId, '--reason', 'enough'], deny.io), deny.out.join('')).toBe(0);
      const result = await assembleTaskResult(await followAgentTask(handle), openBlobStore(TEST_STATE_DIR));
      outcomes.push({ status: result.status, holds: result.steps.map((s) => s.approval?.status ?? null), held: [first.args.a, second.args.a] });
    }
    expect(outcomes[0]).toEqual({ status: 'denied', holds: [null, null, null, 'approved', 'denied'], held: [3, 4] });
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('replays: every run of the tasks above (hand-overs that carried the monitor, and the approved step-up holds, included)', async () => {
    const { runs, failures } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    // Three tasks on the original loop, and at least three runs of each on the data flow. The
    // step-up task's holds were decided by Updates: they replay since holds are named from a key
    // recorded in history (monitoring/hold-request-id.ts), not from the sandbox's random stream.
    expect(runs).toBeGreaterThanOrEqual(11);
  });

  it('takes no monitor state from a client that starts a task with it', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-monitor-can-forged-'));
    const workflowId = `monitor-can-forged-${Date.now()}`;
    // A state that would say "nothing seen yet": forged, it is refused like any carried field.
    const monitor = { calls: 0, spawns: 0, callsByTool: {}, earlier: { refused: 0, failed: 0, rows: 0, bytesOut: 0, rowsByOperation: {} }, events: [], armed: { 'task:1': false }, alerts: [] };
    const carried = { runs: 1, turn: 0, model: { id: 'scripted', version: '1' }, steps: 0, transcript: { ref: null, pending: [] }, saga: { compensations: [], notUndoable: [], snapshotTaken: false, writes: [] }, monitor };
    const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: task(ROWS[1]!, true, workspace), carried }] });
    env.workflowIds.push(workflowId);
    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error as { cause?: { type?: string; message?: string } },
    );
    expect(failure?.cause?.type).toBe('ERR_TASK_INPUT_INVALID');
    expect(failure?.cause?.message).toContain('carried');
  });
});

/** The task's pending approval other than `seen`, read from its current run; fails once the task has ended. */
async function pendingApproval(workflowId: string, seen: string | undefined): Promise<PendingApproval> {
  for (let i = 0; i < 1200; i++) {
    const state: TaskState | undefined = await env.client.workflow
      .getHandle(workflowId)
      .query(taskStateQuery)
      .catch(() => undefined);
    const pending = state?.pendingApprovals.find((p) => p.requestId !== seen);
    if (pending !== undefined) return pending;
    // A task that ended (its last run closed, not continued) asks nobody any more.
    const { status } = await env.client.workflow.getHandle(workflowId).describe();
    if (status.name !== 'RUNNING' && status.name !== 'CONTINUED_AS_NEW') throw new Error(`${workflowId} ended ${status.name} without holding another action`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no approval request appeared in ${workflowId}`);
}
