/**
 * A call whose signal aborts (its activity was cancelled: a kill, a block, a cancel, the
 * deadline) is stopped before the client answers it, whatever it is doing: the host disposes of
 * the call's isolate and aborts its capability requests in flight, and answers ERR_TOOL_CANCELLED;
 * a host that cannot answer (inside a synchronous SQLite statement) is killed after the cancel
 * grace, and the call is answered only once it has exited, its statement never committed.
 *
 * Before the fix the client took no signal: each of these calls ran to its own timeout (30 s here)
 * and ended ERR_SANDBOX_TIMEOUT, the fetch's socket open and the writes going on meanwhile.
 * Each row starts the call, waits until the tool is seen doing its work (no timing), aborts, and
 * checks what the answer says and that the work has stopped; the client then runs the next call.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { until } from '../support/run-tool-watch';
import { codeOf, makeTempDir, outputOf, startLoopbackServer, toolCall, type LoopbackServer } from './sandbox-test-kit';

/** Longer than any row takes once cancelled: a call that is not stopped ends ERR_SANDBOX_TIMEOUT. */
const TIMEOUT_MS = 30_000;

let client: SandboxClient;
let folder: string;
let tarpit: LoopbackServer;
/** Sockets the tarpit holds, and whether each has closed. */
const held: { closed: Promise<void> }[] = [];

beforeAll(async () => {
  folder = makeTempDir('cancel');
  tarpit = await startLoopbackServer((req) => {
    held.push({ closed: new Promise((resolve) => req.socket.once('close', () => resolve())) });
  });
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client?.close();
  await tarpit?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

interface Row {
  /** Starts the call with `signal`. */
  start: (signal: AbortSignal) => ReturnType<SandboxClient['run']>;
  /** True once the tool is seen at work. */
  started: () => boolean;
  /** Checks, after the answer, that the work has stopped. */
  stopped: () => Promise<void>;
  /** Whether the host has to be killed (it cannot read the cancel while the tool blocks it). */
  hostKilled: boolean;
}

const ROWS: Record<string, () => Row> = {
  'a custom tool in a CPU loop': () => {
    const file = path.join(folder, 'spin-started.txt');
    const root = folder;
    return {
      // The tool says it started (fs.write), then spins in the isolate.
      start: (signal) => client.run(toolCall("warden.fs.write('spin-started.txt', 'yes'); for (;;) {}", null, { fs: { root, read: false, write: true, list: false } }, { timeoutMs: TIMEOUT_MS }), { signal }),
      started: () => fs.existsSync(file),
      stopped: async () => undefined,
      hostKilled: false,
    };
  },
  'fs.write in a loop (custom tool)': () => {
    const file = path.join(folder, 'counter.txt');
    const root = folder;
    return {
      start: (signal) => client.run(toolCall("for (let i = 0; ; i++) warden.fs.write('counter.txt', String(i));", null, { fs: { root, read: false, write: true, list: false } }, { timeoutMs: TIMEOUT_MS }), { signal }),
      started: () => fs.existsSync(file),
      stopped: async () => {
        const before = fs.readFileSync(file, 'utf8');
        // A round trip through the host: a loop still running would have written again by now.
        expect(outputOf(await client.run(toolCall('return 1;')))).toBe(1);
        expect(fs.readFileSync(file, 'utf8')).toBe(before);
      },
      hostKilled: false,
    };
  },
  'http.fetch held open by the server': () => {
    const before = held.length;
    const grant: CapabilityGrant = { http: { allowedHosts: [`127.0.0.1:${tarpit.port}`] } };
    return {
      start: (signal) => client.run(toolCall(builtinTools()['http.fetch'].source, { url: `http://127.0.0.1:${tarpit.port}/report` }, grant, { timeoutMs: TIMEOUT_MS }), { signal }),
      started: () => held.length > before,
      // The request's socket is closed (the server sees it go).
      stopped: () => held[before]!.closed,
      hostKilled: false,
    };
  },
  'sql.exec of a statement that does not end': () => {
    const file = path.join(folder, `shop-${held.length}-${Date.now()}.db`);
    const db = new Database(file);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);');
    db.close();
    const grant: CapabilityGrant = { sql: { databases: { shop: file }, query: true, exec: true } };
    // One row inserted at once (its rollback journal appears), then a count that never ends in time.
    const sql = "INSERT INTO items (name) SELECT 'x' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x = 1 OR x = 1000000000000000";
    return {
      start: (signal) => client.run(toolCall(builtinTools()['sql.exec'].source, { database: 'shop', sql }, grant, { timeoutMs: TIMEOUT_MS }), { signal }),
      started: () => fs.existsSync(`${file}-journal`),
      stopped: async () => {
        // Nothing was committed: the row the statement inserted went with its transaction.
        const after = new Database(file, { readonly: true });
        try {
          expect(after.prepare('SELECT count(*) AS n FROM items').get()).toEqual({ n: 0 });
        } finally {
          after.close();
        }
      },
      // Since the SQL processes (s13): the statement's process is killed and the host answers; the host lives.
      hostKilled: false,
    };
  },
};

it.each(Object.keys(ROWS))('a cancelled call is stopped before it is answered: %s', async (name) => {
  const row = ROWS[name]!();
  const kills = client.stats.cancelKills;
  const controller = new AbortController();
  const answer = row.start(controller.signal);
  const early = await Promise.race([until(row.started, `${name} started`).then(() => undefined), answer]);
  expect(early === undefined ? 'started' : codeOf(early)).toBe('started');
  controller.abort();
  const response = await answer;
  expect(codeOf(response)).toBe('ERR_TOOL_CANCELLED');
  await row.stopped();
  expect(client.stats.cancelKills - kills).toBe(row.hostKilled ? 1 : 0);
  // The client serves the next call (on a new host when the old one was killed).
  expect(outputOf(await client.run(toolCall('return "next";')))).toBe('next');
}, 120_000);

it('a call cancelled before it is sent never reaches the host', async () => {
  const controller = new AbortController();
  controller.abort();
  const file = path.join(folder, 'never.txt');
  const response = await client.run(toolCall("warden.fs.write('never.txt', 'ran'); return 1;", null, { fs: { root: folder, read: false, write: true, list: false } }), { signal: controller.signal });
  expect(codeOf(response)).toBe('ERR_TOOL_CANCELLED');
  expect(outputOf(await client.run(toolCall('return 1;')))).toBe(1);
  expect(fs.existsSync(file)).toBe(false);
});
