/**
 * The steps a model was shown, stored by digest (activities/model-context-store.ts), on a real
 * SQLite state database: they come back exactly, or the turn fails with a typed error (never a
 * shortened conversation).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../custody/canonical-json';
import { loadModelSteps, storeModelSteps, type StepsRef } from '../../activities/model-context-store';
import { createBlobStore, type BlobStore } from '../../state/blob-store';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import type { StepRecord } from '../../task/task-run';

let db: SqlDatabase;
let blobs: BlobStore;
const dir = mkdtempSync(join(tmpdir(), 'warden-model-context-'));
beforeAll(async () => {
  db = openSqliteDatabase(join(dir, 'state.db'));
  await migrate(db);
  blobs = createBlobStore(db);
});
afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

let serial = 0;
function steps(n: number): StepRecord[] {
  serial += 1;
  return Array.from({ length: n }, (_, index) => ({
    index,
    turn: index,
    kind: 'tool' as const,
    tool: 'pages.fetch',
    args: { q: `page ${index} of run ${serial}` },
    decision: 'allow' as const,
    reason: 'granted',
    executed: true,
    output: `page ${index}: ${'x'.repeat(1000)}`,
    startedAt: '2026-11-30T08:00:00.000Z',
    durationMs: 3,
  }));
}

describe('the steps a model was shown', () => {
  it('come back exactly, from the reference alone', async () => {
    for (const n of [0, 1, 9]) {
      const shown = steps(n);
      const ref = await storeModelSteps(blobs, undefined, shown);
      expect(ref.count).toBe(n);
      // Another worker on the same database: nothing cached.
      expect(await loadModelSteps(createBlobStore(db), ref)).toEqual(shown);
    }
  });

  it('are stored once each, turn after turn: each turn stores only its new steps, linked to the last', async () => {
    const all = steps(6);
    const segments = [all.slice(0, 3), all.slice(3, 5), [], all.slice(5)];
    let ref: StepsRef | undefined;
    const sizes: number[] = [];
    for (const segment of segments) {
      ref = await storeModelSteps(blobs, ref, segment);
      sizes.push((await blobs.get(ref.sha256))!.length);
    }
    expect(ref!.count).toBe(6);
    expect(await loadModelSteps(createBlobStore(db), ref!)).toEqual(all);
    // The last turn's blob holds its one step, not all six.
    expect(sizes[3]).toBeLessThan(sizes[0]! / 2);
  });

  it('refused when an earlier link of the chain was edited', async () => {
    const all = steps(3);
    const first = await storeModelSteps(blobs, undefined, all.slice(0, 2));
    const last = await storeModelSteps(blobs, first, all.slice(2));
    await db.run('UPDATE warden_blobs SET content = $1 WHERE sha256 = $2', [canonicalBytes({ count: 2, steps: steps(2) }), first.sha256]);
    await expect(loadModelSteps(createBlobStore(db), last)).rejects.toMatchObject({ code: 'ERR_MODEL_CONTEXT_MISMATCH' });
  });

  const refusals: [string, () => Promise<StepsRef>, string][] = [
    ['nothing stored under the digest', async () => ({ count: 2, sha256: 'a'.repeat(64) }), 'ERR_MODEL_CONTEXT_MISSING'],
    ['a count that is not what was stored', async () => ({ ...(await storeModelSteps(blobs, undefined, steps(3))), count: 2 }), 'ERR_MODEL_CONTEXT_MISMATCH'],
    [
      'the stored bytes edited in the database',
      async () => {
        const ref = await storeModelSteps(blobs, undefined, steps(2));
        await db.run('UPDATE warden_blobs SET content = $1 WHERE sha256 = $2', [canonicalBytes({ count: 2, steps: steps(2) }), ref.sha256]);
        return ref;
      },
      'ERR_MODEL_CONTEXT_MISMATCH',
    ],
    ['a blob that is not a list of steps', async () => ({ count: 1, sha256: (await blobs.put(Buffer.from(`{"count":1,"steps":[{"not":"a step","n":${++serial}}]}`))).sha256 }), 'ERR_MODEL_CONTEXT_MISMATCH'],
    [
      'a link whose counts do not add up',
      async () => {
        const first = await storeModelSteps(blobs, undefined, steps(2));
        return { count: 3, sha256: (await blobs.put(canonicalBytes({ count: 3, earlier: { count: 1, sha256: first.sha256 }, steps: steps(1) }))).sha256 };
      },
      'ERR_MODEL_CONTEXT_MISMATCH',
    ],
    ['not a digest', async () => ({ count: 1, sha256: '../../etc/passwd' }), 'ERR_MODEL_CONTEXT_MISMATCH'],
  ];

  it.each(refusals)('refused: %s', async (_case, arrange, code) => {
    const ref = await arrange();
    // Read as another worker would (a fresh store: nothing cached).
    await expect(loadModelSteps(createBlobStore(db), ref)).rejects.toMatchObject({ code });
  });

  it('refused without a state database to read them from', async () => {
    const ref = await storeModelSteps(blobs, undefined, steps(1));
    await expect(loadModelSteps(undefined, ref)).rejects.toMatchObject({ code: 'ERR_MODEL_CONTEXT_MISSING' });
  });
});
