/**
 * Regression (s14, a risk the attacker noted): the host rebuilt each line a SQL process wrote by
 * appending every 64 KB chunk to the line so far and searching the whole of it for its end
 * (quadratic: a ~100 MB result held the host's main thread, every task's), and no result size had
 * a bound. Now each chunk is scanned once and the line joined once at its end, on both sides of the
 * pipe (sql-process-pool.ts, sql-process.ts), and a message over `maxMessageChars` (default
 * MAX_SQL_MESSAGE_CHARS, 64 Mi) kills its process and fails the statement ERR_SQL_FAILED naming
 * the bound. The bound row fails on the old code (the result came back whole); the others check
 * that lines spread over many chunks, either way, arrive whole.
 *
 * Real parts: SQL processes of a pool, a real SQLite file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SqlProcessPool } from '../../sandbox/capabilities/sql-process-pool';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { makeTempDir } from './sandbox-test-kit';

const CAP = 1024 * 1024;
let folder: string;
let grant: NonNullable<CapabilityGrant['sql']>;
let pool: SqlProcessPool;

beforeAll(() => {
  folder = makeTempDir('sql-result-size');
  const file = path.join(folder, 'shop.db');
  const db = new Database(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY)');
  db.close();
  grant = { databases: { shop: file }, query: true, exec: false };
  pool = new SqlProcessPool({ maxMessageChars: CAP });
});

afterAll(() => {
  pool?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

const query = (sql: string, params: unknown[] = []) => pool.run(grant, { op: 'query', database: 'shop', sql, params }, undefined, new AbortController().signal);

it('a result over the bound fails ERR_SQL_FAILED naming it, and the next statement runs', async () => {
  // zeroblob(2 MB) comes back as base64, about 2.7 Mi characters.
  await expect(query('SELECT zeroblob(2000000) AS b')).rejects.toMatchObject({ code: 'ERR_SQL_FAILED', message: expect.stringContaining(`over ${CAP} characters`) });
  await expect(query('SELECT 1 AS n')).resolves.toEqual([{ n: 1 }]);
});

it('a result of many chunks under the bound arrives whole', async () => {
  const rows = (await query("SELECT hex(zeroblob(400000)) AS h, 'end' AS e")) as { h: string; e: string }[];
  expect(rows).toHaveLength(1);
  expect(rows[0]!.h).toBe('0'.repeat(800000));
  expect(rows[0]!.e).toBe('end');
});

it('a request of many chunks (a long parameter) reaches the process whole', async () => {
  const long = 'é'.repeat(300000);
  await expect(query('SELECT length(?) AS n, substr(?, -1) AS last', [long, `${long}z`])).resolves.toEqual([{ n: 300000, last: 'z' }]);
});
