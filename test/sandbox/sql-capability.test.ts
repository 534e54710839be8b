import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leadingKeyword } from '../../sandbox/capabilities/sql-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf, makeTempDir, outputOf, toolCall } from './sandbox-test-kit';

let client: SandboxClient;
let folder: string;
let shopFile: string;
let otherFile: string;
let grant: CapabilityGrant;

beforeAll(async () => {
  folder = makeTempDir('sql');
  shopFile = path.join(folder, 'shop.db');
  otherFile = path.join(folder, 'other.db');
  const shop = new Database(shopFile);
  shop.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, photo BLOB); INSERT INTO items (name, price, photo) VALUES ('apple', 0.5, x'0102'), ('pear', 0.75, NULL);");
  shop.close();
  const other = new Database(otherFile);
  other.exec("CREATE TABLE secrets (value TEXT); INSERT INTO secrets VALUES ('top secret');");
  other.close();
  grant = { sql: { databases: { shop: shopFile }, query: true, exec: true } };
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

const query = (input: unknown, capabilities: CapabilityGrant = grant) => client.run(toolCall(builtinTools()['sql.query'].source, input, capabilities));
const exec = (input: unknown, capabilities: CapabilityGrant = grant) => client.run(toolCall(builtinTools()['sql.exec'].source, input, capabilities));

function itemNames(): string[] {
  const db = new Database(shopFile, { readonly: true });
  try {
    return (db.prepare('SELECT name FROM items ORDER BY id').all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

describe('sql.query', () => {
  it('returns rows, with parameters', async () => {
    const rows = outputOf(await query({ database: 'shop', sql: 'SELECT id, name, price FROM items WHERE price > ? ORDER BY id', params: [0.6] }));
    expect(rows).toEqual([{ id: 2, name: 'pear', price: 0.75 }]);
  });

  it('returns BLOBs as base64', async () => {
    expect(outputOf(await query({ database: 'shop', sql: "SELECT photo FROM items WHERE name = 'apple'" }))).toEqual([{ photo: 'AQI=' }]);
  });

  it('accepts WITH and VALUES', async () => {
    expect(outputOf(await query({ database: 'shop', sql: 'WITH cheap AS (SELECT name FROM items WHERE price < 1) SELECT count(*) AS n FROM cheap' }))).toEqual([{ n: 2 }]);
    expect(outputOf(await query({ database: 'shop', sql: 'VALUES (1)' }))).toEqual([{ column1: 1 }]);
  });

  it.each([
    ['a write', "INSERT INTO items (name) VALUES ('x')"],
    ['multiple statements', 'SELECT 1; DROP TABLE items'],
    ['ATTACH', "ATTACH DATABASE 'other.db' AS other"],
    ['PRAGMA', 'PRAGMA table_info(items)'],
    ['a pragma table function', "SELECT * FROM pragma_database_list"],
    ['DROP TABLE', 'DROP TABLE items'],
    ['a transaction', 'BEGIN'],
    ['INSERT … RETURNING', "INSERT INTO items (name) VALUES ('sneaky') RETURNING id"],
  ])('refuses %s with ERR_SQL_DENIED', async (_what, sql) => {
    expect(codeOf(await query({ database: 'shop', sql }))).toBe('ERR_SQL_DENIED');
    expect(itemNames()).toEqual(['apple', 'pear']);
  });

  it('a syntax error is ERR_SQL_FAILED', async () => {
    expect(codeOf(await query({ database: 'shop', sql: 'SELEC name FROM items' }))).toBe('ERR_SQL_FAILED');
    expect(codeOf(await query({ database: 'shop', sql: 'SELECT nope FROM items' }))).toBe('ERR_SQL_FAILED');
  });

  it('bad parameters are ERR_SQL_FAILED', async () => {
    expect(codeOf(await query({ database: 'shop', sql: 'SELECT ?', params: [{ an: 'object' }] }))).toBe('ERR_SQL_FAILED');
  });
});

describe('sql.exec', () => {
  it('inserts, updates and deletes, reporting changes', async () => {
    expect(outputOf(await exec({ database: 'shop', sql: 'INSERT INTO items (name, price) VALUES (?, ?)', params: ['plum', 1.25] }))).toEqual({ changes: 1 });
    expect(outputOf(await exec({ database: 'shop', sql: "UPDATE items SET price = price * 2 WHERE name = 'plum'" }))).toEqual({ changes: 1 });
    expect(outputOf(await query({ database: 'shop', sql: "SELECT price FROM items WHERE name = 'plum'" }))).toEqual([{ price: 2.5 }]);
    expect(outputOf(await exec({ database: 'shop', sql: 'DELETE FROM items WHERE name = ?', params: ['plum'] }))).toEqual({ changes: 1 });
    expect(itemNames()).toEqual(['apple', 'pear']);
  });

  it.each([
    ['DROP TABLE', 'DROP TABLE items'],
    ['CREATE TABLE', 'CREATE TABLE evil (x)'],
    ['ALTER TABLE', 'ALTER TABLE items ADD COLUMN evil TEXT'],
    ['ATTACH', "ATTACH DATABASE 'other.db' AS other"],
    ['DETACH', 'DETACH DATABASE main'],
    ['PRAGMA', 'PRAGMA journal_mode = DELETE'],
    ['multiple statements', "INSERT INTO items (name) VALUES ('a'); DROP TABLE items"],
    ['a SELECT', 'SELECT * FROM items'],
    ['VACUUM', 'VACUUM'],
    ['a transaction', 'COMMIT'],
  ])('refuses %s with ERR_SQL_DENIED', async (_what, sql) => {
    expect(codeOf(await exec({ database: 'shop', sql }))).toBe('ERR_SQL_DENIED');
    expect(itemNames()).toEqual(['apple', 'pear']);
  });

  it('without journal, callId or dryRun it stays plain: { changes } only, no ledger table, no capture', async () => {
    expect(outputOf(await exec({ database: 'shop', sql: "UPDATE items SET price = price WHERE name = 'apple'" }))).toEqual({ changes: 1 });
    expect(outputOf(await query({ database: 'shop', sql: "SELECT count(*) AS n FROM sqlite_schema WHERE name LIKE 'warden%'" }))).toEqual([{ n: 0 }]);
  });

  it('a failing statement changes nothing (ERR_SQL_FAILED)', async () => {
    expect(codeOf(await exec({ database: 'shop', sql: 'INSERT INTO items (name) VALUES (NULL)' }))).toBe('ERR_SQL_FAILED');
    expect(itemNames()).toEqual(['apple', 'pear']);
  });
});

describe('sql grants', () => {
  it('a database that is not granted is ERR_DATABASE_NOT_GRANTED', async () => {
    expect(codeOf(await query({ database: 'other', sql: 'SELECT * FROM secrets' }))).toBe('ERR_DATABASE_NOT_GRANTED');
    expect(codeOf(await exec({ database: 'other', sql: 'DELETE FROM secrets' }))).toBe('ERR_DATABASE_NOT_GRANTED');
  });

  it.each(['__proto__', 'constructor', 'toString', otherFile])('%j is not a database name', async (name) => {
    expect(codeOf(await query({ database: name, sql: 'SELECT 1' }))).toBe('ERR_DATABASE_NOT_GRANTED');
  });

  it('a granted database whose file is missing is ERR_SQL_FAILED and is not created', async () => {
    const missing = path.join(folder, 'missing.db');
    const response = await query({ database: 'gone', sql: 'SELECT 1' }, { sql: { databases: { gone: missing }, query: true, exec: false } });
    expect(codeOf(response)).toBe('ERR_SQL_FAILED');
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('exec is not installed when only query is granted', async () => {
    const readOnly: CapabilityGrant = { sql: { databases: { shop: shopFile }, query: true, exec: false } };
    expect(codeOf(await exec({ database: 'shop', sql: 'DELETE FROM items' }, readOnly))).toBe('ERR_TOOL_THREW');
    expect(itemNames()).toEqual(['apple', 'pear']);
  });
});

describe('a query that never ends', () => {
  // The host stops it itself (its SQL process killed, test/sandbox/stopped-call-spares-host.test.ts);
  // on a loaded machine the worker-side deadline may still come first and replace the host.
  it('is stopped (ERR_SANDBOX_TIMEOUT) and the next call works', async () => {
    const impatient = await SandboxClient.start({ deadlineGraceMs: 500 });
    try {
      const forever = 'WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) AS c FROM n';
      const response = await impatient.run(toolCall(builtinTools()['sql.query'].source, { database: 'shop', sql: forever }, grant, { timeoutMs: 300 }));
      expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
      const next = await impatient.run(toolCall(builtinTools()['sql.query'].source, { database: 'shop', sql: 'SELECT count(*) AS c FROM items' }, grant));
      expect(outputOf(next)).toEqual([{ c: 2 }]);
    } finally {
      await impatient.close();
    }
  });
});

describe('leadingKeyword', () => {
  it.each([
    ['select 1', 'SELECT'],
    ['  -- comment\n  /* block */ insert into t values (1)', 'INSERT'],
    ['/* unterminated', ''],
    ['(select 1)', ''],
  ])('%j -> %j', (sql, keyword) => {
    expect(leadingKeyword(sql)).toBe(keyword);
  });
});
