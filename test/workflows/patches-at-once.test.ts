/**
 * A new agent task records two patch markers for its patches, not one per patch (workflows/workflow-patches.ts,
 * `warden-patches-at-once` and `-2`; issue 17's history per step). Each `patched()` marker came with the
 * SDK's `TemporalChangeVersion` search attribute upsert: a 10-step data-flow task recorded 38 of
 * its 112 events for them. On the real Temporal server, on both loops: the history of a new run
 * holds exactly the two markers (and one per patch made since, `PATCHES_MADE_LATER`) and at most as many `TemporalChangeVersion` upserts, the task does what
 * every patch says (it completes on the data flow, with its claims attested), and it replays.
 * Runs recorded before, with a marker per patch or the first at-once marker alone, replay too
 * (test/replay/committed-histories.test.ts, `history-patch-each-*`, `history-patches-at-once-1-*`).
 */
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { COUNT_FAILED_CALLS_PATCH, LOCAL_PURE_CALLS_PATCH, PATCHES_AT_ONCE_2_PATCH, PATCHES_AT_ONCE_PATCH } from '../../workflows/workflow-patches';
import { replayAllRuns } from '../support/replay-runs';
import { makeNotesWorkspace } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

/** Patches made after the second at-once list, each asked on its own (its own marker) by every new task; the last only on the data flow. */
const PATCHES_MADE_LATER = (dataFlow: boolean) => [COUNT_FAILED_CALLS_PATCH, ...(dataFlow ? [LOCAL_PURE_CALLS_PATCH] : [])];

/** The patch ids of a history's `core_patch` markers, in order. */
function patchMarkers(events: HistoryEvent[]): string[] {
  return events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED && e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => {
      const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
      return data == null ? '' : (JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id;
    });
}

/** Upserts of the SDK's patch search attribute (`TemporalChangeVersion`). */
function changeVersionUpserts(events: HistoryEvent[]): number {
  return events.filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES && e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TemporalChangeVersion != null).length;
}

function task(workspace: string, dataFlow: boolean) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'exercise the patches of a new run',
      agent: {
        name: 'patches',
        model: {
          driver: 'scripted',
          script: [{ tool: 'fs.write', args: { path: 'report.txt', content: 'the report' } }, { tool: 'fs.read', args: { path: 'report.txt' } }, { final: 'done' }],
        },
      },
      tools: { builtin: ['fs.read', 'fs.write'] },
      grants: { tools: ['fs.read', 'fs.write'] },
      limits: { toolTimeout: '60s', maxSteps: 20, deadline: '15m' },
      resources: { workspace },
      dataFlow,
    },
    'patches-task.yaml',
    REPO_ROOT,
  );
}

describe('a new task takes every patch at once', { timeout: 600_000 }, () => {
  it.each([
    ['the data flow', true],
    ['the original loop', false],
  ])('on %s: the at-once markers and one per later patch, no more TemporalChangeVersion upserts, every patch taken', async (_loop, dataFlow) => {
    const { workspace } = await makeNotesWorkspace('warden-patches-');
    const workflowId = `patches-at-once-${dataFlow ? 'flow' : 'loop'}-${Date.now()}`;
    const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: task(workspace, dataFlow) }] });
    env.workflowIds.push(workflowId);
    const result = await followAgentTask(handle);
    expect(result.status, result.reason).toBe('completed');
    expect(result.steps.map((s) => [s.tool, s.executed])).toEqual([
      ['fs.write', true],
      ['fs.read', true],
    ]);
    const events = (await handle.fetchHistory()).events ?? [];
    // The two at-once markers and, after them, one per patch made later (until a third at-once
    // patch folds them in): every other patch this task asks is in one of the at-once lists.
    const markers = patchMarkers(events);
    expect(markers).toEqual([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH, ...PATCHES_MADE_LATER(dataFlow)]);
    expect(changeVersionUpserts(events)).toBeLessThanOrEqual(markers.length);
    // The data flow (a patch of its own) was taken: its activities ran, the original loop's did not.
    const activities = events.flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name == null ? [] : [e.activityTaskScheduledEventAttributes.activityType.name]));
    if (dataFlow) expect(activities).toContain('placeTask');
    else expect(activities).not.toContain('placeTask');
  });

  it('replays every run of this file', async () => {
    const { failures, workflows } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    for (const id of env.workflowIds) expect(workflows.has(id), id).toBe(true);
  });
});
