/**
 * Regression (s14, was test/attacks/open/sql-query-args-coerced-in-transport.test.ts, low):
 * `sql.query`'s arguments were checked only after a JSON round trip to the SQL process, which
 * turned values the capability refuses into ones it accepts: a parameter `Infinity` or `NaN` was
 * bound as NULL, a `Date` as its ISO text, a `String` object as SQL text or a database name was
 * taken as the string; the in-process capability refuses each, and `sql.exec` still did (checked
 * in the host before sending). Now every SQL capability's arguments are checked in the host by one
 * function before they cross (`checkStatementArgs`, sandbox/capabilities/sql-capability.ts, called
 * by `sqlReferences` in sandbox/run-in-isolate.ts and again where the statement runs). The five
 * query rows failed on the old code (the query ran); the exec row is the control.
 *
 * Real parts: the sandbox host, its SQL processes, a real SQLite file.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { startShopSandbox, toolCall, type ShopSandbox } from './sandbox-test-kit';

let shop: ShopSandbox;
let client: SandboxClient;
let grant: CapabilityGrant;

beforeAll(async () => {
  shop = await startShopSandbox('sql-query-args');
  ({ client, grant } = shop);
});

afterAll(async () => {
  await shop?.close();
});

it.each([
  { name: 'a parameter Infinity', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [Infinity])" },
  { name: 'a parameter NaN', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [NaN])" },
  { name: 'a parameter Date', call: "warden.sql.query('shop', 'SELECT typeof(?) AS t', [new Date(0)])" },
  { name: 'SQL text as a String object', call: "warden.sql.query('shop', new String('SELECT 1 AS t'))" },
  // Refused as a database not granted, as the in-process capability did (only a string names one).
  { name: 'the database as a String object', call: "warden.sql.query(new String('shop'), 'SELECT 1 AS t')", code: 'ERR_DATABASE_NOT_GRANTED' },
  // Control: sql.exec is checked in the host before it crosses, and refused.
  { name: 'sql.exec with a parameter Infinity (control)', call: "warden.sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', [Infinity])" },
])('sql.query refuses $name as the capability does', async ({ call, code }: { call: string; code?: string }) => {
  const source = `try { return { ran: ${call} }; } catch (error) { return { refused: String(error.message).split(':')[0] }; }`;
  const response = await client.run(toolCall(source, null, grant, { timeoutMs: 30_000 }));
  expect(response.ok && response.output).toEqual({ refused: code ?? 'ERR_SQL_FAILED' });
});
