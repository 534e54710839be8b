/**
 * Open finding (s12, atk12): cancelling one task's call kills the sandbox host every task of the
 * worker shares, and every other call in flight there fails ERR_SANDBOX_CRASHED, effects and all.
 *
 * One worker has one SandboxClient, one host process, and runs every task's isolate calls in it
 * concurrently. Since h/cancelall a cancelled call whose host cannot answer within the cancel grace
 * (2 s) has that host killed (`#onCancelGrace` -> `#discardHost`, sandbox/sandbox-client.ts), and
 * `#onHostGone` answers *every* call pending on the host ERR_SANDBOX_CRASHED, not only the
 * cancelled one. A host cannot answer while a capability call holds its main thread: a SQLite
 * statement that does not end (`sql.exec` is synchronous, better-sqlite3), which any agent
 * granted a database can write. So one task's agent runs such a statement, its task is killed,
 * cancelled or reaches its deadline, and another task's call on the same worker fails:
 *
 * - a call sent while the statement runs (`return "b"`, no effect) is answered ERR_SANDBOX_CRASHED
 *   instead of running (the client could have sent it to the replacement host);
 * - a call whose effect already happened (an `http.fetch` POST the server has processed and
 *   answered while the host was blocked) is answered ERR_SANDBOX_CRASHED: the payment was made,
 *   the other task's step says the tool crashed (`ToolError`, non-retryable at the activity
 *   boundary), its agent is free to pay again, and no undo is registered for an effect Warden
 *   reports as not having happened.
 *
 * Same class, older: a call that overruns its timeout in such a statement (`#onDeadline`) kills the
 * host the same way. Real parts: a real SandboxClient and host, a real SQLite file, a loopback
 * HTTP server. No timing assertion: each step waits for what it needs (the journal, the POST).
 *
 * Suggested fix: a call whose host is killed for another call's sake is not that call's failure:
 * run SQL statements off the host's main thread (a worker thread per statement, interruptible),
 * or one host per task (or per cancellable call); at least answer the bystanders with a distinct,
 * retryable code when nothing of theirs reached a capability, and report an effect that did.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { until } from '../support/run-tool-watch';
import { codeOf, makeTempDir, toolCall } from './sandbox-test-kit';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const TIMEOUT_MS = 60_000;

let client: SandboxClient;
let folder: string;
/** A payments endpoint: records each POST, answers when the test says so. */
let payments: Server;
const paid: { body: string; res: ServerResponse }[] = [];

beforeAll(async () => {
  folder = makeTempDir('cancel-bystander');
  payments = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => paid.push({ body, res }));
  });
  await new Promise<void>((resolve) => payments.listen(0, '127.0.0.1', resolve));
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client?.close();
  payments?.closeAllConnections();
  await new Promise((resolve) => payments?.close(resolve));
  fs.rmSync(folder, { recursive: true, force: true });
});

const paymentsHost = () => `127.0.0.1:${(payments.address() as AddressInfo).port}`;

/**
 * Task A's call: a statement that holds its SQL process, started with `signal`; resolves once it
 * runs, with its answer to come. `others`: calls in flight that must not be answered meanwhile
 * (the wait fails at once, naming the answer, if one is, or if the statement's own call is).
 */
async function startStatement(signal: AbortSignal, others: Record<string, Promise<unknown>> = {}): Promise<{ answer: ReturnType<SandboxClient['run']> }> {
  const file = path.join(folder, `shop-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);');
  db.close();
  const grant: CapabilityGrant = { sql: { databases: { shop: file }, query: true, exec: true } };
  const sql = "INSERT INTO items (name) SELECT 'x' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x = 1 OR x = 1000000000000000";
  const answer = client.run(toolCall(builtinTools()['sql.exec'].source, { database: 'shop', sql }, grant, { timeoutMs: TIMEOUT_MS }), { signal });
  await until(() => fs.existsSync(`${file}-journal`), 'the statement runs', { "the statement's call": answer, ...others });
  return { answer };
}

it('a call of another task, sent while the cancelled statement runs, is answered with its own result', async () => {
  const cancel = new AbortController();
  const { answer: a } = await startStatement(cancel.signal);
  const b = client.run(toolCall('return "b";'));
  cancel.abort();
  expect(codeOf(await a)).toBe('ERR_TOOL_CANCELLED');
  expect(codeOf(await b)).toBe('ok: "b"');
}, 180_000);

it('a call of another task whose payment was made is not answered ERR_SANDBOX_CRASHED', async () => {
  const before = paid.length;
  const grant: CapabilityGrant = { http: { allowedHosts: [paymentsHost()] } };
  // Task B pays: its POST reaches the server, which holds the answer for now.
  const b = client.run(
    toolCall("const r = await warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' }); return r.status;", { url: `http://${paymentsHost()}/pay` }, grant, { timeoutMs: TIMEOUT_MS }),
  );
  await until(() => paid.length > before, 'the payment arrived', { "the payment's call": b });
  // Task A's statement takes the host's main thread; the server then confirms B's payment.
  const cancel = new AbortController();
  const { answer: a } = await startStatement(cancel.signal, { "the payment's call": b });
  paid[before]!.res.end('paid');
  cancel.abort();
  expect(codeOf(await a)).toBe('ERR_TOOL_CANCELLED');
  expect(paid.slice(before).map((p) => p.body)).toEqual(['pay 100 to bob']);
  // The payment happened: B's call must not report that its tool crashed.
  expect(codeOf(await b)).not.toBe('ERR_SANDBOX_CRASHED');
}, 180_000);
