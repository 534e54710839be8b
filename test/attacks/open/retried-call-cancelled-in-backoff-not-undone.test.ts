/**
 * Open finding (s14, atk14): a tool call whose first attempt ran, and failed in a way its activity
 * retries, then was cancelled while it waited for its next attempt, reads "cancelled before it
 * ran" and registers no undo: its effect is never undone, and the task says nothing of it.
 *
 * `callOutcomeOf` (workflows/tool-step.ts, patch `warden-undo-what-ran`) takes a cancelled
 * activity whose failure records no start (`startedEventId` 0) for a call that never ran. But
 * Temporal records no start for an activity between two attempts: an attempt that failed and is
 * to be retried leaves the activity scheduled, its start cleared, and a cancel that lands in that
 * backoff is recorded `ActivityTaskCanceled` with `startedEventId` 0 at once, however much the
 * earlier attempts did. `notRun` is only ever vouched for on the first attempt
 * (activities/call-outcome.ts); this path skips that check.
 *
 * Here: an HTTP MCP server's `book` books the seat and never answers; the server's `timeout` (3 s)
 * fails the call ERR_MCP_UNAVAILABLE/PROTOCOL "Request timed out", which is retryable
 * (mcp/mcp-connection.ts `asMcpError`), so `runTool` waits 1 s for its second attempt; the task is
 * cancelled as soon as the server is told the first request was given up (`notifications/cancelled`,
 * sent by the MCP SDK at its time-out). The step reads `executed: false`, "cancelled before it
 * ran", the compensating `unbook` never runs and the seat stays booked, with nothing in
 * `recovery.notUndoable`. The same holds for any retryable failure after a tool ran (a dead worker's
 * heartbeat time-out, an infrastructure error after the executor returned) and a cancel or the
 * deadline in the backoff.
 *
 * The test requires that the cancel landed before a second attempt started (the server saw one
 * `book`): it is sent within the 1 s backoff, which a loaded machine could miss; then the test
 * fails on that precondition, not on the finding.
 *
 * Fix: a start of the activity with no record of it is not proof the call never ran. Either count
 * `startedEventId` 0 as not run only when the activity had no earlier attempt (the worker can say so
 * in its heartbeat details, which Temporal copies into the cancellation of an activity in backoff,
 * e.g. heartbeat `{ started: true }` once `toolStarting` has passed, and `callOutcomeOf` reads it),
 * or drop the `startedEventId === 0` rule for activities with retries and keep only the activity's
 * own `notRun` (first attempt).
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server on loopback,
 * the workflow handle's cancel (`warden cancel`'s path).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

const events: string[] = [];
const bookings = new Set<string>();
let firstGivenUp!: () => void;
const firstAttemptGivenUp = new Promise<void>((resolve) => (firstGivenUp = resolve));

/** A booking server: `book` books at once; the first booking is never answered (its caller times out), later ones are. */
async function startBookingServer(): Promise<HttpServer> {
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { CallToolRequestSchema, ListToolsRequestSchema, CancelledNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  const server = createServer((req, res) => {
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (transport === undefined) {
      const fresh: InstanceType<typeof StreamableHTTPServerTransport> = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, fresh) });
      const mcp = new Server({ name: 'slow-booker', version: '1.0.0' }, { capabilities: { tools: {} } });
      mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
        tools: [
          { name: 'book', description: 'Books a seat.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
          { name: 'unbook', description: 'Cancels a booking.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
        ],
      }));
      mcp.setNotificationHandler(CancelledNotificationSchema, async () => {
        events.push('cancelled');
        firstGivenUp();
      });
      mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
        const seat = String((request.params.arguments as { seat?: unknown } | undefined)?.seat);
        if (request.params.name === 'unbook') {
          events.push('unbook');
          bookings.delete(seat);
          return { content: [{ type: 'text' as const, text: `unbooked ${seat}` }] };
        }
        events.push('book');
        bookings.add(seat);
        if (events.filter((e) => e === 'book').length === 1) await new Promise(() => undefined);
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

it('a call whose first attempt booked, cancelled while waiting for its retry, is undone', async () => {
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`;
  const workspace = await mkdtemp(join(tmpdir(), 'warden-retry-backoff-'));
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'book seat 12A',
      policyPacks: [],
      agent: { name: 'booker', model: { driver: 'scripted', script: [{ tool: 'slow.book', args: { seat: '12A' } }, { final: 'booked' }] } },
      tools: { mcp: { slow: { url, timeout: '3s', tools: { book: { compensate: { tool: 'slow.unbook', args: { seat: '/args/seat' } } } } } } },
      grants: { tools: ['slow.book', 'slow.unbook'] },
      resources: { workspace },
      limits: { toolTimeout: '120s' },
    },
    'slow-booking.yaml',
    REPO_ROOT,
  );
  const handle = await env.start(task);
  await firstAttemptGivenUp;
  await handle.cancel();
  const result = await followAgentTask(handle);
  // Precondition: the cancel landed in the backoff, before a second attempt.
  expect(events.filter((e) => e === 'book')).toHaveLength(1);
  expect(result.status).toBe('cancelled');
  // The first attempt booked 12A: the task must undo it, or at least say it may not have.
  const undone = (result.recovery?.rolledBack ?? []).some((r) => r.forTool === 'slow.book' && r.status === 'done');
  const flagged = (result.recovery?.notUndoable ?? []).some((note) => note.includes('slow.book'));
  expect({ step: result.steps[0]?.error?.message, executed: result.steps[0]?.executed, booked: [...bookings], undoneOrFlagged: undone || flagged }).toEqual({
    step: expect.not.stringContaining('before it ran'),
    executed: true,
    booked: [],
    undoneOrFlagged: true,
  });
}, 300_000);
