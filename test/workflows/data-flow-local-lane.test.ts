/**
 * A kill beside the data flow's local activities, on the real Temporal server (issue 14's open
 * finding, the part new runs hit; issues 12 and 17's data flow).
 *
 * Two local activities of one run in flight together reach the workflow as they complete live,
 * and may be resolved in another interleaving on replay (test/attacks/open/kill-beside-local-activity-replay.test.ts).
 * The data flow runs its commit (`finishTask`) and its grant's revocation (`endTask`) as local
 * activities on the data plane's worker (`TaskFlow.callHere`); a `warden kill` arriving meanwhile
 * runs `authorizeKill`, a local activity too. Outside the lane (the old code) both were in flight
 * together in every case here. Their histories still replayed: after the loop the kill's handler
 * schedules nothing the run's own code races with, so the hazard was latent, one command away.
 * Now every local activity of a data-flow run goes in the run's one lane (workflows/local-lane.ts,
 * patch `warden-flow-local-lane`): the kill's waits for the commit, one at a time.
 *
 * The worker is Warden's own; a probe (an activity interceptor) holds one chosen activity of one
 * task at its start until the test lets it go, so "in flight when the kill arrives" is an event,
 * not a race; the held activity then runs unchanged. The probe also logs when every local
 * activity starts and ends: no two of a run may ever be in flight together.
 *
 * And a kill stays prompt: a tool call on the data flow is a regular activity, outside the lane,
 * so a kill during a long tool call is authorised and blocks the task while the call still runs.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowUpdateStage } from '@temporalio/client';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTask } from '../../client/kill-task';
import { followAgentTask } from '../../client/start-agent-task';
import { issueApproverKey, signApprovalDecision, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import type { Alert } from '../../monitoring/alert';
import { parseTask } from '../../task/load-task-file';
import { KILL_ACTION, KILL_REQUEST_ID, killUpdate } from '../../workflows/definitions';
import { workflowBundle } from '../../worker/workflow-bundle';
import { historiesOfRuns } from '../support/replay-runs';
import { makeNotesWorkspace } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** What the probe saw: a local activity of a workflow starting or ending. */
interface Seen {
  workflowId: string;
  activityType: string;
  event: 'start' | 'end';
}

/** Holds `activityType` of `workflowId` at its start: `entered` when it got there, `release` lets it run. */
interface Hold {
  entered: Deferred;
  release: Deferred;
}

const seen: Seen[] = [];
const holds = new Map<string, Hold>();
/** Completions of local activities, by `workflowId:activityType`. */
const ended = new Map<string, Deferred>();

const probe: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const { activityType, isLocal } = ctx.info;
      const workflowId = ctx.info.workflowExecution?.workflowId ?? '';
      const key = `${workflowId}:${activityType}`;
      if (isLocal) seen.push({ workflowId, activityType, event: 'start' });
      const hold = holds.get(key);
      if (hold !== undefined) {
        holds.delete(key);
        hold.entered.resolve();
        await hold.release.promise;
      }
      try {
        return await next(input);
      } finally {
        if (isLocal) {
          seen.push({ workflowId, activityType, event: 'end' });
          ended.get(key)?.resolve();
        }
      }
    },
  },
});

function holdNext(workflowId: string, activityType: string): Hold {
  const hold = { entered: deferred(), release: deferred() };
  holds.set(`${workflowId}:${activityType}`, hold);
  return hold;
}

function whenEnded(workflowId: string, activityType: string): Promise<void> {
  const done = deferred();
  ended.set(`${workflowId}:${activityType}`, done);
  return done.promise;
}

/** The most local activities of `workflowId` the probe saw in flight at once. */
function mostInFlight(workflowId: string): number {
  let now = 0;
  let most = 0;
  for (const s of seen.filter((x) => x.workflowId === workflowId)) {
    now += s.event === 'start' ? 1 : -1;
    most = Math.max(most, now);
  }
  return most;
}

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
const printed: Alert[] = [];

beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { printAlert: (alert) => printed.push(alert), activityInterceptors: [probe] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => env?.close());

