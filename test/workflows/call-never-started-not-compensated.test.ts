/**
 * Regression (s15, atk15; was test/attacks/open/lost-data-plane-compensates-call-never-started.test.ts,
 * medium): a tool call whose data plane was lost before any worker started it had its
 * compensating tool run all the same, with the agent's arguments, for an effect that was never
 * made (the class of the fixed `refused-call-not-undone` finding, through another door).
 *
 * On the original loop every data-plane activity goes to the queue of the worker that prepared the
 * task (`<taskQueue>@<workerId>`, workflows/data-plane-affinity.ts). When that worker is gone, the
 * call's `runTool` waits on that queue, no worker ever takes it, and its schedule-to-start timeout
 * fires. `DataPlaneAffinity.loop` then called `lostMidCall` (workflows/tool-step.ts), which marked
 * the step `executed: true` and registered the call's undo unconditionally; the saga ran it on the
 * shared queue: `release` put 100 back into a stock nothing ever took from (1 -> 101). The same
 * held for a task cancelled while the call waits on that queue: the cancel is recorded with no
 * start, which since patch `warden-not-run-vouched` is taken to have run. Neither signal can tell
 * "never started" from "an earlier attempt started" (a timeout or a cancel in the retry backoff
 * after an attempt that ran reads the same).
 *
 * Fixed (patch `warden-tool-undo-started`): before a tool that has a compensating tool starts, its
 * activity records durably that the call started (recovery/call-starts.ts, in the recovery folder
 * beside the journal and the compensation ledger); a compensating tool registered for a call in
 * doubt runs only if that record says it started. No record: the compensation fences the call
 * off (an attempt reaching its tool later is refused), nothing runs, and the step reads not run;
 * a worker whose recovery folder is not shared lists it in `recovery.notUndoable` as possibly run.
 * Journal undo (SQL, overlay) still runs: it finds nothing under a call id that never ran.
 *
 * How the worker is lost: an activity interceptor rewrites `prepareTask`'s `dataPlaneQueue` to a
 * queue nobody polls, which is what the workflow sees when the worker that prepared the task
 * dies (SIGKILL, host lost) right after `prepareTask`. Everything else is real: a real Temporal
 * server and worker, a real SQLite file, the scripted model; each of those tasks takes ~35 s (the
 * 30 s schedule-to-start of the data plane). Rows: the loop finds the queue's worker gone; the
 * task is cancelled while the call waits there. Control row: a call that did start, applied its
 * SQL and failed, in a task that then ends without completing: its compensating tool still runs
 * (its start record says it started).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Worker, type ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { workflowBundle } from '../../worker/workflow-bundle';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { STOCK_TOOLS } from '../support/stock-tools';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

/** Workflows whose data-plane worker is "lost" right after it prepared the task. */
const lostAfterPrepare = new Set<string>();
const started: string[] = [];
/** Every task this file ran, replayed at the end. */
const ran: string[] = [];

const loseDataPlane: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const workflowId = ctx.info.workflowExecution?.workflowId ?? '';
      if (ctx.info.activityType === 'runTool') started.push(workflowId);
      const result = (await next(input)) as { dataPlaneQueue?: string };
      if (ctx.info.activityType === 'prepareTask' && lostAfterPrepare.has(workflowId) && typeof result.dataPlaneQueue === 'string') {
        return { ...result, dataPlaneQueue: `${result.dataPlaneQueue}-gone` };
      }
      return result;
    },
  },
});

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [loseDataPlane] });
}, 300_000);
afterAll(async () => env?.close());

/** A clerk's task over a shop database holding one tea, with `extra` custom tools beside reserve and release. */
async function clerkTask(script: unknown[], extra: { tools?: (typeof STOCK_TOOLS)[number][]; limits?: Record<string, unknown> } = {}): Promise<{ task: ReturnType<typeof parseTask>; workflowId: string; dbFile: string }> {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-call-start-'));
  const dbFile = join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1);");
  db.close();
  const name = `clerk-${Math.random().toString(36).slice(2, 8)}`;
  const custom = [...STOCK_TOOLS, ...(extra.tools ?? [])];
  const task = parseTask(
    {
      user: 'erin@example.com',
      intent: 'reserve tea',
      agent: { name, model: { driver: 'scripted', script } },
      tools: { builtin: ['sql.exec'], custom },
      grants: { tools: [...custom.map((t) => t.name), 'sql.exec'], databases: ['shop'] },
      resources: { workspace, databases: { shop: dbFile } },
      ...(extra.limits === undefined ? {} : { limits: extra.limits }),
    },
    'clerk.yaml',
    REPO_ROOT,
  );
  return { task, workflowId: `test-${name}`, dbFile };
}

