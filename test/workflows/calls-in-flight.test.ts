/**
 * Whatever ends a task while its tool runs stops the tool, and the task goes on to its end only
 * once the tool is dead (workflows/calls-in-flight.ts, patch `warden-stop-calls-in-flight`).
 *
 * Before the fix `warden kill` (and any block: a monitor's, a parent's) stopped nothing in flight:
 * the workflow never requested the cancellation of the `runTool` activity it awaited, so a
 * `proc.run` program ran to its end (or `toolTimeout`) and the activity completed; the deadline
 * and a cancel did request it, but went on at once, so the saga and the grant's revocation ran
 * beside a program still running. (Was test/attacks/open/kill-leaves-program-running.test.ts.)
 *
 * A table over the ways a task ends × the loop × the tool kind. Observed from the worker itself
 * (test/support/run-tool-watch.ts): how `runTool` ended and which of its program's processes were
 * alive then, read from /proc, and, when the task's first end activity (saga or revocation)
 * started, whether `runTool` had ended and which processes were alive. No timing assertion: on the
 * old code a kill's `runTool` ends only when the program's two-minute sleep does, and completes;
 * a deadline's or cancel's end activities start while the program still runs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTask } from '../../client/kill-task';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { parseTask } from '../../task/load-task-file';
import { subagentWorkflowId } from '../../workflows/definitions';
import { replayHistories } from '../mcp/mcp-test-kit';
import { endStatusOf, processesWith, runToolWatchInterceptor, stoppedCall, until, watchRunToolOf, watchTaskEndOf } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
});

/** How the task is ended while its tool runs, and the status it then ends with. */
const WAYS = {
  /** `warden kill`: the kill Update blocks and remediates the task. */
  kill: 'blocked',
  /** The parent is killed while its sub-agent's tool runs: the parent's block reaches the sub-agent (block signal). */
  'parent killed': 'blocked',
  /** The task's deadline passes (the original loop's timer; on the data flow the worker stops the call at `deadlineAt`). */
  deadline: 'timed_out',
  /** The task is cancelled (Temporal cancel). */
  cancel: 'cancelled',
} as const;
type Way = keyof typeof WAYS;

/** Tools whose call outlives any wait for a heartbeat, and ends on its own well before the suite's timeout. */
const TOOLS = {
  'proc.run': { args: (marker: string) => ({ command: 'sh', args: ['-c', `sleep 120; : ${marker}`] }), grants: { commands: ['sh', 'sleep'] } },
};
type Tool = keyof typeof TOOLS;

/**
 * The data flow runs no sub-agents. Its deadline (kept by activity timeouts, no timer) did not wait
 * for the call: the server timed `runTool` out and the saga ran beside the program, which the
 * worker killed only at the call's next heartbeat (was
 * test/attacks/open/deadline-leaves-data-flow-program-running.test.ts). Now the worker stops the
 * call at the deadline it is given and the activity fails ERR_DEADLINE_EXCEEDED once the program is
 * dead (patch `warden-flow-call-deadline`); the other tool kinds' rows are in
 * calls-in-flight-every-kind.test.ts.
 */
const CASES: [Way, 'original loop' | 'data flow', Tool][] = [
  ['kill', 'original loop', 'proc.run'],
  ['kill', 'data flow', 'proc.run'],
  ['parent killed', 'original loop', 'proc.run'],
  ['deadline', 'original loop', 'proc.run'],
  ['deadline', 'data flow', 'proc.run'],
  ['cancel', 'original loop', 'proc.run'],
  ['cancel', 'data flow', 'proc.run'],
];

describe('a task ended while its tool runs', () => {
  it.each(CASES)('%s (%s, %s): the tool is stopped, and the task ends after it', async (way, loop, tool) => {
    const marker = `warden-stop-${randomUUID()}`;
    const call = { tool, args: TOOLS[tool].args(marker) };
    const child = `runner-${randomUUID().slice(0, 8)}`;
    const limits = { toolTimeout: '900s', ...(way === 'deadline' ? { deadline: '45s' } : {}) };
    const runner = { user: 'sam@example.com', intent: 'run a long program', tools: { builtin: [tool] }, grants: { tools: [tool], ...TOOLS[tool].grants }, limits };
    const task = parseTask(
      way === 'parent killed'
        ? {
            ...runner,
            agent: { name: 'parent', model: { driver: 'scripted', script: [{ spawn: child }, { final: 'done' }] } },
            grants: { ...runner.grants, subagents: [child] },
            // No limits of its own: it runs under its parent's (test/permissions/subagent-limits-inherited.test.ts).
            // With the schema's defaults it had toolTimeout 5s, whose wall-time limit raced the
            // cancellation, which reaches the activity only at its first heartbeat (5 s).
            subagents: { [child]: { intent: 'run a long program', agent: { name: child, model: { driver: 'scripted', script: [call, { final: 'done' }] } }, tools: runner.tools, grants: { tools: [tool], ...TOOLS[tool].grants } } },
          }
        : { ...runner, agent: { name: 'runner', model: { driver: 'scripted', script: [call, { final: 'done' }] } }, ...(loop === 'data flow' ? { dataFlow: true } : {}) },
      'stop-call.yaml',
      REPO_ROOT,
    );
    const workflowId = `stop-call-${way.replace(' ', '-')}-${randomUUID()}`;
    // The tool runs in the sub-agent when the parent is killed (its first step, index 0).
    const callerId = way === 'parent killed' ? subagentWorkflowId(workflowId, child, 0) : workflowId;
    const ended = watchRunToolOf(callerId, marker);
    const taskEnd = watchTaskEndOf(callerId, marker);
    const handle = await env.start(task, workflowId);
    await until(() => processesWith(marker).length > 0, 'the program started');

    if (way === 'kill' || way === 'parent killed') expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
    if (way === 'cancel') await handle.cancel();
    const status = await endStatusOf(handle);

    // The activity ended as cancelled (or stopped at the deadline), its program's tree already dead.
    expect(await ended).toEqual(stoppedCall(way, loop));
    // The task went on to its saga and revocation only after that.
    expect(await taskEnd).toMatchObject({ runToolEnded: true, alive: [] });
    expect(status).toBe(WAYS[way]);
    expect(processesWith(marker)).toEqual([]);
  }, 600_000);
});

// The cancellation requests and cancelled activities these runs recorded replay against the code (sub-agents included).
it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
}, 600_000);
