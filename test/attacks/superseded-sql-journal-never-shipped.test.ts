/**
 * Attack on the call lease (recovery/call-lease.ts): the fence before shipping a call's SQL journal.
 *
 * Every attempt of an SQL tool ships its journal's images to the shared database after its sandbox
 * call, "even a tool that failed ... may have committed SQL before: its images must reach every
 * worker" (activities/run-tool.ts `callTool`), so the task's compensation undoes the SQL on
 * whichever worker runs it. A superseded attempt is fenced before that step and leaves the shipping
 * to the newer attempt, which ships only once its own sandbox call has run. A newer attempt that
 * fails before (here: it starts past the grant's expiry, the task's deadline, and cannot mint its
 * credential; equally a cancel or ERR_CALL_ATTEMPT_STUCK while it waits for the older one) ships
 * nothing: the older attempt's committed UPDATE is in this worker's journal file only, and a
 * compensation on another worker finds nothing to undo. Shipping is idempotent (ON CONFLICT DO
 * NOTHING per statement) and copies only what the local journal holds: nothing two attempts could
 * destroy of each other's.
 *
 * Real parts: the real runTool activity twice through MockActivityEnvironment (attempt 1 still in
 * its isolate when attempt 2 starts), a real sandbox host, a real SQLite database, the real shared
 * journal tables in a migrated SQLite state database (what worker B would hydrate from).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import type { RunToolInput } from '../../activities/run-tool';
import type { ActivityDeps } from '../../activities/index';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { hydrateJournal } from '../../recovery/shared-journal';
import { listJournaledCalls } from '../../recovery/sql-undo-journal';
import { taskKeyOf } from '../../recovery/recovery-paths';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';
import { saveTaskGrant, startAttempt, waitUntil as until } from '../support/attempt-overlap-kit';

let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let sandbox: SandboxClient;
let shared: SqlDatabase;

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-sql-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  shared = openSqliteDatabase(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-sql-shared-')), 'state.db'));
  await migrate(shared);
}, 120_000);

afterAll(async () => {
  await sandbox?.close();
  await shared?.close();
  stores?.close();
});

const deps = (): ActivityDeps => ({ sandbox, stateDir, identity: { keystore, stores }, shared: { db: shared, workerId: 'worker-a' } }) as ActivityDeps;

/** Takes one from the stock, then keeps computing about 6 s (past the moment attempt 2 starts). */
const SLOW_RESERVE = "warden.sql.exec('shop', 'UPDATE stock SET qty = qty - 1'); const until = Date.now() + 6000; while (Date.now() < until) {} return 'ok';";

function taskWith(database: string): Task {
  return parseTask(
    {
      user: 'alice@example.com',
      intent: 'reserve one',
      agent: { name: 'reserver', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { builtin: ['sql.exec'], custom: [{ name: 'reserve', description: 'reserves one', capabilities: ['sql.exec'], input: { type: 'object' }, source: SLOW_RESERVE }] },
      grants: { tools: ['reserve', 'sql.exec'], databases: ['shop'] },
      limits: { toolTimeout: '30s' },
      resources: { databases: { shop: database } },
    },
    'superseded-sql.yaml',
    stateDir,
  );
}



describe('an SQL call superseded by an attempt that fails before its sandbox call', () => {
  it("the older attempt's committed change still reaches the shared journal (another worker can undo it)", async () => {
    const database = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-sql-db-')), 'shop.db');
    const shop = new Database(database);
    shop.exec('CREATE TABLE stock (id INTEGER PRIMARY KEY, qty INTEGER); INSERT INTO stock (qty) VALUES (10);');
    const qty = () => (shop.prepare('SELECT qty FROM stock').get() as { qty: number }).qty;
    const task = taskWith(database);
    const rootWorkflowId = `superseded-sql-${Date.now()}`;
    const rootRunId = 'run-1';
    // The task's deadline (the grant's expiry) comes while attempt 1 still runs.
    const grant = await saveTaskGrant({ keystore, stores }, rootWorkflowId, task, Date.now() + 3000);
    const callId = `${rootWorkflowId}:${rootRunId}:0:digest`;
    const input: RunToolInput = { rootWorkflowId, rootRunId, workflowId: rootWorkflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'reserve', args: {} };
    const activities = createActivities(deps());

    const first = startAttempt(activities.runTool, input, 1);
    await until(() => qty() === 9, "attempt 1's UPDATE");
    await until(() => Date.now() > grant.claims.exp * 1000 + 200, "the grant's expiry");
    // Temporal timed attempt 1 out; attempt 2 starts past the deadline, attempt 1 hears of it at its next heartbeat.
    const two = await startAttempt(activities.runTool, input, 2).outcome;
    first.env.cancel();
    const one = await first.outcome;
    expect({ one, two }).toEqual({ one: expect.not.stringMatching(/^completed$/), two: expect.stringMatching(/^ERR_CREDENTIAL_EXPIRED: /) });
    expect(qty()).toBe(9);
    // Worker B's compensation hydrates its own journal from the shared tables: attempt 1's UPDATE must be there.
    const journalB = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-sql-b-')), 'journal.db');
    await hydrateJournal(shared, { journal: journalB, journalKey: taskKeyOf(rootWorkflowId, rootRunId) });
    expect(listJournaledCalls(journalB).map((c) => ({ table: c.table, op: c.op }))).toEqual([{ table: 'stock', op: 'update' }]);
    shop.close();
  }, 120_000);
});
