/**
 * The stores the data-plane work builds on (claim-check blobs, task placements), table-driven
 * over PostgreSQL and the SQLite state schema: the same SQL must mean the same on both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlobStore, MAX_BLOB_BYTES, sha256Hex } from '../../state/blob-store';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { createTaskPlacements } from '../../state/task-placements';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;
let sqlite: SqlDatabase;
const dir = mkdtempSync(join(tmpdir(), 'warden-shared-stores-'));
beforeAll(async () => {
  pg = await createTestDatabase();
  sqlite = openSqliteDatabase(join(dir, 'state.db'));
  await migrate(sqlite);
}, 120_000);
afterAll(async () => {
  await sqlite?.close();
  await pg?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const BACKENDS: [string, () => SqlDatabase][] = [
  ['PostgreSQL', () => pg.db],
  ['SQLite', () => sqlite],
];

describe.each(BACKENDS)('on %s', (_name, db) => {
  it('blobs are stored once under their SHA-256, come back byte for byte, and a row edited in place is refused', async () => {
    const blobs = createBlobStore(db());
    const bytes = Buffer.concat([Buffer.from([0, 255, 1]), Buffer.alloc(900 * 1024, 7)]);
    const ref = await blobs.put(bytes);
    expect(ref).toEqual({ sha256: sha256Hex(bytes), size: bytes.length });
    expect(await blobs.put(bytes)).toEqual(ref);
    expect((await blobs.get(ref.sha256))?.equals(bytes)).toBe(true);
    expect(await blobs.has(ref.sha256)).toBe(true);
    expect(await blobs.get('0'.repeat(64))).toBeUndefined();
    await expect(blobs.get('../etc/passwd')).rejects.toThrow(TypeError);
    await expect(blobs.put(new Uint8Array(MAX_BLOB_BYTES + 1))).rejects.toThrow(RangeError);
    await db().run('UPDATE warden_blobs SET content = $1 WHERE sha256 = $2', [Buffer.from('tampered'), ref.sha256]);
    await expect(blobs.get(ref.sha256)).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_CORRUPT' });
  });

  it('a task is placed on one worker however many claim it at once; a move is compare-and-set', async () => {
    const placements = createTaskPlacements(db());
    const taskKey = `task-${Math.random().toString(36).slice(2)}`;
    const claims = await Promise.all(
      ['w1', 'w2', 'w3'].map((workerId) => placements.claim({ taskKey, rootWorkflowId: taskKey, workerId, taskQueue: `q-${workerId}`, overlayId: `o-${workerId}`, workspace: '/ws' })),
    );
    const holder = claims[0]!.workerId;
    expect(new Set(claims.map((c) => c.workerId))).toEqual(new Set([holder]));
    expect(claims[0]).toMatchObject({ state: 'active', taskQueue: `q-${holder}` });
    const stale = await placements.move(taskKey, 'not-the-holder', { workerId: 'w9', taskQueue: 'q-w9', overlayId: null });
    expect(stale?.workerId).toBe(holder);
    const moved = await placements.move(taskKey, holder, { workerId: 'w9', taskQueue: 'q-w9', overlayId: null });
    expect(moved).toMatchObject({ workerId: 'w9', taskQueue: 'q-w9', state: 'moved' });
    await placements.finish(taskKey, 'rolled-back');
    expect((await placements.move(taskKey, 'w9', { workerId: 'w1', taskQueue: 'q-w1', overlayId: null }))?.workerId).toBe('w9');
    expect(await placements.get(taskKey)).toMatchObject({ state: 'rolled-back' });
  });
});