function task(workspace: string, script: unknown[], extra: Record<string, unknown> = {}) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write notes',
      agent: { name: `lane-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.write'] },
      grants: { tools: ['fs.write'] },
      limits: { toolTimeout: '60s', deadline: '15m' },
      resources: { workspace },
      dataFlow: true,
      ...extra,
    },
    'lane-task.yaml',
    REPO_ROOT,
  );
}

const write = (n: number) => ({ tool: 'fs.write', args: { path: `note-${n}.txt`, content: `note ${n}` } });

/** Replays every run of `workflowId` against the current workflow code; returns the failures. */
async function replayFailures(workflowId: string): Promise<string[]> {
  const runs = await historiesOfRuns(env.client, workflowId);
  const histories = (async function* () {
    for (const history of runs) yield { workflowId, history };
  })();
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    if (result.error !== undefined) failures.push(String(result.error));
  }
  return failures;
}

// The cases run together: each holds and releases only its own workflow's activities (the probe's
// maps are keyed by workflow id), so their waits (the holds, the 3 s grace) overlap.
describe.concurrent('a kill while a data-flow local activity is in flight', () => {
  // The commit of a completed task (finishTask), the revocation of one that ended otherwise (endTask).
  const cases = [
    { local: 'finishTask', script: [write(1), { final: 'done' }], limits: {}, status: 'completed' },
    { local: 'endTask', script: [write(1), write(2), { final: 'never' }], limits: { maxSteps: 1 }, status: 'limit_exceeded' },
  ] as const;

  for (const c of cases) {
    it(`during ${c.local}: the kill waits its turn, the task ends ${c.status}, and the history replays`, async () => {
      const { workspace } = await makeNotesWorkspace('warden-lane-');
      const workflowId = `lane-${c.local}-${randomUUID()}`;
      const hold = holdNext(workflowId, c.local);
      const authorized = whenEnded(workflowId, 'authorizeKill');
      const handle = await env.start(task(workspace, [...c.script], { limits: { toolTimeout: '60s', deadline: '15m', ...c.limits } }), workflowId);
      await hold.entered.promise;

      // The kill is accepted (its handler runs) while the local activity is held.
      const runId = (await handle.describe()).runId;
      const signature = await signApprovalDecision(oncall, { workflowId, runId, requestId: KILL_REQUEST_ID, action: KILL_ACTION, approved: true, reason: 'beside the commit' });
      const kill = await env.client.workflow
        .getHandle(workflowId, runId)
        .startUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature, reason: 'beside the commit' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      // Outside the lane (the old code) authorizeKill finishes now, before the held call: that is
      // the order that did not replay. In the lane it cannot start; the grace only gives the old
      // code its chance to show the fault, nothing here waits on it to pass.
      await Promise.race([authorized, new Promise((r) => setTimeout(r, 3_000))]);
      hold.release.resolve();

      expect(await kill.result()).toMatchObject({ workflowId, status: 'ended', operator: oncall.name });
      const result = await followAgentTask(handle);
      expect(result.status).toBe(c.status);
      if (c.status === 'completed') expect(existsSync(join(workspace, 'note-1.txt'))).toBe(true);
      // One at a time: the kill's authorisation never overlapped the commit or the revocation.
      expect(seen.filter((s) => s.workflowId === workflowId && s.activityType === 'authorizeKill')).toHaveLength(2);
      expect({ mostInFlight: mostInFlight(workflowId), replayFailures: await replayFailures(workflowId) }).toEqual({ mostInFlight: 1, replayFailures: [] });
    }, 600_000);
  }
});

it.concurrent('a second kill while a killed task revokes its grant (endTask): recorded in turn, and the history replays', async () => {
  const { workspace } = await makeNotesWorkspace('warden-lane-');
  const workflowId = `lane-again-${randomUUID()}`;
  const tool = holdNext(workflowId, 'runTool');
  const handle = await env.start(task(workspace, [write(1), write(2), { final: 'never' }]), workflowId);
  await tool.entered.promise;
  expect((await killTask(env.client, { workflowId, key: oncall, reason: 'first' })).status).toBe('blocked');
  const revoking = holdNext(workflowId, 'endTask');
  tool.release.resolve();
  await revoking.entered.promise;
  // The operator kills again while the task ends: the handler authorises it and records its alert.
  const recorded = whenEnded(workflowId, 'respondToAnomaly');
  const runId = (await handle.describe()).runId;
  const signature = await signApprovalDecision(oncall, { workflowId, runId, requestId: KILL_REQUEST_ID, action: KILL_ACTION, approved: true, reason: 'again' });
  const again = await env.client.workflow
    .getHandle(workflowId, runId)
    .startUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature, reason: 'again' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
  await Promise.race([recorded, new Promise((r) => setTimeout(r, 3_000))]);
  revoking.release.resolve();
  expect(await again.result()).toMatchObject({ status: 'already-blocked', operator: oncall.name });
  const result = await followAgentTask(handle);
  expect(result.status).toBe('blocked');
  expect(result.alerts?.map((a) => [a.source, a.reason])).toEqual([
    ['kill', 'first'],
    ['kill', 'again'],
  ]);
  expect({ mostInFlight: mostInFlight(workflowId), replayFailures: await replayFailures(workflowId) }).toEqual({ mostInFlight: 1, replayFailures: [] });
}, 600_000);

it.concurrent('a kill during a long data-flow tool call is authorised and blocks the task while the call still runs', async () => {
  const { workspace } = await makeNotesWorkspace('warden-lane-');
  const workflowId = `lane-tool-${randomUUID()}`;
  const tool = holdNext(workflowId, 'runTool');
  const handle = await env.start(task(workspace, [write(1), write(2), { final: 'never' }]), workflowId);
  await tool.entered.promise;
  // The tool call is still held: the kill must not wait for it.
  const kill = await killTask(env.client, { workflowId, key: oncall, reason: 'runaway tool' });
  expect(kill).toMatchObject({ status: 'blocked', operator: oncall.name });
  tool.release.resolve();
  const result = await followAgentTask(handle);
  expect(result.status).toBe('blocked');
  expect(result.reason).toBe(`killed by ${oncall.name}: runaway tool`);
  // Nothing started after the kill; the call in flight was rolled back with the task.
  expect(result.steps.filter((s) => s.executed).map((s) => s.tool)).toEqual(['fs.write']);
  expect(existsSync(join(workspace, 'note-1.txt'))).toBe(false);
  expect(existsSync(join(workspace, 'note-2.txt'))).toBe(false);
  expect(mostInFlight(workflowId)).toBe(1);
  expect(await replayFailures(workflowId)).toEqual([]);
}, 600_000);
