import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSqlCapability, type SqlCapability } from '../../sandbox/capabilities/sql-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { journaledRowsOf, listJournaledCalls, recordJournaledCall, undoAllSqlCalls, undoSqlCall } from '../../recovery/sql-undo-journal';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf as responseCode, outputOf, toolCall } from '../sandbox/sandbox-test-kit';
import { codeThrownBy, makeTempDir } from './recovery-test-kit';

let folder: string;
let shopFile: string;
let journal: string;

const SCHEMA = `
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, price REAL, qty INTEGER, photo BLOB, note);
INSERT INTO items (name, price, qty, photo, note) VALUES
  ('apple', 0.5, 10, x'0102', 'fresh'),
  ('pear', 0.75, 9007199254740993, NULL, 1.0),
  ('plum', 1.25, 0, x'', NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items(id) ON DELETE CASCADE, amount INTEGER);
INSERT INTO orders (item_id, amount) VALUES (1, 3), (1, 4), (2, 5);
CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT) WITHOUT ROWID;
INSERT INTO codes VALUES ('a', 'A');
`;

/** The whole database as exact text (values and their types), for "unchanged" assertions. */
function dump(file = shopFile): string {
  const db = new Database(file, { readonly: true });
  try {
    const out: string[] = [];
    for (const { name } of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'warden_%' ORDER BY name").all() as { name: string }[]) {
      const columns = (db.prepare('SELECT name FROM pragma_table_info(?)').all(name) as { name: string }[]).map((c) => `"${c.name}"`);
      const key = name === 'codes' ? 'code' : 'rowid';
      const statement = db.prepare(`SELECT ${key}, ${columns.join(', ')}, ${columns.map((c) => `typeof(${c})`).join(', ')} FROM "${name}" ORDER BY ${key}`);
      statement.safeIntegers(true);
      statement.raw(true);
      for (const row of statement.iterate() as Iterable<unknown[]>) {
        out.push(`${name} ${JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      }
    }
    return out.join('\n');
  } finally {
    db.close();
  }
}

function appliedCalls(file = shopFile): { call_id: string; undone_at: string | null }[] {
  const db = new Database(file, { readonly: true });
  try {
    if (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'warden_applied_calls'").get() === undefined) return [];
    return db.prepare('SELECT call_id, undone_at FROM warden_applied_calls ORDER BY call_id').all() as { call_id: string; undone_at: string | null }[];
  } finally {
    db.close();
  }
}

function capability(extra: Partial<NonNullable<CapabilityGrant['sql']>> = {}): SqlCapability {
  return createSqlCapability({ databases: { shop: shopFile }, query: true, exec: true, ...extra });
}

beforeEach(() => {
  folder = makeTempDir('sql-undo');
  shopFile = path.join(folder, 'shop.db');
  journal = path.join(folder, 'journals', 'task.sqlite');
  const db = new Database(shopFile);
  db.exec(SCHEMA);
  db.close();
});

afterEach(() => {
  fs.rmSync(folder, { recursive: true, force: true });
});

describe('brokered sql.exec captures exact before-images and undoes them', () => {
  it.each([
    ['UPDATE', "UPDATE items SET price = price * 2, note = 'changed', photo = x'ff' WHERE price < 1", [], 'items', 2],
    ['DELETE', 'DELETE FROM items WHERE qty > ?', [5], 'items', 2],
    ['INSERT', 'INSERT INTO items (name, price, qty) VALUES (?, ?, ?), (?, ?, ?)', ['kiwi', 2, 1, 'fig', 3.5, 2], 'items', 2],
    ['REPLACE over a unique name (an implicit delete)', "REPLACE INTO items (name, price) VALUES ('pear', 9)", [], 'items', 1],
    ['REPLACE over a rowid', "REPLACE INTO items (id, name, price) VALUES (1, 'apple2', 9)", [], 'items', 1],
    ['an UPDATE that moves rowids', 'UPDATE orders SET id = id + 100', [], 'orders', 3],
    ['WITH … DELETE', 'WITH cheap AS (SELECT id FROM items WHERE price < 1) DELETE FROM items WHERE id IN cheap', [], 'items', 2],
    ['an upsert', "INSERT INTO items (name, price) VALUES ('apple', 7) ON CONFLICT (name) DO UPDATE SET price = excluded.price", [], 'items', 1],
  ])('%s', (_what, sql, params, table, changes) => {
    const before = dump();
    const result = capability({ journal, callId: 'call-1' }).exec('shop', sql, params);
    expect(result).toMatchObject({ changes, table, callId: 'call-1' });
    expect(result.rowsChanged).toBeGreaterThanOrEqual(changes);
    expect(dump()).not.toBe(before);
    expect(listJournaledCalls(journal)).toMatchObject([{ callId: 'call-1', database: 'shop', databasePath: shopFile, table, changes }]);

    const undo = undoSqlCall({ journal, callId: 'call-1' });
    expect(undo.calls).toMatchObject([{ callId: 'call-1', outcome: 'undone' }]);
    expect(dump()).toBe(before);
    expect(appliedCalls()).toMatchObject([{ call_id: 'call-1', undone_at: expect.any(String) }]);
    // Idempotent.
    expect(undoSqlCall({ journal, callId: 'call-1' }).calls).toMatchObject([{ outcome: 'already-undone' }]);
    expect(dump()).toBe(before);
  });

  it('keeps the exact values: 64-bit integers, reals that look like integers, BLOBs', () => {
    capability({ journal, callId: 'c' }).exec('shop', "UPDATE items SET qty = 0, note = 'x', photo = NULL WHERE name = 'pear' OR name = 'apple'");
    const rows = journaledRowsOf(journal, 'c');
    expect(rows.map((r) => [r.op, r.oldRowid, r.newRowid])).toEqual([
      ['update', 1n, 1n],
      ['update', 2n, 2n],
    ]);
    expect(rows[1]?.columns).toEqual(['id', 'name', 'price', 'qty', 'photo', 'note']);
    expect(rows[1]?.before).toEqual([2n, 'pear', 0.75, 9007199254740993n, null, 1]);
    expect(rows[0]?.before?.[4]).toEqual(Buffer.from([1, 2]));
    const before = dump();
    capability({ journal, callId: 'd' }).exec('shop', 'DELETE FROM items');
    undoSqlCall({ journal, callId: 'd' });
    expect(dump()).toBe(before);
  });

  it('captures rows a foreign-key cascade deletes, and restores them', () => {
    const before = dump();
    const result = capability({ journal, callId: 'cascade' }).exec('shop', "DELETE FROM items WHERE name = 'apple'");
    expect(result).toMatchObject({ changes: 1, rowsChanged: 3 });
    expect(journaledRowsOf(journal, 'cascade').map((r) => `${r.op} ${r.table}`).sort()).toEqual(['delete items', 'delete orders', 'delete orders']);
    undoSqlCall({ journal, callId: 'cascade' });
    expect(dump()).toBe(before);
  });

  it("captures what the database's own triggers change elsewhere", () => {
    const setup = new Database(shopFile);
    setup.exec(`CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
      CREATE TRIGGER items_audit AFTER UPDATE ON items BEGIN INSERT INTO audit (what) VALUES ('updated ' || NEW.name); END;`);
    setup.close();
    const before = dump();
    expect(capability({ journal, callId: 'trig' }).exec('shop', 'UPDATE items SET qty = qty + 1')).toMatchObject({ changes: 3, rowsChanged: 6 });
    undoSqlCall({ journal, callId: 'trig' });
    // The undo itself fired no trigger (they are suspended inside its transaction) ...
    expect(dump()).toBe(before);
    // ... and the trigger is back afterwards.
    const db = new Database(shopFile);
    db.prepare("UPDATE items SET qty = 1 WHERE name = 'apple'").run();
    expect(db.prepare('SELECT what FROM audit').all()).toEqual([{ what: 'updated apple' }]);
    db.close();
  });

  it('undoes the sub-calls of one tool call newest first', () => {
    const sql = capability({ journal, callId: 'tool-7' });
    const before = dump();
    expect(sql.exec('shop', "UPDATE items SET price = 1 WHERE name = 'apple'").callId).toBe('tool-7');
    expect(sql.exec('shop', "UPDATE items SET price = 2 WHERE name = 'apple'").callId).toBe('tool-7#2');
    expect(sql.exec('shop', "DELETE FROM items WHERE name = 'apple'").callId).toBe('tool-7#3');
    const undo = undoSqlCall({ journal, callId: 'tool-7' });
    expect(undo.calls.map((c) => c.callId)).toEqual(['tool-7#3', 'tool-7#2', 'tool-7']);
    expect(dump()).toBe(before);
  });

  it('undoAllSqlCalls undoes a whole task, newest first', () => {
    const before = dump();
    capability({ journal, callId: 'a' }).exec('shop', "INSERT INTO items (name) VALUES ('new')");
    capability({ journal, callId: 'b' }).exec('shop', "UPDATE items SET price = 0 WHERE name = 'new'");
    capability({ journal, callId: 'c' }).exec('shop', 'DELETE FROM orders');
    expect(undoAllSqlCalls({ journal }).map((c) => c.callId)).toEqual(['c', 'b', 'a']);
    expect(dump()).toBe(before);
    expect(undoAllSqlCalls({ journal })).toEqual([]);
  });
});

describe('exactly once by call id', () => {
  it('a re-run with the same call id returns the recorded result and changes nothing', () => {
    const first = capability({ journal, callId: 'once' }).exec('shop', 'UPDATE items SET qty = qty + 1');
    const after = dump();
    const again = capability({ journal, callId: 'once' }).exec('shop', 'UPDATE items SET qty = qty + 1');
    expect(again).toEqual(first);
    expect(dump()).toBe(after);
    expect(listJournaledCalls(journal)).toHaveLength(1);
  });

  it('works without a journal too (call id only)', () => {
    capability({ callId: 'plain' }).exec('shop', 'UPDATE items SET qty = qty + 1');
    const after = dump();
    expect(capability({ callId: 'plain' }).exec('shop', 'UPDATE items SET qty = qty + 1')).toMatchObject({ changes: 3, callId: 'plain' });
    expect(dump()).toBe(after);
  });

  it('an undo that crashed after its commit but before the journal noted it is not applied twice', () => {
    const before = dump();
    capability({ journal, callId: 'twice' }).exec('shop', "UPDATE items SET qty = 7");
    undoSqlCall({ journal, callId: 'twice' });
    const j = new Database(journal);
    j.prepare("UPDATE warden_undo_calls SET undone_at = NULL, undo_outcome = NULL WHERE call_id = 'twice'").run();
    j.close();
    expect(undoSqlCall({ journal, callId: 'twice' }).calls).toMatchObject([{ outcome: 'already-undone' }]);
    expect(dump()).toBe(before);
  });

  it('an undone call is not applied again by a late retry', () => {
    const before = dump();
    capability({ journal, callId: 'late' }).exec('shop', 'DELETE FROM orders');
    undoSqlCall({ journal, callId: 'late' });
    capability({ journal, callId: 'late' }).exec('shop', 'DELETE FROM orders');
    expect(dump()).toBe(before);
  });

  it('journaled images of a call that never committed are ignored by undo (crash between journal and commit)', () => {
    const before = dump();
    recordJournaledCall(journal, {
      callId: 'ghost',
      baseCallId: 'ghost',
      database: 'shop',
      databasePath: shopFile,
      table: 'items',
      op: 'delete',
      sql: 'DELETE FROM items',
      changes: 1,
      rows: [{ seq: 1, table: 'items', op: 'delete', oldRowid: 1n, newRowid: null, columns: ['id', 'name'], before: [1n, 'apple'], after: null }],
      recordedAt: new Date().toISOString(),
    });
    expect(undoSqlCall({ journal, callId: 'ghost' }).calls).toMatchObject([{ outcome: 'not-applied' }]);
    expect(dump()).toBe(before);
  });

  it('a statement that fails leaves neither a change nor an applied record', () => {
    expect(codeThrownBy(() => capability({ journal, callId: 'bad' }).exec('shop', 'INSERT INTO items (name) VALUES (NULL)'))).toBe('ERR_SQL_FAILED');
    expect(appliedCalls()).toEqual([]);
    expect(capability({ journal, callId: 'bad' }).exec('shop', "INSERT INTO items (name) VALUES ('ok')")).toMatchObject({ changes: 1 });
  });
});

describe('dry run', () => {
  it('reports the measured effect and leaves the database unchanged', () => {
    const before = dump();
    expect(capability({ dryRun: true }).exec('shop', 'DELETE FROM items WHERE price < ?', [1])).toEqual({ changes: 2, table: 'items' });
    expect(capability({ dryRun: true, journal, callId: 'dry' }).exec('shop', "UPDATE orders SET amount = 0")).toEqual({ changes: 3, table: 'orders' });
    expect(dump()).toBe(before);
    expect(fs.existsSync(journal)).toBe(false);
  });
});

describe('undo conflicts', () => {
  it('a row changed since the call is refused (ERR_ROLLBACK_CONFLICT) unless forced', () => {
    capability({ journal, callId: 'u' }).exec('shop', "UPDATE items SET price = 5 WHERE name = 'apple'");
    const db = new Database(shopFile);
    db.prepare("UPDATE items SET price = 6 WHERE name = 'apple'").run();
    db.close();
    let thrown: unknown;
    try {
      undoSqlCall({ journal, callId: 'u' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'ERR_ROLLBACK_CONFLICT', details: { rows: ['items#1'] } });
    expect(undoSqlCall({ journal, callId: 'u', force: true }).calls).toMatchObject([{ outcome: 'undone' }]);
    const check = new Database(shopFile, { readonly: true });
    expect(check.prepare("SELECT price FROM items WHERE name = 'apple'").get()).toEqual({ price: 0.5 });
    check.close();
  });
});

describe('what the broker refuses', () => {
  it.each([
    ['a WITHOUT ROWID table', "UPDATE codes SET label = 'B'"],
    ['RETURNING', "DELETE FROM items RETURNING id"],
    ["Warden's ledger", 'DELETE FROM warden_applied_calls'],
    ['multiple statements', "UPDATE items SET qty = 1; DROP TABLE items"],
    ['DDL', 'DROP TABLE items'],
    ['PRAGMA', 'PRAGMA foreign_keys = OFF'],
    ['ATTACH', "ATTACH DATABASE 'x.db' AS x"],
  ])('%s: ERR_SQL_DENIED, nothing changed', (_what, sql) => {
    const before = dump();
    expect(codeThrownBy(() => capability({ journal, callId: 'x' }).exec('shop', sql))).toBe('ERR_SQL_DENIED');
    expect(dump()).toBe(before);
  });

  it('a view with an INSTEAD OF trigger reports (and captures) the table the trigger writes', () => {
    const db = new Database(shopFile);
    db.exec('CREATE VIEW cheap AS SELECT * FROM items WHERE price < 1; CREATE TRIGGER cheap_del INSTEAD OF DELETE ON cheap BEGIN DELETE FROM items WHERE id = OLD.id; END;');
    db.close();
    const before = dump();
    expect(capability({ journal, callId: 'v' }).exec('shop', 'DELETE FROM cheap')).toMatchObject({ table: 'items', rowsChanged: 5 });
    undoSqlCall({ journal, callId: 'v' });
    expect(dump()).toBe(before);
  });
});

describe('brokered sql.exec through the sandbox', () => {
  let client: SandboxClient;
  beforeAll(async () => {
    client = await SandboxClient.start();
  });
  afterAll(async () => {
    await client.close();
  });

  it('the grant fields reach the capability: result, journal, exactly once, dry run', async () => {
    const grant: CapabilityGrant = { sql: { databases: { shop: shopFile }, query: true, exec: true, journal, callId: 'wf-1:step-3' } };
    const exec = (input: unknown, g: CapabilityGrant = grant) => client.run(toolCall(builtinTools()['sql.exec'].source, input, g));
    const before = dump();
    const first = outputOf(await exec({ database: 'shop', sql: 'DELETE FROM orders WHERE amount > ?', params: [3] }));
    expect(first).toEqual({ changes: 2, table: 'orders', rowsChanged: 2, callId: 'wf-1:step-3' });
    expect(outputOf(await exec({ database: 'shop', sql: 'DELETE FROM orders WHERE amount > ?', params: [3] }))).toEqual(first);
    const dry = { sql: { databases: { shop: shopFile }, query: true, exec: true, dryRun: true } };
    expect(outputOf(await exec({ database: 'shop', sql: 'DELETE FROM orders' }, dry))).toEqual({ changes: 1, table: 'orders' });
    expect(responseCode(await exec({ database: 'shop', sql: 'DELETE FROM warden_applied_calls' }))).toBe('ERR_SQL_DENIED');
    undoSqlCall({ journal, callId: 'wf-1:step-3' });
    expect(dump()).toBe(before);
  });
});