/** The tea in stock. */
function stockIn(dbFile: string): unknown {
  const after = new Database(dbFile, { readonly: true });
  try {
    return after.prepare("SELECT qty FROM stock WHERE item = 'tea'").get();
  } finally {
    after.close();
  }
}

/** The stock after a task whose one call of `reserve` waited on a data-plane queue nobody polls, and what its record says. */
async function reserveOnLostDataPlane(cancelWhileWaiting: boolean): Promise<{ result: TaskResult; stock: unknown; workflowId: string }> {
  const { task, workflowId, dbFile } = await clerkTask([{ tool: 'reserve', args: { item: 'tea', qty: 1 } }, { final: 'reserved' }]);
  lostAfterPrepare.add(workflowId);
  const handle = await env.start(task, workflowId);
  ran.push(workflowId);
  if (cancelWhileWaiting) {
    // Cancelled while `runTool` waits on the lost worker's queue (scheduled, never started).
    for (;;) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      // 1: PENDING_ACTIVITY_STATE_SCHEDULED.
      if (pending.some((a) => a.activityType?.name === 'runTool' && Number(a.state) === 1)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await handle.cancel();
  }
  const result = await followAgentTask(handle);
  return { result, stock: stockIn(dbFile), workflowId };
}

it.each([
  { how: 'the loop finds the data plane lost (schedule-to-start)', cancel: false, status: 'failed' },
  { how: 'the task is cancelled while the call waits there', cancel: true, status: 'cancelled' },
])('a call that never started has no compensating tool run for it: $how', async ({ cancel, status }) => {
  const { result, stock, workflowId } = await reserveOnLostDataPlane(cancel);
  // Preconditions: the task ended as expected, and no worker ever started the call.
  expect(result.status).toBe(status);
  expect(started.filter((id) => id === workflowId)).toEqual([]);
  // `reserve` never ran: nothing may be put back, and its record must not say it ran.
  expect({
    stock,
    executed: result.steps[0]?.executed,
    released: (result.recovery?.rolledBack ?? []).filter((r) => r.kind === 'tool').map((r) => [r.forTool, r.status]),
  }).toEqual({ stock: { qty: 1 }, executed: false, released: [] });
}, 300_000);

/**
 * `reserve` that takes its stock and then throws: it ran (its start record says so) and failed.
 * With `maxSteps: 1` the next action ends the task `limit_exceeded`, and the saga runs.
 */
const RESERVE_THEN_FAIL = {
  ...STOCK_TOOLS[0]!,
  name: 'reserve-then-fail',
  source: "warden.sql.exec('shop', 'UPDATE stock SET qty = qty - ? WHERE item = ?', [input.qty, input.item]); throw new Error('the till is closed');",
};

it('control: a call that started and failed still has its compensating tool run', async () => {
  const script = [{ tool: 'reserve-then-fail', args: { item: 'tea', qty: 1 } }, { tool: 'reserve', args: { item: 'tea', qty: 1 } }, { final: 'reserved' }];
  const { task, workflowId, dbFile } = await clerkTask(script, { tools: [RESERVE_THEN_FAIL], limits: { maxSteps: 1 } });
  ran.push(workflowId);
  const result = await followAgentTask(await env.start(task, workflowId));
  const stock = stockIn(dbFile);
  expect(result.status).toBe('limit_exceeded');
  expect(started.filter((id) => id === workflowId)).toHaveLength(1);
  // `reserve-then-fail` took 1 (1 -> 0) and failed; `release` puts 100 back: 100.
  expect({
    stock,
    executed: result.steps[0]?.executed,
    error: result.steps[0]?.error?.code,
    released: (result.recovery?.rolledBack ?? []).filter((r) => r.kind === 'tool').map((r) => [r.forTool, r.status]),
  }).toEqual({ stock: { qty: 100 }, executed: true, error: 'ERR_TOOL_THREW', released: [['reserve-then-fail', 'done']] });
}, 300_000);

it('the runs replay against the workflow code (the patch and the start record leave no other command)', async () => {
  expect(ran).toHaveLength(3);
  const histories = (async function* () {
    for (const workflowId of ran) yield { workflowId, history: await env.client.workflow.getHandle(workflowId).fetchHistory() };
  })();
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    if (result.error !== undefined) failures.push(`${result.workflowId}: ${String(result.error)}`);
  }
  expect(failures).toEqual([]);
}, 300_000);
