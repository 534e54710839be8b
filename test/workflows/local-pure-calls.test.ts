/**
 * Which tool calls run as local activities (issue 17: fewer round trips per step), on the real
 * Temporal server with Warden's own worker.
 *
 * On the data flow, a call of a pure tool (an isolate tool with no capability: it can only
 * compute on its input) whose limit is at most 5 s runs as a local activity on the data plane's
 * worker, the next turn folded in when the model is scripted (workflows/tool-step.ts
 * `runsLocally`, patch `warden-local-pure-calls`): no round trip through Temporal's matching. Every
 * other call stays an activity on the data plane's queue. A probe (an activity interceptor) sees
 * each `runTool` attempt and whether it ran as a local activity.
 *
 * And what the path must keep: at most 32 local calls in a row (their markers reach history
 * together), continue-as-new counting them, a kill waiting its turn no longer than the call, and
 * every history replaying.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { killTask } from '../../client/kill-task';
import { followAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import type { DataFlowOptions } from '../../task/data-flow';
import { parseTask } from '../../task/load-task-file';
import { LOCAL_RUN_MAX_CALLS } from '../../workflows/tool-step';
import { startFakeOpenAIServer, textReply, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { historiesOfRuns, replayAllRuns } from '../support/replay-runs';
import { makeNotesWorkspace } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** Each `runTool` attempt the probe saw: its workflow, the step's tool, and whether it was a local activity. */
const calls: { workflowId: string; tool: string; local: boolean }[] = [];
/** Holds the next `runTool` attempt of a workflow's tool (`<workflowId>:<tool>`) at its start until released. */
const holds = new Map<string, { entered: () => void; release: Promise<void> }>();

const probe: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      if (ctx.info.activityType === 'runTool') {
        const workflowId = ctx.info.workflowExecution?.workflowId ?? '';
        const arg = (input.args[0] ?? {}) as { tool?: string };
        calls.push({ workflowId, tool: arg.tool ?? '?', local: ctx.info.isLocal });
        const key = `${workflowId}:${arg.tool ?? '?'}`;
        const hold = holds.get(key);
        if (hold !== undefined) {
          holds.delete(key);
          hold.entered();
          await hold.release;
        }
      }
      return next(input);
    },
  },
});

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
let model: FakeOpenAIServer;

