/**
 * Open finding (s14, atk14; undoref), low: an MCP call that timed out on an HTTP server which
 * never answered is reported undone (`done`, `notUndoable: []`) while the server completes it after
 * its compensation ran: the class of s13's `unconfirmed-stop-not-undone` (test/mcp/), reached by the
 * server's `timeout` instead of a cancel.
 *
 * s13 marks a call whose stop was not confirmed (`stopUnconfirmed`, activities/call-outcome.ts) only
 * when its activity was cancelled (`McpConnection.callTool` -> `#stopCancelled` -> `session-closed`).
 * At the server's `timeout` the MCP SDK sends `notifications/cancelled` and gives up on the request,
 * Warden fails the call "Request timed out" (retryable, `asMcpError`), and neither waits for an
 * answer nor ends the session: the server is as free to complete the call as a cancelled one, but
 * the failure carries no `stopUnconfirmed`, so the task lists nothing as possibly not undone and
 * reports the compensation `done`.
 *
 * Here: the server books only once it has been told to unbook (the deterministic stand-in for
 * "finished after Warden's undo", as in the s13 test); `timeout: 2s`; the three attempts time out,
 * the script ends, the task fails and its saga runs `unbook`; the pending bookings then complete.
 *
 * Fix: treat a timed-out MCP call as a stopped one: end the session when the server does not
 * answer the cancellation (as `#stopCancelled` does) and carry `stopUnconfirmed` in the failure, so
 * recovery lists the call as possibly not undone (`markUnconfirmed`).
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server on loopback.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import { until } from '../../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

const events: string[] = [];
const bookings = new Set<string>();
let unbooked!: () => void;
const unbookArrived = new Promise<void>((resolve) => (unbooked = resolve));

async function startBookingServer(): Promise<HttpServer> {
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { CallToolRequestSchema, ListToolsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  const server = createServer((req, res) => {
    if (req.method === 'DELETE') events.push('DELETE');
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (transport === undefined) {
      const fresh: InstanceType<typeof StreamableHTTPServerTransport> = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, fresh) });
      const mcp = new Server({ name: 'late-booker', version: '1.0.0' }, { capabilities: { tools: {} } });
      mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
        tools: [
          { name: 'book', description: 'Books a seat.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
          { name: 'unbook', description: 'Cancels a booking.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
        ],
      }));
      mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
        const seat = String((request.params.arguments as { seat?: unknown } | undefined)?.seat);
        if (request.params.name === 'unbook') {
          events.push('unbook');
          const had = bookings.delete(seat);
          unbooked();
          return { content: [{ type: 'text' as const, text: had ? `unbooked ${seat}` : `no booking for ${seat}` }] };
        }
        events.push('book');
        await unbookArrived;
        bookings.add(seat);
        events.push('booked');
        return { content: [{ type: 'text' as const, text: `booked ${seat}` }] };
      });
      void mcp.connect(fresh);
      transport = fresh;
    }
    void transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

let http: HttpServer;
let env: WardenTestEnv;
beforeAll(async () => {
  http = await startBookingServer();
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => {
  await env?.close();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
});

it('a timed-out remote call whose server never answered is reported possibly not undone', async () => {
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`;
  const workspace = await mkdtemp(join(tmpdir(), 'warden-timed-out-booking-'));
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'book seat 12A',
      policyPacks: [],
      // One call, then the script runs out: the task fails and its saga runs.
      agent: { name: 'booker', model: { driver: 'scripted', script: [{ tool: 'late.book', args: { seat: '12A' } }] } },
      tools: { mcp: { late: { url, timeout: '2s', tools: { book: { compensate: { tool: 'late.unbook', args: { seat: '/args/seat' } } } } } } },
      grants: { tools: ['late.book', 'late.unbook'] },
      resources: { workspace },
      limits: { toolTimeout: '120s' },
    },
    'timed-out-booking.yaml',
    REPO_ROOT,
  );
  const handle = await env.start(task);
  const result = await followAgentTask(handle);
  await until(() => events.includes('booked'), 'the server completed the booking');
  expect(result.status).toBe('failed');
  // The compensation ran before the booking completed: the seat is booked.
  expect(events.indexOf('unbook')).toBeLessThan(events.indexOf('booked'));
  expect([...bookings]).toEqual(['12A']);
  const undoneBooking = (result.recovery?.rolledBack ?? []).filter((r) => r.forTool === 'late.book' && r.status === 'done');
  const flagged = (result.recovery?.notUndoable ?? []).some((note) => note.includes('late.book'));
  expect({ reportedUndone: undoneBooking.length > 0, flaggedAsPossiblyNotUndone: flagged }).toEqual({ reportedUndone: false, flaggedAsPossiblyNotUndone: true });
}, 300_000);
