/**
 * Regression (s14, was test/attacks/open/reached-notice-lost-behind-other-answers.test.ts, medium):
 * a call lost with its sandbox host was answered ERR_SANDBOX_CRASHED *retryable* ("the call had
 * reached no capability, so nothing of it happened and it may be run again") although its
 * capability had taken effect: the host's notice that the call reached it (SandboxReachedNotice)
 * was only queued (`process.send`) before the use went ahead, behind large answers to other calls
 * while the worker did not read, and died with the host; and the client answered a lost host's
 * calls on its `exit` event, which Node may emit before what the host sent has been read.
 *
 * Now the host writes each notice synchronously on a pipe of its own before the use goes ahead
 * (sandbox-host.ts `writeNoticeSync`), and the client answers a lost host's calls once the host
 * has exited and that pipe and its IPC channel have closed (`close`, sandbox-client.ts).
 *
 * Table: every capability the host runs (fs.read, fs.write, fs.list, http.fetch, sql.query,
 * sql.exec, brokered sql.exec): three calls answer ~900 KB each while the test (the worker's side)
 * does not read; a fourth uses the capability, then leaves a mark (a file) and computes; once the mark exists the host is killed. The answer must name the
 * capability and not be retryable. Each row failed on the old code (answered retryable).
 * (proc.run does not run in the sandbox host.)
 *
 * Real parts: the sandbox host process, real IPC, real files, a real SQLite file, a loopback server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, toolCall } from './sandbox-test-kit';

/** Far out: only the test's own kill ends the host. */
const FAR = 600_000;
let client: SandboxClient;
let folder: string;
let web: Server;

beforeAll(async () => {
  folder = makeTempDir('reached-notice');
  // Never answers.
  web = createServer(() => undefined);
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
  expect(codeOf(await client.run(toolCall('return 1;')))).toBe('ok: 1');
});

afterAll(async () => {
  await client?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
  fs.rmSync(folder, { recursive: true, force: true });
});

const webHost = () => `127.0.0.1:${(web.address() as AddressInfo).port}`;

/** Blocks this thread (the worker's side: nothing is read meanwhile) until `done` or 60 s. */
function spinUntil(done: () => boolean): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (done()) return true;
    Atomics.wait(pause, 0, 0, 5);
  }
  return done();
}

function shopDatabase(): string {
  const file = path.join(folder, `shop-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(file);
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO items (name) VALUES ('a');");
  db.close();
  return file;
}

interface Row {
  capability: string;
  /** The grant beside fs.write (the mark), and the tool's use of the capability. */
  grant: (root: string) => CapabilityGrant;
  use: string;
}

const fsGrant = (root: string, more: Partial<NonNullable<CapabilityGrant['fs']>> = {}) => ({ root, read: false, write: true, list: false, ...more });
const ROWS: Row[] = [
  { capability: 'fs.write', grant: (root) => ({ fs: fsGrant(root) }), use: "warden.fs.write('paid.txt', 'pay 100 to bob');" },
  { capability: 'fs.read', grant: (root) => ({ fs: fsGrant(root, { read: true }) }), use: "try { warden.fs.read('paid.txt'); } catch {}" },
  { capability: 'fs.list', grant: (root) => ({ fs: fsGrant(root, { list: true }) }), use: "warden.fs.list('.');" },
  { capability: 'sql.query', grant: (root) => ({ fs: fsGrant(root), sql: { databases: { shop: shopDatabase() }, query: true, exec: false } }), use: "warden.sql.query('shop', 'SELECT * FROM items');" },
  { capability: 'sql.exec', grant: (root) => ({ fs: fsGrant(root), sql: { databases: { shop: shopDatabase() }, query: false, exec: true } }), use: "warden.sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['paid']);" },
  {
    capability: 'sql.exec',
    grant: (root) => ({ fs: fsGrant(root), sql: { databases: { shop: shopDatabase() }, query: false, exec: true, journal: path.join(root, '..', `undo-${path.basename(root)}.db`), callId: 'call-1' } }),
    use: "warden.sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['paid']);",
  },
  // Not awaited: the request is on its way (the server never answers) when the mark is left.
  { capability: 'http.fetch', grant: (root) => ({ fs: fsGrant(root), http: { allowedHosts: [webHost()] } }), use: "warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' });" },
];

it.each(ROWS.map((row, index) => ({ ...row, name: index === 5 ? 'sql.exec brokered' : row.capability })))(
  'a call that reached $name is not answered retryable when its host is lost',
  async ({ capability, grant, use }) => {
    const root = fs.mkdtempSync(path.join(folder, 'ws-'));
    const big = [1, 2, 3].map(() => client.run(toolCall("return 'x'.repeat(900000);", null, {}, { timeoutMs: FAR })));
    // Computes a moment (the large answers go out first), uses the capability, leaves the mark, then computes until the host is lost.
    const source = `const s = Date.now(); while (Date.now() - s < 1000) {} ${use} warden.fs.write('mark.txt', 'x'); for (;;) {}`;
    const paying = client.run(toolCall(source, { url: `http://${webHost()}/pay` }, grant(root), { timeoutMs: FAR }));
    const pid = client.pid!;
    expect(spinUntil(() => fs.existsSync(path.join(root, 'mark.txt')))).toBe(true);
    process.kill(pid, 'SIGKILL');
    const response = await paying;
    await Promise.all(big);
    expect(response).toMatchObject({ ok: false, error: { code: 'ERR_SANDBOX_CRASHED' } });
    expect({ retryable: response.ok ? undefined : response.error.retryable, message: response.ok ? '' : response.error.message }).toEqual({
      retryable: undefined,
      message: expect.stringContaining(capability),
    });
  },
  180_000,
);
