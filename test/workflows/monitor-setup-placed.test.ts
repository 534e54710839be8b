/**
 * A data-flow root reads its monitor's setup (the agent's baseline, the task's response rules, the
 * hold key) in `placeTask`, not in a `beginMonitoring` local activity of its own (issue 17: one
 * local activity, its marker and its activation fewer per task; workflows/monitor-step.ts `begin`).
 * On the real Temporal server, with a baseline learnt by `warden baseline learn`:
 * - a new task runs no `beginMonitoring`, and `placeTask`'s result carries the setup, the same
 *   baseline and rules the local activity reads (only the hold key, drawn anew, differs);
 * - it scores and responds exactly as a task whose setup came from the local activity: the second
 *   run of each case has the setup taken out of `placeTask`'s result (what a placing worker whose
 *   code predates it, or whose read failed, answers) and asks `beginMonitoring` as before;
 * - a baseline signal (a new host) and a response rule (a block on a loop) both act on the setup read there;
 * - every history replays (whether the setup came with the placement is in the recorded result;
 *   runs recorded before replay in test/replay/committed-histories.test.ts).
 * The probe (an activity interceptor) counts local activities and edits results: a recorded
 * result is what the workflow sees on replay too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MonitorSetup } from '../../activities/monitor-activities';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { activityProbe } from '../support/activity-probe';
import { clerkTask, learnBaselineFrom, newClerkSetup, normalClerkRuns, startLoopbackServer, type ClerkSetup, type LoopbackServer } from '../support/monitor-kit';
import { replayAllRuns } from '../support/replay-runs';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

type Mode = 'as-is' | 'strip';
const modes = new Map<string, Mode>();
/** `beginMonitoring` local activities run, by workflow, and what they read. */
const begun = new Map<string, MonitorSetup[]>();
/** The setup `placeTask` brought, by workflow (before the probe took it out). */
const placed = new Map<string, MonitorSetup>();

const probe = activityProbe(modes, async ({ activityType, isLocal, workflowId, mode }, next) => {
  const result = await next();
  if (isLocal && activityType === 'beginMonitoring') begun.set(workflowId, [...(begun.get(workflowId) ?? []), result as MonitorSetup]);
  if (activityType === 'placeTask') {
    const answer = result as { monitor?: MonitorSetup };
    if (answer.monitor !== undefined) placed.set(workflowId, answer.monitor);
    if (mode === 'strip') delete answer.monitor;
  }
  return result;
});

let env: WardenTestEnv;
let api: LoopbackServer;
let outside: LoopbackServer;
let setup: ClerkSetup;

/** The clerk's task on the data flow: no sub-agents (a task that declares them runs the original loop). */
function flowTask(script: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const t = clerkTask(setup, script.filter((a) => (a as { spawn?: string }).spawn === undefined), { ...extra, dataFlow: true }) as { grants: Record<string, unknown>; subagents?: unknown };
  delete t.subagents;
  delete t.grants.subagents;
  return t;
}

beforeAll(async () => {
  api = await startLoopbackServer('{"status":"green"}');
  outside = await startLoopbackServer();
  env = await startWardenTestEnv(process.env, { activityInterceptors: [probe], printAlert: () => undefined });
  setup = await newClerkSetup(api);
  await learnBaselineFrom(await normalClerkRuns(env, setup, (script) => flowTask(script)));
}, 600_000);

afterAll(async () => {
  await env?.close();
  await Promise.all([api?.close(), outside?.close()]);
});

async function run(task: Record<string, unknown>, mode: Mode): Promise<{ workflowId: string; result: TaskResult }> {
  const workflowId = `monitor-placed-${mode}-${randomUUID()}`;
  modes.set(workflowId, mode);
  const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: parseTask(task, 'monitor-placed.yaml', REPO_ROOT) }] });
  env.workflowIds.push(workflowId);
  return { workflowId, result: await followAgentTask(handle) };
}

/** What the monitor made of each step, and how the task ended. */
function scored(result: TaskResult) {
  return {
    status: result.status,
    steps: result.steps.map((s) => ({ tool: s.tool, executed: s.executed, score: s.monitor?.score, reasons: s.monitor?.reasons.map((r) => r.signal) ?? [], response: s.monitor?.response })),
  };
}

/** The setup without its hold key, drawn anew by every read. */
function withoutKey(s: MonitorSetup | undefined) {
  if (s === undefined) return undefined;
  const { holdKey: _key, ...rest } = s;
  return rest;
}

const cases: [string, () => Record<string, unknown>, (r: TaskResult) => void][] = [
  [
    // The request is held for approval at the egress (not given here): the step is scored either way.
    'a baseline signal: a request to a host the clerk never reached scores new-host',
    () => flowTask([{ tool: 'fs.read', args: { path: 'notes.txt' } }, { tool: 'http.fetch', args: { url: `${outside.url}/x` } }, { final: 'done' }], { extraHosts: [outside.host], limits: { maxSteps: 60, approvalTimeout: '2s' } }),
    (r) => expect(r.steps[1]?.monitor?.reasons.map((x) => x.signal)).toContain('new-host'),
  ],
  [
    'a response rule of the task: the same call three times in a row blocks it',
    () => {
      const read = { tool: 'fs.read', args: { path: 'notes.txt' } };
      return flowTask([read, read, read, read, { final: 'never' }], { policies: ['block the task and roll it back when it makes the same call 3 times in a row'] });
    },
    (r) => expect(r.status).toBe('blocked'),
  ],
];

describe('the monitor begins with the setup placeTask read', { timeout: 600_000 }, () => {
  it.each(cases)('%s', async (_what, taskOf, check) => {
    const folded = await run(taskOf(), 'as-is');
    const asked = await run(taskOf(), 'strip');
    // No local activity of its own when the setup came with the placement; one when it did not.
    expect(begun.get(folded.workflowId) ?? []).toHaveLength(0);
    expect(begun.get(asked.workflowId) ?? []).toHaveLength(1);
    // The placement read what the local activity reads: the learnt baseline and the same rules.
    const fromPlace = placed.get(folded.workflowId);
    expect(fromPlace?.baseline?.agent).toBe(setup.agent);
    expect(fromPlace?.holdKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(withoutKey(fromPlace)).toEqual(withoutKey(begun.get(asked.workflowId)?.[0]));
    // And the monitor acted alike on both.
    expect(scored(folded.result)).toEqual(scored(asked.result));
    check(folded.result);
  });

  it('replays every run of this file', async () => {
    const { failures, workflows } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    for (const id of env.workflowIds) expect(workflows.has(id), id).toBe(true);
  });
});
