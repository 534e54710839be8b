/**
 * Regression (s12, was test/attacks/open/cancelled-call-rows-not-undone.test.ts): a tool call that
 * committed SQL and was then cut short by the task's end kept its rows when that end was a cancel
 * (`warden cancel`, Ctrl-C in `warden run`: the workflow's cancellation) or the deadline: the saga
 * undid every other call, but `workflows/run-action.ts` rethrew the cancellation (or `TaskEnded
 * timed_out`) before registering this call's undo, and `warden status` read the call `not run`.
 * A kill (a block) registered it, and so did a call's own failure.
 *
 * Now every call whose activity was started registers its undo however it ends, once (patch
 * `warden-undo-ended-calls`, `ranUnfinished` in workflows/tool-step.ts), and its record says it
 * ran and was cancelled (`ERR_TOOL_CANCELLED cancelled while it ran: ...`).
 *
 * Table: a custom tool `pay` (an INSERT through `warden.sql.exec`, then an `http.fetch` held open,
 * or with `fail` a throw after the INSERT) × how the task ends while it waits: kill (control),
 * cancel, deadline, and a failed call before a cancelled one (the failed call's undo registered
 * once) × both loops (the data flow's deadline with `warden-flow-call-deadline`, whose worker stops
 * the call there). Every row but the kill fails on the old code (the cancelled call's row left,
 * the step `not run`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTask } from '../../client/kill-task';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { parseTask } from '../../task/load-task-file';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { followAgentTask } from '../../client/start-agent-task';
import { formatStep } from '../../cli/format-summary';
import type { TaskResult } from '../../task/task-run';
import { until } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** A loopback host that holds `/hold/<marker>` open for good, remembering the marker. */
let web: Server;
const held = new Set<string>();
let env: WardenTestEnv;
let oncall: ApproverKeyFile;

beforeAll(async () => {
  web = createServer((req) => {
    held.add((req.url ?? '').split('/')[2] ?? '');
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  env = await startWardenTestEnv();
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
}, 300_000);

afterAll(async () => {
  await env?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
});

const webHost = () => `127.0.0.1:${(web.address() as AddressInfo).port}`;

/** The task's result, also when it closed as failed carrying it (task-close.ts). */
function endResultOf(handle: WorkflowHandle): Promise<TaskResult> {
  return followAgentTask(handle).catch((error: unknown) => {
    const cause = error instanceof WorkflowFailedError ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.details?.[0] !== undefined) return cause.details[0] as TaskResult;
    throw error;
  });
}

/** How the task is ended while `pay` waits, the status it then ends with, the waiting step's record, and task limits it needs. */
const WAYS = {
  kill: { status: 'blocked', code: 'ERR_TASK_BLOCKED', limits: {}, failFirst: false },
  cancel: { status: 'cancelled', code: 'ERR_TOOL_CANCELLED', limits: {}, failFirst: false },
  // Long enough for the call to start on a loaded machine; the call waits for good.
  deadline: { status: 'timed_out', code: 'ERR_TOOL_CANCELLED', limits: { deadline: '40s' }, failFirst: false },
  // A first call fails after its INSERT (its undo registered once), then a second is cancelled.
  'failed, then cancel': { status: 'cancelled', code: 'ERR_TOOL_CANCELLED', limits: {}, failFirst: true },
} as const;

type Way = keyof typeof WAYS;
/** Both loops. */
const CASES: [Way, 'original loop' | 'data flow'][] = [
  ['kill', 'original loop'],
  ['cancel', 'original loop'],
  ['deadline', 'original loop'],
  ['failed, then cancel', 'original loop'],
  ['kill', 'data flow'],
  ['cancel', 'data flow'],
  ['deadline', 'data flow'],
  ['failed, then cancel', 'data flow'],
];

describe('a call that committed rows, then ended with the task while it ran', () => {
  it.each(CASES)('%s (%s): the saga undoes its rows once, and its record says it ran', async (way, loop) => {
    const { failFirst } = WAYS[way];
    const marker = `warden-rows-${randomUUID()}`;
    const workspace = await mkdtemp(join(tmpdir(), 'warden-cancelled-rows-'));
    const dbFile = join(workspace, 'shop.db');
    const setup = new Database(dbFile);
    setup.exec('CREATE TABLE payments (id INTEGER PRIMARY KEY, payee TEXT NOT NULL);');
    setup.close();
    const rows = () => {
      const db = new Database(dbFile, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM payments').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const calls = [...(failFirst ? [{ tool: 'pay', args: { fail: true } }] : []), { tool: 'pay', args: {} }];
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'record a payment, then confirm it',
        policyPacks: [],
        agent: { name: 'payer', model: { driver: 'scripted', script: [...calls, { final: 'done' }] } },
        tools: {
          builtin: ['sql.exec', 'http.fetch'],
          custom: [
            {
              name: 'pay',
              description: 'records a payment, then waits for its confirmation',
              capabilities: ['sql.exec', 'http.fetch'],
              source: `warden.sql.exec('shop', "INSERT INTO payments (payee) VALUES ('mallory')"); if (input.fail) throw new Error('card declined'); await warden.http.fetch('http://${webHost()}/hold/${marker}'); return 'confirmed';`,
            },
          ],
        },
        grants: { tools: ['pay', 'sql.exec', 'http.fetch'], databases: ['shop'], hosts: [webHost()] },
        resources: { workspace, databases: { shop: dbFile }, hosts: [webHost()] },
        limits: { toolTimeout: '300s', ...WAYS[way].limits },
        ...(loop === 'data flow' ? { dataFlow: true } : {}),
      },
      'cancelled-rows.yaml',
      REPO_ROOT,
    );
    const workflowId = `cancelled-rows-${way.replace(/\W+/g, '-')}-${loop.replace(' ', '-')}-${randomUUID()}`;
    const handle = await env.start(task, workflowId);
    const result = endResultOf(handle);
    // The rows are committed and the last call is in flight (or the task ended first: its status says why).
    const early = await Promise.race([until(() => held.has(marker), 'pay waiting').then(() => 'working'), result.then((r) => r.status)]);
    expect(early).toBe('working');
    expect(rows()).toBe(calls.length);

    if (way === 'kill') expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
    else if (way !== 'deadline') await handle.cancel();
    const ended = await result;
    expect(ended.status).toBe(WAYS[way].status);

    // The task did not complete: the saga undid what its calls committed, the one in flight included.
    expect(rows()).toBe(0);
    // Each call's undo ran once.
    const undos = (ended.recovery?.rolledBack ?? []).filter((r) => r.kind === 'sql-undo');
    expect(undos.map((u) => [u.forTool, u.status])).toEqual(calls.map(() => ['pay', 'done']));
    expect(new Set(undos.map((u) => u.callId)).size).toBe(calls.length);
    // The record says the call ran, and how it ended: never `not run`.
    const last = ended.steps[ended.steps.length - 1]!;
    expect(last.executed).toBe(true);
    expect(last.error?.code).toBe(WAYS[way].code);
    if (failFirst) expect(ended.steps[0]).toMatchObject({ executed: true, error: { code: 'ERR_TOOL_THREW' } });
    for (const step of ended.steps) expect(formatStep(step)).not.toContain('not run');
  }, 600_000);
});
