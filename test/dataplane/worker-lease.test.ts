/**
 * Worker-id leases (dataplane/worker-lease.ts), on each store a deployment can have: a row in
 * PostgreSQL (`WARDEN_DATABASE_URL`), a row in SQLite (the same SQL), and a lease file in the shared
 * folder. Time is a clock the test moves, so expiry is exact and nothing waits on the wall clock.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireWorkerLease, stateFolderId, type WorkerLeaseOptions } from '../../dataplane/worker-lease';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let root: string;
let pg: TestDatabase;
let sqlite: SqlDatabase;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'warden-lease-'));
  pg = await createTestDatabase();
  sqlite = openSqliteDatabase(join(root, 'state.db'));
  await migrate(sqlite);
}, 120_000);

afterAll(async () => {
  await sqlite?.close();
  await pg?.drop();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const STORES: [string, () => { db?: SqlDatabase; sharedDir: string }][] = [
  ['PostgreSQL', () => ({ db: pg.db, sharedDir: join(root, 'unused') })],
  ['SQLite', () => ({ db: sqlite, sharedDir: join(root, 'unused') })],
  ['a lease file in the shared folder', () => ({ sharedDir: join(root, 'shared') })],
];

describe.each(STORES)('worker-id leases in %s', (_store, storeOf) => {
  let clock = 1_700_000_000_000;
  const options = (workerId: string, state: string, extra: Partial<WorkerLeaseOptions> = {}): WorkerLeaseOptions => ({
    workerId,
    stateDir: join(root, state),
    ...storeOf(),
    ttlMs: 30_000,
    renewMs: 3_600_000,
    now: () => clock,
    ...extra,
  });
  const fresh = () => `id-${(n += 1)}`;

  it('a live holder refuses another state folder, naming the id, the holder and when its lease ends', async () => {
    const id = fresh();
    const a = await acquireWorkerLease(options(id, 'a'));
    const error = await acquireWorkerLease(options(id, 'b')).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(error).toMatchObject({ code: 'ERR_WORKER_ID_IN_USE' });
    expect(error?.message).toContain(`worker id "${id}" is held by another live worker (host `);
    expect(error?.message).toContain(`state folder ${join(root, 'a')}, instance ${a.instance}) until ${new Date(clock + 30_000).toISOString()}`);
    expect(error?.message).toContain('WARDEN_WORKER_ID');
    await a.release();
  });

  it('another process of the same state folder shares the id (one data plane)', async () => {
    const id = fresh();
    const a = await acquireWorkerLease(options(id, 'a'));
    const b = await acquireWorkerLease(options(id, 'a'));
    expect(b.holder).toBe(a.holder);
    await b.release();
    await a.release();
  });

  it('an expired holder (a crashed worker) is taken over; at the last millisecond it is not', async () => {
    const id = fresh();
    await acquireWorkerLease(options(id, 'crashed')); // never released, never renewed
    clock += 30_000;
    await expect(acquireWorkerLease(options(id, 'b'))).rejects.toMatchObject({ code: 'ERR_WORKER_ID_IN_USE' });
    clock += 1;
    const b = await acquireWorkerLease(options(id, 'b'));
    await b.release();
  });

  it('a clean release frees the id at once', async () => {
    const id = fresh();
    const a = await acquireWorkerLease(options(id, 'a'));
    await a.release();
    const b = await acquireWorkerLease(options(id, 'b'));
    await b.release();
  });

  it('eight state folders racing for one id: exactly one wins', async () => {
    const id = fresh();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireWorkerLease(options(id, `racer-${i}`))));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(7).fill('ERR_WORKER_ID_IN_USE'));
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireWorkerLease>>>).value.release();
  });

  it('a holder that stalled past expiry and was replaced learns it lost the id at its next renewal', async () => {
    const id = fresh();
    // Its clock stands still, as a process paused (SIGSTOP, a VM freeze) lives it: its renewals
    // write leases that have already expired for everyone else, whose clock goes on.
    const stalledAt = clock;
    const a = await acquireWorkerLease(options(id, 'stalled', { renewMs: 20, now: () => stalledAt }));
    clock += 60_000;
    const b = await acquireWorkerLease(options(id, 'successor'));
    const lost = await a.lost;
    expect(lost).toMatchObject({ code: 'ERR_WORKER_ID_IN_USE' });
    expect(lost.message).toContain(`instance ${b.instance}`);
    await a.release();
    // The loser's release does not free the successor's lease.
    await expect(acquireWorkerLease(options(id, 'third'))).rejects.toMatchObject({ code: 'ERR_WORKER_ID_IN_USE' });
    await b.release();
  });
});

it('a state folder keeps one id across processes; two folders differ', async () => {
  const a = await stateFolderId(join(root, 'sf-a'));
  expect(await stateFolderId(join(root, 'sf-a'))).toBe(a);
  expect((await readFile(join(root, 'sf-a', 'state-folder-id'), 'utf8')).trim()).toBe(a);
  expect(await stateFolderId(join(root, 'sf-b'))).not.toBe(a);
});
