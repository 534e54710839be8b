/**
 * Open finding (s13, atk13): a cancelled call on a remote (HTTP) MCP server is reported undone
 * when its compensating tool ran before the server finished the call.
 *
 * Since s12 a cancelled MCP call is stopped on Warden's side: `notifications/cancelled`, then, when
 * the server has not answered within the 2 s grace, its HTTP session is ended (DELETE), and the
 * activity reports cancelled (mcp/mcp-connection.ts). The undo is registered (`ranUnfinished`,
 * workflows/tool-step.ts) and the saga runs the declared compensating tool on a new session. But
 * MCP has no acknowledgment of a cancellation: a remote server that does not honour it (the spec
 * only says it SHOULD stop) still completes the call after that, and Warden's compensation then
 * ran before the effect it undoes. The task's recovery says `done` for that compensation and lists
 * nothing under `notUndoable`, where an `http.fetch` cut short is reported as possibly not undone.
 *
 * The server here books only once it has been told to unbook (a deterministic stand-in for "the
 * server finished after Warden's undo"): the booking stays, and the recovery says it was undone.
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server (the SDK's
 * server transport on loopback), `warden cancel`'s path (the workflow handle's cancel).
 *
 * Suggested fix: a call whose server never answered (cancelled or ended while in flight) is
 * reported in `recovery.notUndoable` as "may have completed after its compensation ran" (its
 * compensation still runs), as for an HTTP request that may have been sent; a server declaring
 * an idempotent compensation keyed by `compensationId` can then reconcile.
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

/** A booking server that ignores cancellation and completes a booking only after it was told to unbook. */
const events: string[] = [];
const bookings = new Set<string>();
let unbooked!: () => void;
const unbookArrived = new Promise<void>((resolve) => (unbooked = resolve));

/** The server, on loopback (the MCP SDK is loaded as mcp-test-kit.ts loads it). */
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
});
afterAll(async () => {
  await env?.close();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
});

it('a cancelled remote call whose server completed it after the compensation is not reported undone', async () => {
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`;
  const workspace = await mkdtemp(join(tmpdir(), 'warden-late-booking-'));
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'book seat 12A',
      policyPacks: [],
      agent: { name: 'booker', model: { driver: 'scripted', script: [{ tool: 'late.book', args: { seat: '12A' } }, { final: 'booked' }] } },
      tools: { mcp: { late: { url, tools: { book: { compensate: { tool: 'late.unbook', args: { seat: '/args/seat' } } } } } } },
      grants: { tools: ['late.book', 'late.unbook'] },
      resources: { workspace },
      limits: { toolTimeout: '120s' },
    },
    'late-booking.yaml',
    REPO_ROOT,
  );
  const handle = await env.start(task);
  await until(() => events.includes('book'), 'the server received the booking');
  await handle.cancel();
  const result = await followAgentTask(handle);
  await until(() => events.includes('booked'), 'the server completed the booking');
  expect(result.status).toBe('cancelled');
  // The compensation ran before the booking completed: the seat is booked.
  expect(events.indexOf('unbook')).toBeLessThan(events.indexOf('booked'));
  expect([...bookings]).toEqual(['12A']);
  // Warden must not report that booking as undone.
  const undoneBooking = (result.recovery?.rolledBack ?? []).filter((r) => r.forTool === 'late.book' && r.status === 'done');
  const flagged = (result.recovery?.notUndoable ?? []).some((note) => note.includes('late.book'));
  expect({ reportedUndone: undoneBooking.length > 0, flaggedAsPossiblyNotUndone: flagged }).toEqual({ reportedUndone: false, flaggedAsPossiblyNotUndone: true });
});
