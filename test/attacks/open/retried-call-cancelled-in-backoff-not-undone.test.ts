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
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import { startBookingServer, type BookingServer } from '../../support/booking-mcp-server';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

let booker: BookingServer;
let env: WardenTestEnv;
beforeAll(async () => {
  // The first booking is made at once and never answered (its caller times out); later ones are answered.
  booker = await startBookingServer((n, book) => {
    book();
    return n === 1 ? new Promise(() => undefined) : Promise.resolve();
  });
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => {
  await env?.close();
  await booker?.close();
});

it('a call whose first attempt booked, cancelled while waiting for its retry, is undone', async () => {
  const { url, events, bookings } = booker;
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
  await booker.cancelledArrived;
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
