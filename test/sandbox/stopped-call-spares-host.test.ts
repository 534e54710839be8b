/**
 * A call stopped in the sandbox host (cancelled, or overrunning its timeout) is stopped by the host
 * itself, whatever capability holds it, and every other call on the host goes on; where the host
 * is lost all the same (killed), each other call is answered for what it did.
 *
 * Table 1, capability kinds × cancel / overrun: the stopped call is in a SQL statement that does
 * not end (sql.exec, sql.query, a brokered sql.exec with journal and call id), in a CPU loop, in an
 * http.fetch the server never answers, or in an fs.write loop. The host answers it
 * ERR_TOOL_CANCELLED / ERR_SANDBOX_TIMEOUT itself (the client's graces are set far out so a host
 * kill would show as a hang, not as an answer), no host is killed or exits, and a call of another
 * task sent meanwhile is answered with its own result. On the old code every SQL row failed: the
 * statement held the host's main thread, so the host could not answer the cancel nor its wall
 * clock fire, and the client killed it (cancelKills/deadlineKills 1, the bystander crashed).
 *
 * Table 2, the host killed (SIGKILL) with bystanders in flight: one that reached no capability (a
 * CPU loop) is answered ERR_SANDBOX_CRASHED retryable (its activity runs it again on the
 * replacement host); one whose http.fetch POST the server had received is answered
 * ERR_SANDBOX_CRASHED not retryable, naming http.fetch, whose effect may have happened. On the
 * old code both were the same plain crash.
 *
 * An interrupted statement leaves the database unchanged: real SQLite files, read after each SQL
 * row (no rows, no `warden_applied_calls` entry, it takes a write at once).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { until } from '../support/run-tool-watch';
import { codeOf, makeTempDir, toolCall } from './sandbox-test-kit';

/** Far out: a host that did not answer by itself would make the test hang, not pass. */
const FAR = 600_000;
const NEVER_ENDS = "SELECT 'x' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x = 1 OR x = 1000000000000000";

let client: SandboxClient;
let folder: string;
let web: Server;
const requests: { url: string; body: string; res: ServerResponse }[] = [];

beforeAll(async () => {
  folder = makeTempDir('stopped-call');
  web = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => requests.push({ url: req.url ?? '', body, res }));
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
});

afterAll(async () => {
  await client?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
  fs.rmSync(folder, { recursive: true, force: true });
});

const webHost = () => `127.0.0.1:${(web.address() as AddressInfo).port}`;

function shopDatabase(): string {
  const file = path.join(folder, `shop-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);');
  db.close();
  return file;
}

/** What the database holds once opened again (a hot journal is rolled back by that open), and whether it takes a write (no lock left). */
function contents(file: string): { items: number; applied: number; writable: boolean } {
  const db = new Database(file);
  let items: number;
  let applied: number;
  try {
    items = (db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n;
    const ledger = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'warden_applied_calls'").get() !== undefined;
    applied = ledger ? (db.prepare('SELECT count(*) AS n FROM warden_applied_calls').get() as { n: number }).n : 0;
    db.transaction(() => db.prepare("INSERT INTO items (name) VALUES ('check')").run())();
    db.prepare("DELETE FROM items WHERE name = 'check'").run();
  } finally {
    db.close();
  }
  return { items, applied, writable: true };
}

interface Holder {
  name: string;
  /** The call that holds its capability until stopped, and how to tell it is holding it. */
  start: (timeoutMs: number) => { call: ReturnType<typeof toolCall>; holding: () => boolean; after?: () => void };
}

const holders: Holder[] = [
  {
    name: 'sql.exec, a statement that does not end',
    start: (timeoutMs) => {
      const file = shopDatabase();
      const grant: CapabilityGrant = { sql: { databases: { shop: file }, query: true, exec: true } };
      return {
        call: toolCall(builtinTools()['sql.exec'].source, { database: 'shop', sql: `INSERT INTO items (name) ${NEVER_ENDS}` }, grant, { timeoutMs }),
        holding: () => fs.existsSync(`${file}-journal`),
        after: () => expect(contents(file)).toEqual({ items: 0, applied: 0, writable: true }),
      };
    },
  },
  {
    name: 'sql.exec brokered (journal, call id), a statement that does not end',
    start: (timeoutMs) => {
      const file = shopDatabase();
      const journal = path.join(folder, `undo-${Math.random().toString(36).slice(2)}.db`);
      const grant: CapabilityGrant = { sql: { databases: { shop: file }, query: true, exec: true, journal, callId: 'call-1' } };
      return {
        call: toolCall(builtinTools()['sql.exec'].source, { database: 'shop', sql: `INSERT INTO items (name) ${NEVER_ENDS}` }, grant, { timeoutMs }),
        holding: () => fs.existsSync(`${file}-journal`),
        after: () => expect(contents(file)).toEqual({ items: 0, applied: 0, writable: true }),
      };
    },
  },
  {
    name: 'sql.query, a query that does not end',
    start: (timeoutMs) => {
      const file = shopDatabase();
      const root = fs.mkdtempSync(path.join(folder, 'ws-'));
      const grant: CapabilityGrant = { sql: { databases: { shop: file }, query: true, exec: false }, fs: { root, read: false, write: true, list: false } };
      // A read leaves no file to see: the tool marks the moment just before its query instead.
      const source = `warden.fs.write('started', '1'); return warden.sql.query('shop', input.sql);`;
      return { call: toolCall(source, { sql: `SELECT count(*) AS n FROM (${NEVER_ENDS})` }, grant, { timeoutMs }), holding: () => fs.existsSync(path.join(root, 'started')) };
    },
  },
  {
    name: 'a CPU loop, no capability',
    start: (timeoutMs) => ({ call: toolCall('for (;;) {}', null, {}, { timeoutMs }), holding: () => true }),
  },
  {
    name: 'http.fetch the server never answers',
    start: (timeoutMs) => {
      const before = requests.length;
      const grant: CapabilityGrant = { http: { allowedHosts: [webHost()] } };
      return { call: toolCall('return (await warden.http.fetch(input.url)).status;', { url: `http://${webHost()}/hold` }, grant, { timeoutMs }), holding: () => requests.slice(before).some((r) => r.url === '/hold') };
    },
  },
  {
    name: 'an fs.write loop',
    start: (timeoutMs) => {
      const root = fs.mkdtempSync(path.join(folder, 'ws-'));
      const grant: CapabilityGrant = { fs: { root, read: true, write: true, list: true } };
      return { call: toolCall("for (let i = 0; ; i += 1) warden.fs.write('f.txt', String(i));", null, grant, { timeoutMs }), holding: () => fs.existsSync(path.join(root, 'f.txt')) };
    },
  },
];

