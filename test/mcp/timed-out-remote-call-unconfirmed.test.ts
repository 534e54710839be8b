/**
 * Regression (s14, atk14; undoref; was test/attacks/open/timed-out-remote-call-reported-undone.test.ts,
 * low): an MCP call that timed out on an HTTP server which never answered was reported undone
 * (`done`, `notUndoable: []`) while the server completed it after its compensation ran: the class
 * of s13's `unconfirmed-stop-not-undone` (beside this file), reached by the server's `timeout`
 * instead of a cancel.
 *
 * s13 marked a call whose stop was not confirmed (`stopUnconfirmed`, activities/call-outcome.ts)
 * only when its activity was cancelled (`McpConnection.callTool` -> `#stopCancelled` ->
 * `session-closed`). At the server's `timeout` the MCP SDK sends `notifications/cancelled` and gives
 * up on the request, and Warden failed the call "Request timed out" (retryable) without waiting for
 * an answer or ending the session. Now every call that ends with its request sent and not answered
 * (timed out, its session closed under it) is stopped as a cancelled one, and an HTTP server's
 * `session-closed` sets `stopUnconfirmed`, so recovery lists the call (`markUnconfirmed`).
 *
 * Here: the server books only once it has been told to unbook (the deterministic stand-in for
 * "finished after Warden's undo", as in the s13 test); `timeout: 2s`; the three attempts time out,
 * the script ends, the task fails and its saga runs `unbook`; the pending bookings then complete.
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server on loopback.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { startBookingServer, type BookingServer } from '../support/booking-mcp-server';
import { until } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let booker: BookingServer;
let env: WardenTestEnv;
beforeAll(async () => {
  // Books only once told to unbook: "finished after Warden's undo".
  booker = await startBookingServer(() => booker.unbookArrived);
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => {
  await env?.close();
  await booker?.close();
});

it('a timed-out remote call whose server never answered is reported possibly not undone', async () => {
  const { url, events, bookings } = booker;
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
