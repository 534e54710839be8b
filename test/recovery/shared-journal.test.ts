/**
 * The SQL undo journal across workers (issue 12): SQL a task ran through worker A is undone by
 * worker B, which has its own state folder and never saw A's journal file. Table-driven over the
 * shared PostgreSQL database and the SQLite state schema. Values keep their exact types
 * (64-bit integers past 2^53, reals, text, BLOBs, NULL) through the round trip.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hydrateJournal, shipJournal } from '../../recovery/shared-journal';
import { journaledRowsOf, listJournaledCalls, undoSqlCall } from '../../recovery/sql-undo-journal';
import { createSqlCapability } from '../../sandbox/capabilities/sql-capability';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { makeTempDir } from './recovery-test-kit';

let pg: TestDatabase;
let sqlite: SqlDatabase;
const dirs: string[] = [];
beforeAll(async () => {
  pg = await createTestDatabase();
  const dir = makeTempDir('shared-journal-state');
  dirs.push(dir);
  sqlite = openSqliteDatabase(path.join(dir, 'state.db'));
  await migrate(sqlite);
}, 120_000);
afterAll(async () => {
  await sqlite?.close();
  await pg?.drop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const BIG = 9007199254740993n; // 2^53 + 1: wrong if it ever passes through a JS number

function shop(): { file: string; dump(): unknown[] } {
  const dir = makeTempDir('shared-journal-shop');
  dirs.push(dir);
  const file = path.join(dir, 'shop.db');
  const db = new Database(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, photo BLOB)');
  db.prepare('INSERT INTO items (name, qty, price, photo) VALUES (?, ?, ?, ?)').run('apple', BIG, 1.25, Buffer.from([0, 1, 2]));
  db.prepare('INSERT INTO items (name, qty, price, photo) VALUES (?, ?, ?, ?)').run('pear', 3, null, null);
  db.close();
  return {
    file,
    dump() {
      const d = new Database(file, { readonly: true });
      try {
        const statement = d.prepare('SELECT * FROM items ORDER BY id');
        statement.safeIntegers(true);
        return statement.all();
      } finally {
        d.close();
      }
    },
  };
}

function workerFolder(name: string): string {
  const dir = makeTempDir(`shared-journal-${name}`);
  dirs.push(dir);
  return dir;
}

describe.each([
  ['PostgreSQL', () => pg.db],
  ['SQLite state schema', () => sqlite],
] as const)('on %s', (_name, db) => {
  it('SQL run through worker A is undone by worker B from the shared journal, exactly once', async () => {
    const { file, dump } = shop();
    const before = dump();
    const journalKey = `task-${Math.random().toString(36).slice(2)}`;
    const journalA = path.join(workerFolder('a'), 'journals', `${journalKey}.sqlite`);
    const journalB = path.join(workerFolder('b'), 'journals', `${journalKey}.sqlite`);
    const capability = createSqlCapability({ databases: { shop: file }, query: true, exec: true, journal: journalA, callId: 'wf:3' });
    capability.exec('shop', "UPDATE items SET qty = qty + 1, photo = X'FF' WHERE name = 'apple'");
    capability.exec('shop', "DELETE FROM items WHERE name = 'pear'");
    expect(dump()).not.toEqual(before);

    // Without the shared journal, B has nothing to undo: the fault this closes.
    expect(undoSqlCall({ journal: journalB, callId: 'wf:3' }).calls).toEqual([]);

    expect(await shipJournal(db(), { journal: journalA, journalKey, baseCallId: 'wf:3', workerId: 'a' })).toEqual(['wf:3', 'wf:3#2']);
    expect(await shipJournal(db(), { journal: journalA, journalKey, baseCallId: 'wf:3', workerId: 'a' })).toEqual([]);
    expect(await hydrateJournal(db(), { journal: journalB, journalKey })).toEqual(['wf:3', 'wf:3#2']);
    expect(await hydrateJournal(db(), { journal: journalB, journalKey })).toEqual([]);
    expect(journaledRowsOf(journalB, 'wf:3')).toEqual(journaledRowsOf(journalA, 'wf:3'));
    expect(listJournaledCalls(journalB).map(({ undoneAt, undoOutcome, ...call }) => call)).toEqual(listJournaledCalls(journalA).map(({ undoneAt, undoOutcome, ...call }) => call));

    expect(undoSqlCall({ journal: journalB, callId: 'wf:3' }).calls.map((c) => c.outcome)).toEqual(['undone', 'undone']);
    expect(dump()).toEqual(before);
    // A's own journal now finds the calls undone in the target: exactly once, whoever asks.
    expect(undoSqlCall({ journal: journalA, callId: 'wf:3' }).calls.map((c) => c.outcome)).toEqual(['already-undone', 'already-undone']);
  });
});
