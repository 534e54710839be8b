/**
 * Attack (issue 12, data-plane affinity on the original loop), fixed: two workers with separate
 * state folders started with the same `WARDEN_WORKER_ID` (a copied configuration, a container image
 * with the id baked in) both polled `<taskQueue>@<id>`, so a task's "own worker" queue was served
 * by two workers holding different overlays: 8 of 8 tasks failed `ERR_OVERLAY_MISSING`.
 *
 * Now a worker takes a lease on its id (dataplane/worker-lease.ts; here a row in the shared
 * PostgreSQL database): the second is refused at start, exit 2, naming the id, the holder and
 * when its lease ends; the first keeps serving every task; once it stops, the id is free at once.
 * The lease's table cases (expiry, racing starts, a lost lease) are in test/dataplane/worker-lease.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { connectClient } from '../../temporal/connect';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { testTemporalConfig } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';
import { fixture, insert, TwoWorkerKit, write } from './fixtures/two-worker-kit';

let pg: TestDatabase;
let kit: TwoWorkerKit;
let client: Client;
let connection: Connection;

beforeAll(async () => {
  pg = await createTestDatabase();
  kit = new TwoWorkerKit(pg);
  ({ client, connection } = await connectClient(testTemporalConfig()));
}, 300_000);

afterAll(async () => {
  await connection?.close();
  await kit?.close();
  await pg?.drop();
}, 120_000);

it("a second worker under a live worker's id is refused (exit 2, naming id and holder); the first keeps every write; a clean stop frees the id", async () => {
  const first = await kit.startWorker('twin');
  const secondDir = kit.tempDir('warden-attack-twin-second-');
  const refused = await kit.startWorker('twin', secondDir).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  expect(refused?.message).toMatch(/exited 2/);
  expect(refused?.message).toMatch(/ERR_WORKER_ID_IN_USE: worker id "twin" is held by another live worker \(host .*, pid \d+, state folder .*\) until \d{4}-\d\d-\d\dT/);
  expect(refused?.message).toContain('WARDEN_WORKER_ID');
  expect(refused?.message).not.toContain('worker polling');

  const TASKS = 4;
  const started = await Promise.all(
    Array.from({ length: TASKS }, async (_, i) => {
      const f = fixture(kit, `twin${i}`);
      const doc = {
        user: 'ops@example.com',
        intent: `record run ${i}`,
        agent: { name: 'recorder', model: { driver: 'scripted', script: [write('a.txt', `a${i}`), insert(`t${i}`), write('b.txt', `b${i}`), { final: 'done' }] } },
        tools: { builtin: ['fs.write', 'sql.exec'] },
        grants: { tools: ['fs.write', 'sql.exec'], databases: ['ledger'] },
        limits: { toolTimeout: '60s', deadline: '10m' },
        resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
      };
      const handle = await startAgentTask(client, parseTask(doc, 'twin.yaml', REPO_ROOT), { taskQueue: kit.taskQueue, workflowId: `attack-twin-${i}-${randomUUID()}` });
      return { i, f, handle };
    }),
  );
  const outcomes: string[] = [];
  // Each failed step, for the failure's message: a completed task can hide a step that failed (seen once in a full CI run: a task's row missing).
  const failedSteps: string[] = [];
  for (const { i, f, handle } of started) {
    const result = await followAgentTask(handle);
    outcomes.push(`${i}: ${result.status} ${result.reason ?? ''} files=${JSON.stringify(f.files())} rows=${JSON.stringify(f.rows())}`);
    for (const s of result.steps) if (s.error !== undefined) failedSteps.push(`${i}#${s.index} ${s.tool}: ${s.error.code} ${s.error.message}`);
  }
  expect(outcomes, failedSteps.join('; ')).toEqual(Array.from({ length: TASKS }, (_, i) => `${i}: completed  files=${JSON.stringify({ 'a.txt': `a${i}`, 'b.txt': `b${i}` })} rows=${JSON.stringify([`t${i}`])}`));

  // A clean stop releases the lease: the other state folder takes the id without waiting for expiry.
  const exited = new Promise<number | null>((resolve) => first.child.once('exit', resolve));
  first.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  const successor = await kit.startWorker('twin', secondDir);
  expect(successor.log()).toContain(`${kit.taskQueue}@twin`);
}, 900_000);

it('a worker that stalled past its lease and was replaced stops polling when it wakes, naming the new holder', async () => {
  const stalled = await kit.startWorker('sleeper');
  const exited = new Promise<number | null>((resolve) => stalled.child.once('exit', resolve));
  // Paused as a frozen VM or a stopped container is: no renewals.
  stalled.child.kill('SIGSTOP');
  // The lease expires: its row's end is moved into the past, as 30 s (LEASE_TTL_MS) of no renewal
  // would leave it; the paused worker cannot renew. The successor and the woken worker then decide
  // from the row alone, as after a real stall (the TTL itself: test/dataplane/worker-lease.test.ts).
  // A renewal that still landed is waited out (an event in the database, however long that takes).
  await pg.db.run('UPDATE warden_worker_leases SET expires_at = $1 WHERE worker_id = $2', [Date.now() - 1, 'sleeper']);
  for (;;) {
    const row = await pg.db.get<{ expires_at: string | number }>('SELECT expires_at FROM warden_worker_leases WHERE worker_id = $1', ['sleeper']);
    if (row !== undefined && Number(row.expires_at) < Date.now()) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const successor = await kit.startWorker('sleeper');
  stalled.child.kill('SIGCONT');
  expect(await exited).not.toBe(0);
  expect(stalled.log()).toMatch(/ERR_WORKER_ID_IN_USE: worker id "sleeper" is held by another live worker \(host .*, state folder /);
  expect(stalled.log()).toContain(successor.stateDir);
  expect(successor.child.exitCode).toBeNull();
}, 900_000);
