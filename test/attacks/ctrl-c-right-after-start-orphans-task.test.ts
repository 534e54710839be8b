/**
 * Regression (issue 17; was test/attacks/open/): a signal in the moments around the task's start
 * killed `warden run` outright (Node's default action) and left the task it had just started
 * RUNNING, not cancel-requested. Its own worker died with it, so the task waited on the queue and
 * the next worker there (the next `warden run`, a `warden worker`) ran it forward: the effects
 * the user pressed Ctrl-C to stop still happened, nothing was compensated, against the README's
 * "Ctrl-C cancels it and undoes its effects".
 *
 * Why: `process.on('SIGINT', ...)` was installed only after `startAgentTask` returned, the start
 * line was logged and `await import('../format-summary.js')` resolved; the start RPC in flight
 * was a window too (the server creates the workflow before this process sees the answer). SIGTERM
 * and SIGHUP had no handler at any point (a CI timeout, `kill`, a closed terminal).
 *
 * Now (cli/commands/run.ts) SIGINT, SIGTERM and SIGHUP are handled from before anything starts:
 * before the start request, a signal starts nothing; while the request is in flight, the
 * workflow id (chosen by `run`) is cancelled once the request settled; after, as before. The
 * exit code is 128 + the signal's number (130, 143, 129), never death by the signal; a second
 * signal stops waiting for the compensations and leaves the task cancel-requested.
 *
 * Real parts: the `warden` CLI as a child process with its own worker (--worker), the test
 * Temporal server, a copy of examples/hello.yaml.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { connectClient } from '../../temporal/connect';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const dir = mkdtempSync(join(tmpdir(), 'warden-ctrl-c-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Whether the task's history records a cancel request. A request the server accepted while a
 * workflow task was in flight (the worker shut down with it) is buffered and written to the
 * history only once that workflow task ends, completed or timed out (10 s): so it is waited for,
 * up to a minute, while the task is still running.
 */
async function cancelRequestRecorded(handle: WorkflowHandle): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    if (events.some((e) => e.workflowExecutionCancelRequestedEventAttributes != null)) return true;
    const running = (await handle.describe()).status.name === 'RUNNING';
    if (!running || Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** What the task must look like afterwards: never started, or asked to cancel (or already cancelled). */
type Expected = 'not started' | 'cancelled' | 'not started or cancelled';
const EXIT_CODE = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

it.each([
  // Before the start request: nothing may be started.
  ['SIGTERM while the worker is being built', 'run: telemetry and custody ledger open', 'SIGTERM', 1, 'not started'],
  // The start request follows within milliseconds: the signal lands before it or while it is in flight.
  ['Ctrl-C once the worker was created', 'run: worker created', 'SIGINT', 1, 'not started or cancelled'],
  // The start request is in flight: the id is cancelled once the request settled.
  ['Ctrl-C while the start request is in flight', 'run: start requested', 'SIGINT', 1, 'cancelled'],
  // The task exists; the handler used to be installed only after the summary formatter loaded.
  ['Ctrl-C right after the task started', 'run: workflow started', 'SIGINT', 1, 'cancelled'],
  // A process manager's or CI timeout's stop, a closed terminal: handled as Ctrl-C.
  ['SIGTERM after the first step', 'run: first step reported', 'SIGTERM', 1, 'cancelled'],
  ['SIGHUP after the first step', 'run: first step reported', 'SIGHUP', 1, 'cancelled'],
  // Twice: stop waiting for the compensations; the task stays cancel-requested.
  ['Ctrl-C twice after the first step', 'run: first step reported', 'SIGINT', 2, 'cancelled'],
  ['Ctrl-C twice before the start', 'run: telemetry and custody ledger open', 'SIGINT', 2, 'not started'],
] as const)('%s leaves no task running without a cancel request', async (_when, phase, signal, times, expected: Expected) => {
  const work = mkdtempSync(join(dir, 'run-'));
  cpSync(join(REPO_ROOT, 'examples', 'hello.yaml'), join(work, 'hello.yaml'));
  cpSync(join(REPO_ROOT, 'examples', 'workspace'), join(work, 'workspace'), { recursive: true });
  const workflowId = `ctrl-c-${randomUUID()}`;
  const taskQueue = `warden-ctrl-c-${randomUUID()}`;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', '--worker', '--task-queue', taskQueue, '--workflow-id', workflowId, join(work, 'hello.yaml')], {
    cwd: work,
    env: wardenProcessEnv(join(work, 'state'), { WARDEN_TIMING: '1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let sent = 0;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    // At once, in the same turn the line arrives: as a user's Ctrl-C would land.
    if (sent === 0 && stderr.includes(phase)) {
      sent = 1;
      child.kill(signal);
    }
    // The second once the first was taken (two signals sent at once may arrive as one).
    if (sent === 1 && times === 2 && stderr.includes(`warden: ${signal}: `)) {
      sent = 2;
      child.kill(signal);
    }
  });
  child.stdout.resume();
  const exited = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  expect(sent, stderr).toBe(times);

  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    const handle = client.workflow.getHandle(workflowId);
    const status = await handle.describe().then((d) => d.status.name, () => 'NOT_STARTED');
    const cancelRequested = status === 'NOT_STARTED' ? false : await cancelRequestRecorded(handle);
    await handle.terminate('test over').catch(() => undefined);
    const seen = status === 'NOT_STARTED' ? 'not started' : cancelRequested || status === 'CANCELLED' ? 'cancelled' : `${status}, no cancel request`;
    // Exited by itself with 128 + the signal's number, not killed by the signal.
    expect({ seen, exited }, stderr).toEqual({ seen: expected === 'not started or cancelled' ? expect.stringMatching(/^(not started|cancelled)$/) : expected, exited: { code: EXIT_CODE[signal], signal: null } });
  } finally {
    await connection.close();
  }
}, 300_000);