beforeAll(async () => {
  model = await startFakeOpenAIServer();
  env = await startWardenTestEnv(process.env, { activityInterceptors: [probe] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
  await model?.close();
});

const ADD = { name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' };

function task(workspace: string, script: unknown[], extra: Record<string, unknown> = {}) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'compute and write',
      agent: { name: `pure-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.read'], custom: [ADD] },
      grants: { tools: ['fs.read', 'add'] },
      limits: { deadline: '15m' },
      resources: { workspace },
      dataFlow: true,
      ...extra,
    },
    'pure-task.yaml',
    REPO_ROOT,
  );
}

async function start(t: ReturnType<typeof task>, workflowId: string, flow?: DataFlowOptions) {
  const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: t, ...(flow === undefined ? {} : { flow }) }] });
  env.workflowIds.push(workflowId);
  return handle;
}

const adds = (n: number, tool = 'add') => Array.from({ length: n }, (_, i) => ({ tool, args: { a: i, b: 1 } }));
const pathsOf = (workflowId: string) => calls.filter((c) => c.workflowId === workflowId).map((c) => (c.local ? 'local' : 'queued'));

describe.concurrent('which calls run as local activities', () => {
  // [case, fields added to the `add` tool, the task's limits, the task's data flow, the call's tool, the path every call takes]
  const cases: [string, Record<string, unknown>, Record<string, unknown>, boolean, string, 'local' | 'queued'][] = [
    ['a pure tool under the default 5 s limit', {}, {}, true, 'add', 'local'],
    ['a pure tool whose own 2 s limit shortens a 60 s task limit', { timeout: '2s' }, { toolTimeout: '60s' }, true, 'add', 'local'],
    ['a pure tool under a 6 s task limit', {}, { toolTimeout: '6s' }, true, 'add', 'queued'],
    ['a pure tool whose own 10 s limit the 5 s task limit shortens', { timeout: '10s' }, {}, true, 'add', 'local'],
    ['an isolate tool with a capability', { capabilities: ['fs.read'] }, {}, true, 'add', 'queued'],
    ['a built-in', {}, {}, true, 'fs.read', 'queued'],
    ['a pure tool on the original loop', {}, {}, false, 'add', 'queued'],
  ];

  for (const [what, addFields, limits, dataFlow, tool, path] of cases) {
    it(`${what}: ${path}`, async () => {
      const { workspace } = await makeNotesWorkspace('warden-pure-');
      await writeFile(join(workspace, 'notes.txt'), 'a note');
      const workflowId = `pure-path-${randomUUID()}`;
      const script = tool === 'fs.read' ? [{ tool, args: { path: 'notes.txt' } }, { tool, args: { path: 'notes.txt' } }] : adds(2);
      const extra = { tools: { builtin: ['fs.read'], custom: [{ ...ADD, ...addFields }] }, limits: { deadline: '15m', ...limits }, dataFlow };
      const result = await followAgentTask(await start(task(workspace, [...script, { final: 'done' }], extra), workflowId));
      expect(result.status, result.reason).toBe('completed');
      expect(result.steps.map((s) => s.error)).toEqual([undefined, undefined]);
      if (tool === 'add') expect(result.steps.map((s) => s.output)).toEqual([1, 2]);
      expect(pathsOf(workflowId)).toEqual([path, path]);
    }, 300_000);
  }
});

it('after 32 local calls in a row one goes through the queue, continue-as-new counts the local ones, and every run replays', async () => {
  const { workspace } = await makeNotesWorkspace('warden-pure-');
  const workflowId = `pure-row-${randomUUID()}`;
  const n = LOCAL_RUN_MAX_CALLS + 8;
  // A run hands over past 60 events: local calls add one marker each, all of them when their workflow task completes.
  const raw = await followAgentTask(await start(task(workspace, [...adds(n), { final: 'done' }], { limits: { maxSteps: n + 1, deadline: '15m' } }), workflowId, { maxRunEvents: 60 }));
  const result = await assembleTaskResult(raw, openBlobStore(TEST_STATE_DIR));
  expect(result.status, result.reason).toBe('completed');
  expect(result.steps.map((s) => s.output)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  const paths = pathsOf(workflowId);
  expect(paths).toHaveLength(n);
  // Never more than LOCAL_RUN_MAX_CALLS local calls without one through the queue (a new run starts the count again).
  let inRow = 0;
  for (const p of paths) {
    inRow = p === 'local' ? inRow + 1 : 0;
    expect(inRow).toBeLessThanOrEqual(LOCAL_RUN_MAX_CALLS);
  }
  expect(paths.filter((p) => p === 'local').length).toBeGreaterThan(n / 2);
  const runs = await historiesOfRuns(env.client, workflowId);
  expect(runs.length).toBeGreaterThan(1);
  for (const history of runs) expect(history.events?.length ?? 0).toBeLessThan(60 + 2 * LOCAL_RUN_MAX_CALLS);
}, 600_000);

it('a kill sent during a chain of local calls reaches the run before the task can complete: blocked, nothing committed', async () => {
  const { workspace } = await makeNotesWorkspace('warden-pure-');
  const workflowId = `pure-kill-${randomUUID()}`;
  let entered!: () => void;
  const inCall = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const script = [{ tool: 'fs.write', args: { path: 'kept.txt', content: 'only if the task completes' } }, ...adds(3), { final: 'done' }];
  const extra = { tools: { builtin: ['fs.write'], custom: [ADD] }, grants: { tools: ['fs.write', 'add'] } };
  // The first `add` is held at its start (the write before it went through the queue).
  holds.set(`${workflowId}:add`, { entered: () => entered(), release: new Promise<void>((resolve) => (release = resolve)) });
  const handle = await start(task(workspace, script, extra), workflowId);
  await inCall;
  expect(pathsOf(workflowId)).toEqual(['queued', 'local']);
  // Sent while the chain runs; it reaches the run when the chain's workflow task ends, before the final answer completes the task.
  const killing = killTask(env.client, { workflowId, key: oncall, reason: 'runaway' });
  setTimeout(release, 1_000);
  expect(await killing).toMatchObject({ status: 'blocked', operator: oncall.name });
  const result = await followAgentTask(handle);
  expect(result.status).toBe('blocked');
  expect(result.reason).toBe(`killed by ${oncall.name}: runaway`);
  expect(existsSync(join(workspace, 'kept.txt'))).toBe(false);
}, 300_000);


// One after the other: the model server answers requests in the order its replies were queued.
describe('a model reached over the network (an OpenAI-compatible server on loopback)', () => {
  it('a turn of pure calls: each but the last runs locally (no turn folded into it), the last goes to the queue and brings the next turn', async () => {
    const { workspace } = await makeNotesWorkspace('warden-pure-');
    const workflowId = `pure-model-${randomUUID()}`;
    model.enqueue(toolCallsReply(Array.from({ length: 4 }, (_, i) => toolCall('add', { a: i, b: 1 }, `call_${i}`))), textReply('done'));
    const result = await followAgentTask(await start(task(workspace, [], { agent: { name: `pure-${randomUUID().slice(0, 8)}`, model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } }, limits: { maxSteps: 10, deadline: '15m' } }), workflowId));
    expect(result.status, result.reason).toBe('completed');
    expect(result.steps.map((s) => s.output)).toEqual([1, 2, 3, 4]);
    expect(pathsOf(workflowId)).toEqual(['local', 'local', 'local', 'queued']);
  }, 300_000);

  it('a turn of 40 failing pure calls: a failed local call ends the chain, so no two run locally in a row', async () => {
    const { workspace } = await makeNotesWorkspace('warden-pure-');
    const workflowId = `pure-fail-${randomUUID()}`;
    const boom = { name: 'boom', description: 'throws', input: { type: 'object' }, source: "throw new Error('boom');" };
    model.enqueue(toolCallsReply(Array.from({ length: 40 }, (_, i) => toolCall('boom', { i }, `call_${i}`))), textReply('done'));
    const extra = { agent: { name: `pure-${randomUUID().slice(0, 8)}`, model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } }, tools: { custom: [boom] }, grants: { tools: ['boom'] }, limits: { maxSteps: 50, deadline: '15m', onDeny: 'continue' } };
    const result = await followAgentTask(await start(task(workspace, [], extra), workflowId));
    expect(result.steps).toHaveLength(40);
    expect(result.steps.every((s) => s.error?.code === 'ERR_TOOL_THREW')).toBe(true);
    const paths = pathsOf(workflowId);
    expect(paths).toHaveLength(40);
    // Local, then (the chain ended) one through the queue, and again.
    expect(paths).toEqual(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 'local' : 'queued')));
  }, 300_000);
});

it('replays every history of these tasks', async () => {
  const { failures, runs } = await replayAllRuns(env.client, env.taskQueue);
  expect(failures).toEqual([]);
  expect(runs).toBeGreaterThan(11);
}, 300_000);