describe.each(holders)('a call held in $name', (holder) => {
  it.each([
    { how: 'cancelled', code: 'ERR_TOOL_CANCELLED', timeoutMs: FAR },
    { how: 'overrunning its timeout', code: 'ERR_SANDBOX_TIMEOUT', timeoutMs: 3000 },
  ])('$how is answered $code by the host, and another call goes on', async ({ how, code, timeoutMs }) => {
    const before = client.stats;
    const { call, holding, after } = holder.start(timeoutMs);
    const cancel = new AbortController();
    const stopped = client.run(call, { signal: cancel.signal });
    await until(holding, 'the call holds its capability', { 'the held call': stopped });
    const other = client.run(toolCall('return "b";'));
    if (how === 'cancelled') cancel.abort();
    expect(codeOf(await stopped)).toBe(code);
    expect(codeOf(await other)).toBe('ok: "b"');
    const now = client.stats;
    expect({ exits: now.hostExits - before.hostExits, cancelKills: now.cancelKills - before.cancelKills, deadlineKills: now.deadlineKills - before.deadlineKills }).toEqual({ exits: 0, cancelKills: 0, deadlineKills: 0 });
    after?.();
  }, 180_000);
});

describe('the host killed with other calls in flight', () => {
  it('answers one that reached no capability retryable, and one whose payment reached the server as having reached http.fetch', async () => {
    const before = requests.length;
    const grant: CapabilityGrant = { http: { allowedHosts: [webHost()] } };
    const paying = client.run(toolCall("return (await warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' })).status;", { url: `http://${webHost()}/pay` }, grant, { timeoutMs: FAR }));
    const computing = client.run(toolCall('for (;;) {}', null, {}, { timeoutMs: FAR }));
    await until(() => requests.slice(before).some((r) => r.url === '/pay'), 'the payment arrived', { 'the payment': paying, 'the computing call': computing });
    process.kill(client.pid!, 'SIGKILL');
    const [paid, computed] = (await Promise.all([paying, computing])) as [SandboxRunResponse, SandboxRunResponse];
    expect(paid).toMatchObject({ ok: false, error: { code: 'ERR_SANDBOX_CRASHED', message: expect.stringContaining('after the call had reached http.fetch') } });
    expect(paid.ok ? undefined : paid.error.retryable).toBeUndefined();
    expect(computed).toMatchObject({ ok: false, error: { code: 'ERR_SANDBOX_CRASHED', retryable: true } });
    // The replacement host serves the call run again.
    expect(codeOf(await client.run(toolCall('return "again";')))).toBe('ok: "again"');
  }, 180_000);
});
