/**
 * Finding (issue 14): a `warden kill` that arrives while the agent loop has a local activity in
 * flight can leave a history that does not replay. The kill Update's handler runs `authorizeKill`
 * (a local activity) beside the loop's `checkPolicy` (local too); live, their results reach the
 * workflow each in its own activation as they complete, on replay (this SDK's Core) together
 * in one. The history here is a real one (test/workflows/monitor-kill.test.ts, "kills a task
 * between tool calls"): authorizeKill was scheduled first (seq 11), checkPolicy second (seq 12)
 * and finished first, so live the loop scheduled runTool (13) before the kill's respondToAnomaly
 * (14); replay resumes the handler first and fails: "Activity id of scheduled event '13' does not
 * match activity id of activity command '14'". A worker restart, or a cache eviction, on such a
 * task fails its workflow task over and over (the task is stuck, not killed twice).
 *
 * It is what made the sub-agent tree watch (`beginMonitoring` → `treeHosts`) look guilty of
 * monitor-kill's replay failure: a root task never runs that lookup, and this history is a root's.
 *
 * Verdict: WORKS (open) for histories recorded before the lane. New runs put every local activity
 * in one lane (workflows/local-lane.ts): the original loop's and both loops' handlers and policy
 * checks behind patch `warden-local-lane`, the data flow's commit and revocation behind
 * `warden-flow-local-lane` (test/workflows/local-lane.test.ts, data-flow-local-lane.test.ts, and
 * local-activity-lane-scan.test.ts for every call site). Still open: a history like this one (no
 * lane marker) fails on @temporalio/worker 1.24.0, although its Core resolves local activities in
 * marker order (temporalio/sdk-rust PR #1442, closing temporalio/sdk-typescript#1744): replay hands
 * both resolutions (markers 12 then 11, one workflow task) to the workflow in one activation, where
 * live each woke it on its own; the workflow resolves every job of an activation before any
 * awaiting code resumes, so the handler's shorter await chain schedules first. Tried and not kept: the
 * handlers' activities as regular ones: the Update's completion and the loop's next command then
 * replayed out of order ("Update machine does not handle this event: ActivityTaskScheduled") in 3
 * of 8 kill histories.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowBundle } from '../../../worker/workflow-bundle';

const { History } = temporal.api.history.v1;

it('a kill authorised while the loop checked a policy replays', async () => {
  const stored = JSON.parse(await readFile(join(__dirname, 'fixtures', 'kill-beside-policy-check.history.json'), 'utf8')) as { workflowId: string; history: object };
  const failures: string[] = [];
  const histories = (async function* () {
    yield { workflowId: stored.workflowId, history: History.fromObject(stored.history) };
  })();
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    if (result.error) failures.push(String(result.error));
  }
  expect(failures).toEqual([]);
}, 600_000);
