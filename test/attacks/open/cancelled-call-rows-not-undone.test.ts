/**
 * Open finding (s12, atk12): a tool call that committed SQL and was then cancelled by the task's
 * cancellation or its deadline leaves its rows: the saga undoes every other call of the task, but
 * this one's undo is never registered.
 *
 * A failed call registers its undo ("it may have changed rows before failing",
 * workflows/run-action.ts), and so does a call stopped by a block (kill, a monitor's or a parent's
 * block). A call that ends as cancelled for any other reason, `warden cancel` / the workflow's
 * cancellation or the original loop's deadline (TaskEnded `timed_out`), is rethrown before
 * `run.saga.registerToolCall`: `if (error instanceof TaskEnded || (isCancellation(error) && !stopped)) throw error;`.
 * Since h/cancelall the activity reports cancelled only once the tool has stopped, but a custom
 * tool's `sql.exec` that committed before the cancellation stays committed (an isolate's capability
 * call is its own transaction), and nothing undoes it: the task ends `cancelled` / `timed_out`,
 * the saga "rolled back", and the row the agent wrote is in the database. The record says the
 * call never ran: `warden status` shows `#0 pay {} -> allowed; not run` and only
 * `fs-overlay-discard` undone (the kill: `failed: ERR_TASK_BLOCKED stopped while it ran`, `sql-undo of pay`).
 *
 * Table: one custom tool (`pay`: an INSERT through `warden.sql.exec`, then an `http.fetch` held
 * open by a loopback server, so the call is in flight after its commit) × the ways a task ends
 * while it runs × both loops (the original and the data flow, `dataFlow: true`). `kill` is the
 * control (its undo is registered: the row is gone); `cancel` and `deadline` leave the row. No
 * timing assertion: the deadline row waits for the task's end.
 *
 * Suggested fix: register the in-flight call's undo whatever ended it (in run-action's catch,
 * before rethrowing a cancellation or TaskEnded; also on the data flow), and say in its step record
 * that it ran and was cancelled (`step.executed`, `step.error` ERR_TOOL_CANCELLED), as for a block.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTask } from '../../../client/kill-task';
import { issueApproverKey, type ApproverKeyFile } from '../../../identity/approval-decision';
import { openApproverStore } from '../../../identity/approver-registry';
import { parseTask } from '../../../task/load-task-file';
import { endStatusOf, until } from '../../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';

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

/** How the task is ended while `pay` waits, the status it then ends with, and task limits it needs. */
const WAYS = {
  kill: { status: 'blocked', limits: {} },
  cancel: { status: 'cancelled', limits: {} },
  // Long enough for the call to start on a loaded machine; the call waits for good.
  deadline: { status: 'timed_out', limits: { deadline: '40s' } },
} as const;

type Way = keyof typeof WAYS;
/** Both loops; the data flow's deadline is left out (it does not wait for the call yet: deadline-leaves-data-flow-program-running.test.ts). */
const CASES: [Way, 'original loop' | 'data flow'][] = [
  ['kill', 'original loop'],
  ['cancel', 'original loop'],
  ['deadline', 'original loop'],
  ['kill', 'data flow'],
  ['cancel', 'data flow'],
];

describe('a call that committed rows, then ended with the task while it ran', () => {
  it.each(CASES)('%s (%s): the saga undoes its rows', async (way, loop) => {
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
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'record a payment, then confirm it',
        policyPacks: [],
        agent: { name: 'payer', model: { driver: 'scripted', script: [{ tool: 'pay', args: {} }, { final: 'done' }] } },
        tools: {
          builtin: ['sql.exec', 'http.fetch'],
          custom: [
            {
              name: 'pay',
              description: 'records a payment, then waits for its confirmation',
              capabilities: ['sql.exec', 'http.fetch'],
              source: `warden.sql.exec('shop', "INSERT INTO payments (payee) VALUES ('mallory')"); await warden.http.fetch('http://${webHost()}/hold/${marker}'); return 'confirmed';`,
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
    const workflowId = `cancelled-rows-${way}-${loop.replace(' ', '-')}-${randomUUID()}`;
    const handle = await env.start(task, workflowId);
    const result = endStatusOf(handle);
    // The row is committed and the call is in flight (or the task ended first: its status says why).
    const early = await Promise.race([until(() => held.has(marker), 'pay waiting').then(() => 'working'), result]);
    expect(early).toBe('working');
    expect(rows()).toBe(1);

    if (way === 'kill') expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
    else if (way === 'cancel') await handle.cancel();
    expect(await result).toBe(WAYS[way].status);

    // The task did not complete: the saga undid what its calls committed, this one's row included.
    expect(rows()).toBe(0);
  }, 600_000);
});
