/**
 * A cancelled MCP call stops before it is reported cancelled (mcp/mcp-connection.ts `callTool`):
 * MCP has no acknowledgment of `notifications/cancelled`, so a server that has not answered the
 * request within the cancel grace has its session ended: a stdio server's sandbox is killed with
 * its whole process tree (here the child process its tool waits for), an HTTP server's session is
 * terminated (DELETE) and its streams closed, and the call says which (`McpCancelOutcome`). The
 * pool then opens the server again for the next call.
 *
 * Before the fix the call was rejected at once on the client's side and the server went on: the
 * stdio tool's child ran on, the connection stayed open, the HTTP session was never ended.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CancelledFailure } from '@temporalio/common';
import { McpConnectionPool } from '../../executors/mcp-connection-pool';
import type { McpCancelOutcome } from '../../mcp/mcp-connection';
import { McpHttpServerSchema, McpStdioServerSchema, type McpServer } from '../../mcp/mcp-server-config';
import { processesWith, until } from '../support/run-tool-watch';
import { FIXTURES, startDeafHttpMcpServer, testStartContext, textOf, type DeafHttpMcpServer } from './mcp-test-kit';

let http: DeafHttpMcpServer;
let pool: McpConnectionPool;
beforeAll(async () => {
  http = await startDeafHttpMcpServer();
  pool = new McpConnectionPool();
});
afterAll(async () => {
  await pool?.close();
  await http?.stop();
});

interface Row {
  config: () => McpServer;
  /** Resolves once the tool is at work. */
  working: (marker: string) => Promise<void>;
  outcome: McpCancelOutcome;
  /** Checks, once the call was rejected, that its work has stopped, or that the session was ended. */
  stopped: (marker: string) => void;
}

const ROWS: Record<string, Row> = {
  'stdio server that ignores the cancellation': {
    config: () => McpStdioServerSchema.parse({ command: 'node', args: [path.join(FIXTURES, 'cancel-deaf-server.mjs')], workspace: 'none' }),
    working: (marker) => until(() => processesWith(marker).length > 0, 'the tool started its job'),
    outcome: 'server-killed',
    // The tool's child, in the server's sandbox, is dead when the call is rejected.
    stopped: (marker) => expect(processesWith(marker)).toEqual([]),
  },
  'HTTP server that ignores the cancellation': {
    config: () => McpHttpServerSchema.parse({ url: http.url }),
    working: () => http.waiting,
    outcome: 'session-closed',
    // Warden cannot stop what the server does; it ended the session (the server saw the cancellation, then DELETE).
    stopped: () => expect(http.events.filter((e) => e !== 'session closed')).toEqual(['call wait', 'cancelled', 'DELETE']),
  },
};

it.each(Object.keys(ROWS))('a cancelled call to the %s ends its session before it is rejected; the pool opens a new one', async (name) => {
  const row = ROWS[name]!;
  const session = `cancel-${randomUUID()}`;
  const config = row.config();
  const deadlineAt = Date.now() + 600_000;
  const connection = await pool.connection(session, 'deaf', config, testStartContext(), deadlineAt);
  const marker = `warden-mcp-cancel-${randomUUID()}`;
  const controller = new AbortController();
  const reason = new CancelledFailure('the activity was cancelled');
  const outcomes: McpCancelOutcome[] = [];
  const call = connection.callTool('wait', { marker }, { pin: connection.listing.hash, timeoutMs: 300_000, signal: controller.signal, onCancelled: (o) => outcomes.push(o) });
  const early = await Promise.race([row.working(marker).then(() => 'working'), call.then(() => 'answered', (error: unknown) => String(error))]);
  expect(early).toBe('working');
  controller.abort(reason);
  await expect(call).rejects.toBe(reason);
  row.stopped(marker);
  expect(outcomes).toEqual([row.outcome]);
  expect(connection.open).toBe(false);
  // The pool treats the session as gone and opens the server again.
  const again = await pool.connection(session, 'deaf', config, testStartContext(), deadlineAt);
  expect(again).not.toBe(connection);
  expect(textOf(await again.callTool('ping', {}, { pin: again.listing.hash, timeoutMs: 30_000 }))).toBe('pong');
  await pool.closeSession(session);
}, 120_000);

it('a call cancelled before its request was sent leaves the session open', async () => {
  const session = `cancel-${randomUUID()}`;
  const connection = await pool.connection(session, 'deaf', ROWS['stdio server that ignores the cancellation']!.config(), testStartContext(), Date.now() + 600_000);
  const controller = new AbortController();
  controller.abort(new CancelledFailure('cancelled'));
  const outcomes: McpCancelOutcome[] = [];
  await expect(connection.callTool('wait', { marker: 'never' }, { pin: connection.listing.hash, timeoutMs: 30_000, signal: controller.signal, onCancelled: (o) => outcomes.push(o) })).rejects.toBeInstanceOf(CancelledFailure);
  expect(outcomes).toEqual(['not-sent']);
  expect(connection.open).toBe(true);
  expect(textOf(await connection.callTool('ping', {}, { pin: connection.listing.hash, timeoutMs: 30_000 }))).toBe('pong');
  await pool.closeSession(session);
}, 120_000);

/**
 * The class of the cancel (s14, atk14): a call that ends otherwise without its server's answer, its
 * request sent, is stopped the same way and says how. Timed out: the MCP SDK sends
 * `notifications/cancelled` and gives up, and the server may complete the call later. Its session
 * closed under it (the pool's close at the grant's expiry or the deadline). Before, neither ended
 * the session nor told `onCancelled`, so a timed-out HTTP call carried no `stopUnconfirmed`.
 */
const ENDINGS: Record<string, { timeoutMs: number; end: (connection: { close(): Promise<void> }) => void }> = {
  'timed out': { timeoutMs: 1500, end: () => undefined },
  'its session closed under it': { timeoutMs: 300_000, end: (connection) => void connection.close() },
};
it.each(Object.keys(ROWS).flatMap((name) => Object.keys(ENDINGS).map((ending) => [name, ending] as const)))('a call to the %s that %s ends its session and says how', async (name, ending) => {
  const row = ROWS[name]!;
  const way = ENDINGS[ending]!;
  const session = `unanswered-${randomUUID()}`;
  const connection = await pool.connection(session, 'deaf', row.config(), testStartContext(), Date.now() + 600_000);
  const marker = `warden-mcp-unanswered-${randomUUID()}`;
  const outcomes: McpCancelOutcome[] = [];
  const waits = () => http.events.filter((e) => e === 'call wait').length;
  const before = waits();
  const call = connection.callTool('wait', { marker }, { pin: connection.listing.hash, timeoutMs: way.timeoutMs, onCancelled: (o) => outcomes.push(o) });
  const settled = call.then(() => 'answered', () => 'failed');
  // This call at work (the HTTP server's `waiting` resolved at its first call only).
  await (row.outcome === 'session-closed' ? until(() => waits() > before, 'the server got the call') : row.working(marker));
  way.end(connection);
  expect(await settled).toBe('failed');
  expect(outcomes).toEqual([row.outcome]);
  expect(connection.open).toBe(false);
  await pool.closeSession(session);
}, 120_000);
