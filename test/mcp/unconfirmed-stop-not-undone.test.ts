/**
 * Regression (s13, was test/attacks/open/remote-call-undone-before-it-ended.test.ts): a cancelled
 * call on a remote (HTTP) MCP server was reported undone when its compensating tool ran before the
 * server finished the call.
 *
 * A cancelled MCP call is stopped on Warden's side: `notifications/cancelled`, then, when the
 * server has not answered within the 2 s grace, its HTTP session is ended (DELETE), and the
 * activity reports cancelled (mcp/mcp-connection.ts). MCP has no acknowledgment of a
 * cancellation: a remote server that does not honour it still completes the call after that, and
 * Warden's compensation then ran before the effect it undoes. The task's recovery said `done` for
 * that compensation and listed nothing under `notUndoable`.
 *
 * Now the cancelled activity's failure says its stop was not confirmed (`stopUnconfirmed` in the
 * CancelledFailure's details, activities/call-outcome.ts) and the workflow lists the call in
 * `recovery.notUndoable` as possibly completed after its compensation ran (patch
 * `warden-undo-what-ran`, tool-step.ts); the compensation still runs. Fails on the old code
 * (`notUndoable: []`).
 *
 * The server here books only once it has been told to unbook (a deterministic stand-in for "the
 * server finished after Warden's undo").
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server (the SDK's
 * server transport on loopback), `warden cancel`'s path (the workflow handle's cancel).
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
  // Ignores cancellation and books only once told to unbook.
  booker = await startBookingServer(() => booker.unbookArrived);
  env = await startWardenTestEnv();
});
afterAll(async () => {
  await env?.close();
  await booker?.close();
});

it('a cancelled remote call whose server never answered the cancellation is reported possibly not undone', async () => {
  const { url, events, bookings } = booker;
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
