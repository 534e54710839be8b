/**
 * Regression (s14, atk14; was test/attacks/open/retried-call-cancelled-in-backoff-not-undone.test.ts,
 * medium): a tool call whose first attempt ran, and failed in a way its activity retries, then was
 * cancelled while it waited for its next attempt, read "cancelled before it ran" and registered no
 * undo: its effect was never undone, and the task said nothing of it.
 *
 * `callOutcomeOf` (workflows/tool-step.ts, patch `warden-undo-what-ran`) took a cancelled activity
 * whose failure records no start (`startedEventId` 0) for a call that never ran. But Temporal
 * records no start for an activity between two attempts: a cancel that lands in that backoff is
 * recorded `ActivityTaskCanceled` with `startedEventId` 0 and the server's own details
 * (`ACTIVITY_ID_NOT_STARTED`, as for a cancel before any attempt), however much the earlier
 * attempts did. Now only the activity's own `notRun` (its first attempt, before its tool started,
 * activities/call-outcome.ts) reads not run (patch `warden-not-run-vouched`); any other failure,
 * the server's cancel with no start included, is taken to have run, and its undo registered.
 *
 * Here: an HTTP MCP server's `book` books the seat and never answers; the server's `timeout` (3 s)
 * fails the call "Request timed out", retryable, so `runTool` waits 1 s for its second attempt; the
 * task is cancelled once the activity is seen waiting for that attempt (its pending attempt 2, not
 * started, `describe()`). On the old code the step read `executed: false`, "cancelled before it
 * ran", `unbook` never ran and the seat stayed booked.
 *
 * The case needs the cancel to land before a second attempt started (the server saw one `book`):
 * it is sent within the 1 s backoff (the activity's retry policy), which a loaded machine can miss.
 * A run that missed it (a second attempt ran: not the case under test) is run again, on a fresh
 * server, up to {@link TRIES} times: the window is the product's, so the test waits for a run that
 * hit it rather than failing on how fast the machine was.
 *
 * Real parts: a real Temporal server and worker, a real streamable-HTTP MCP server on loopback,
 * the workflow handle's cancel (`warden cancel`'s path).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { startBookingServer, type BookingServer } from '../support/booking-mcp-server';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

/** Runs of the case at most, until one whose cancel landed in the backoff. */
const TRIES = 5;

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => {
  await env?.close();
});

/** One run of the case on a fresh booking server: what the server saw, and how the task ended. */
async function bookThenCancelInBackoff(): Promise<{ events: string[]; bookings: string[]; result: Awaited<ReturnType<typeof followAgentTask>> }> {
  // The first booking is made at once and never answered (its caller times out); later ones are answered.
  const booker: BookingServer = await startBookingServer((n, book) => {
    book();
    return n === 1 ? new Promise(() => undefined) : Promise.resolve();
  });
  try {
    return { result: await runCase(booker.url), events: booker.events, bookings: [...booker.bookings] };
  } finally {
    await booker.close();
  }
}

/** Books through the task, and cancels it once the call waits for its second attempt. */
async function runCase(url: string): Promise<Awaited<ReturnType<typeof followAgentTask>>> {
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
  // Cancelled once the first attempt failed and the activity waits for its second (scheduled, not started).
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    // 1: PENDING_ACTIVITY_STATE_SCHEDULED. A second attempt seen already started is a missed
    // window: cancelled all the same, and the run is tried again if it booked twice.
    if (pending.some((a) => (a.attempt ?? 0) >= 2)) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await handle.cancel();
  return followAgentTask(handle);
}

it('a call whose first attempt booked, cancelled while waiting for its retry, is undone', async () => {
  let run = await bookThenCancelInBackoff();
  for (let tried = 1; tried < TRIES && run.events.filter((e) => e === 'book').length > 1; tried += 1) run = await bookThenCancelInBackoff();
  const { events, bookings, result } = run;
  // Precondition: the cancel landed in the backoff, before a second attempt.
  expect(events.filter((e) => e === 'book')).toHaveLength(1);
  expect(result.status).toBe('cancelled');
  // The first attempt booked 12A: the task must undo it, or at least say it may not have.
  const undone = (result.recovery?.rolledBack ?? []).some((r) => r.forTool === 'slow.book' && r.status === 'done');
  const flagged = (result.recovery?.notUndoable ?? []).some((note) => note.includes('slow.book'));
  expect({ step: result.steps[0]?.error?.message, executed: result.steps[0]?.executed, booked: bookings, undoneOrFlagged: undone || flagged }).toEqual({
    step: expect.not.stringContaining('before it ran'),
    executed: true,
    booked: [],
    undoneOrFlagged: true,
  });
}, 900_000);
