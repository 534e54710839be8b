/**
 * Open finding (s14, atk14; sqlproc), low: `sql.query`'s arguments are no longer checked where the
 * tool passed them but after a JSON round trip to the SQL process, which turns values the
 * capability refuses into ones it accepts: a parameter `Infinity` or `NaN` is bound as NULL, a
 * `Date` as its ISO text, a `String` object as SQL text or a database name is taken as the string.
 * The in-process capability (sql-capability.ts `sqlText`, `bindingsOf`) refuses each with
 * ERR_SQL_FAILED ("params[0] must be a string, a finite number, a boolean or null", "sql must be
 * a non-empty string"), and `sql.exec` still does (the host runs `checkExecArgs` before sending),
 * so the two capabilities now disagree, and a query runs with values other than the ones the tool
 * passed (a tool that computed `Infinity` from bad data reads the rows `? IS NULL` selects). The
 * gate decides what the process measured, so no statement escapes it; what is wrong is that a
 * statement runs that the capability's contract refuses, with no error naming the bad argument.
 *
 * Where: `sqlReferences` in sandbox/run-in-isolate.ts sends `{ database, sql, params }` as the
 * isolate copied them; `SqlProcessPool.run` writes them with `JSON.stringify`
 * (sql-process-pool.ts `send`), which is where Infinity/NaN become null and objects with `toJSON`
 * or wrappers become strings.
 *
 * Fix: check a query's arguments in the host as an exec's are (`sqlText`, `bindingsOf`, and a
 * string database) before they cross, or refuse in `send` any value JSON does not carry as is.
 *
 * Real parts: the sandbox host, its SQL processes, a real SQLite file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { makeTempDir, toolCall } from './sandbox-test-kit';

let client: SandboxClient;
let folder: string;
let grant: CapabilityGrant;

beforeAll(async () => {
  folder = makeTempDir('sql-query-args');
  const file = path.join(folder, 'shop.db');
  const db = new Database(file);
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('a');");
  db.close();
  grant = { sql: { databases: { shop: file }, query: true, exec: true } };
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

it.each([
  { name: 'a parameter Infinity', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [Infinity])" },
  { name: 'a parameter NaN', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [NaN])" },
  { name: 'a parameter Date', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [new Date(0)])" },
  { name: 'SQL text as a String object', call: "warden.sql.query('shop', new String('SELECT 1 AS t'))" },
  { name: 'the database as a String object', call: "warden.sql.query(new String('shop'), 'SELECT 1 AS t')" },
  // Control: sql.exec is checked in the host before it crosses, and refused.
  { name: 'sql.exec with a parameter Infinity (control)', call: "warden.sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', [Infinity])" },
])('sql.query refuses $name as the capability does', async ({ call }) => {
  const source = `try { return { ran: ${call} }; } catch (error) { return { refused: String(error.message).split(':')[0] }; }`;
  const response = await client.run(toolCall(source, null, grant, { timeoutMs: 30_000 }));
  expect(response.ok && response.output).toEqual({ refused: 'ERR_SQL_FAILED' });
});
