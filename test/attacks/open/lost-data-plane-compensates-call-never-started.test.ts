/**
 * Open finding (s15, atk15), medium: a tool call whose data plane was lost before any worker
 * started it has its compensating tool run all the same, with the agent's arguments, for an effect
 * that was never made (the class of the fixed `refused-call-not-undone` finding, through another
 * door).
 *
 * On the original loop every data-plane activity goes to the queue of the worker that prepared the
 * task (`<taskQueue>@<workerId>`, workflows/data-plane-affinity.ts). When that worker is gone, the
 * call's `runTool` waits on that queue, no worker ever takes it, and its schedule-to-start timeout
 * fires: Temporal guarantees that attempt never started. `DataPlaneAffinity.loop` then calls
 * `lostMidCall` (workflows/tool-step.ts), which marks the step `executed: true` and registers the
 * call's undo unconditionally; the saga runs it on the shared queue: `release` puts 100 back into a
 * stock nothing ever took from (1 -> 101). A refund tool would pay for a charge never made.
 * The same holds for a task cancelled (or killed) while the call waits on that queue: the cancel is
 * recorded with no start, which since patch `warden-not-run-vouched` is taken to have run (the
 * open README called that "an undo that finds nothing to do, the safe direction": for a
 * compensating tool it is not).
 *
 * How the worker is lost: an activity interceptor rewrites `prepareTask`'s `dataPlaneQueue` to a
 * queue nobody polls, which is what the workflow sees when the worker that prepared the task
 * dies (SIGKILL, host lost) right after `prepareTask`. Everything else is real: a real Temporal
 * server and worker, a real SQLite file, the scripted model; each task takes ~35 s (the 30 s
 * schedule-to-start of the data plane). Rows: the loop finds the queue's worker gone; the task is
 * cancelled while the call waits there.
 *
 * Reproduce: `npx vitest run --config vitest.open-findings.config.mts test/attacks/open/lost-data-plane-compensates-call-never-started.test.ts`.
 *
 * Suggested fix: run a compensating *tool* only for a call known to have started. The worker can
 * record that durably before its tool starts (`toolStarting`, activities/run-tool.ts: a row keyed
 * by the call id in the shared state store or the task tree's journal, as the SQL ledger already
 * proves an exec ran), and `compensate` skips a `tool` compensation whose call left no such mark,
 * reporting it `not run`. Where that cannot be known (no shared store), report the call in
 * `recovery.notUndoable` as "may or may not have run" and hand the compensating tool
 * `original.ran: 'unknown'` rather than running it as if the call had run.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import type { TaskResult } from '../../../task/task-run';
import { STOCK_TOOLS } from '../../support/stock-tools';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

/** Workflows whose data-plane worker is "lost" right after it prepared the task. */
const lostAfterPrepare = new Set<string>();
const started: string[] = [];

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

/** The stock after a task whose one call of `reserve` waited on a data-plane queue nobody polls, and what its record says. */
async function reserveOnLostDataPlane(cancelWhileWaiting: boolean): Promise<{ result: TaskResult; stock: unknown; workflowId: string }> {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-lost-before-start-'));
  const dbFile = join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1);");
  db.close();
  const name = `clerk-${Math.random().toString(36).slice(2, 8)}`;
  const workflowId = `test-${name}`;
  lostAfterPrepare.add(workflowId);
  const task = parseTask(
    {
      user: 'erin@example.com',
      intent: 'reserve tea',
      agent: { name, model: { driver: 'scripted', script: [{ tool: 'reserve', args: { item: 'tea', qty: 1 } }, { final: 'reserved' }] } },
      tools: {
        builtin: ['sql.exec'],
        custom: STOCK_TOOLS,
      },
      grants: { tools: ['reserve', 'release', 'sql.exec'], databases: ['shop'] },
      resources: { workspace, databases: { shop: dbFile } },
    },
    'lost-data-plane.yaml',
    REPO_ROOT,
  );
  const handle = await env.start(task, workflowId);
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
  const after = new Database(dbFile, { readonly: true });
  try {
    return { result, stock: after.prepare("SELECT qty FROM stock WHERE item = 'tea'").get(), workflowId };
  } finally {
    after.close();
  }
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
