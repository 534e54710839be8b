/**
 * Attack on the call lease's hand-over of a superseded stdio MCP call (activities/run-tool.ts
 * `executeOutsideIsolate`; guarantee: a call that does not complete leaves no file effects, and
 * where its undo cannot be complete it fails closed naming what it cannot undo, never a silent
 * partial undo: test/attacks/failed-mcp-call-over-large-overlay.test.ts).
 *
 * Before an MCP call the worker keeps the overlay's bytes up to MAX_UPPER_CAPTURE_BYTES (64 MiB);
 * of a larger file only a stamp. A failed call that changed such a file fails ERR_UNDO_FAILED
 * naming it (not retryable: the task fails and is rolled back). A superseded attempt instead
 * records what it can as undo records for the newer attempt and stops with ERR_CALL_SUPERSEDED
 * before the unkept check: the change to the stamped file is written down nowhere. The newer
 * attempt, once the older has ended, undoes the records (nothing of big.bin), measures big.bin
 * with the older attempt's line in it as its own "before", and runs the tool again: big.bin holds
 * both attempts' lines and the call completes. Two runs' effect, silently.
 *
 * Real parts: the real runTool activity twice at once through MockActivityEnvironment (attempt 1
 * cancelled at its next heartbeat while attempt 2 runs), a real stdio MCP server in the OS sandbox
 * (bubblewrap, kernel overlay), a sparse 64 MiB + 1 byte file made by an earlier completed call.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import type { RunToolInput } from '../../activities/run-tool';
import { overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import type { Task } from '../../task/task-schema';
import { attemptDeps, mcpTaskOn, openAttemptWorker, saveTaskGrant, startAttempt, waitUntil as until, type AttemptWorker } from '../support/attempt-overlap-kit';

const FIXTURES = path.join(__dirname, 'fixtures');
const BIG = 64 * 1024 * 1024 + 1;
let w: AttemptWorker;
beforeAll(async () => {
  w = await openAttemptWorker('warden-superseded-unkept-');
}, 120_000);
afterAll(async () => w?.close());

function taskFor(workspace: string, rootWorkflowId: string, rootRunId: string): Promise<Task> {
  return mcpTaskOn(
    w,
    {
      user: 'alice@example.com',
      intent: 'append to a large file',
      agent: { name: 'appender', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { mcp: { slow: { command: 'node', args: [path.join(FIXTURES, 'slow-appender-server.mjs')] } } },
      grants: { tools: ['slow.grow', 'slow.append'] },
      limits: { toolTimeout: '30s' },
      resources: { workspace },
    },
    { rootWorkflowId, rootRunId },
    [FIXTURES],
  );
}

/** big.bin's bytes past its sparse start: the lines the `append` attempts left. */
function appendedLines(upper: string): string {
  const file = path.join(upper, 'big.bin');
  const size = fs.statSync(file).size;
  if (size <= BIG) return '';
  const fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(size - BIG);
    fs.readSync(fd, tail, 0, tail.length, BIG);
    return tail.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

describe('a stdio MCP call superseded after changing a file over the capture bound', () => {
  it('fails closed naming the file (never two attempts\' effect, silently)', async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-unkept-ws-'));
    const rootWorkflowId = `superseded-unkept-${Date.now()}`;
    const rootRunId = 'run-1';
    const task = await taskFor(workspace, rootWorkflowId, rootRunId);
    const grant = await saveTaskGrant(w, rootWorkflowId, task);
    const base = { rootWorkflowId, rootRunId, workflowId: rootWorkflowId, grantId: grant.id, maxCredentialTtlMs: 60_000, task };
    const { upper } = overlayPathsOf(w.stateDir, taskKeyOf(rootWorkflowId, rootRunId));
    const activities = createActivities(attemptDeps(w, [FIXTURES]));

    // Step 0 completes: big.bin, over the bound, is in the overlay.
    expect(await startAttempt(activities.runTool, { ...base, stepIndex: 0, callId: `${rootWorkflowId}:${rootRunId}:0:digest`, tool: 'slow.grow', args: {} }, 1).outcome).toBe('completed');
    expect(fs.statSync(path.join(upper, 'big.bin')).size).toBe(BIG);

    const input: RunToolInput = { ...base, stepIndex: 1, callId: `${rootWorkflowId}:${rootRunId}:1:digest`, tool: 'slow.append', args: { file: 'big.bin' } };
    const first = startAttempt(activities.runTool, input, 1);
    // Attempt 1's server has appended its line and keeps working: Temporal times it out and starts attempt 2.
    await until(() => appendedLines(upper) !== '', "attempt 1's line");
    const second = startAttempt(activities.runTool, input, 2);
    // Attempt 1 hears of its timeout at its next heartbeat.
    await new Promise((r) => setTimeout(r, 1000));
    first.env.cancel();
    const [one, two] = await Promise.all([first.outcome, second.outcome]);
    expect(one).not.toBe('completed');
    // Attempt 1's line cannot be taken back (big.bin's bytes were not kept): the call fails closed,
    // naming it, and does not run again over it (was: completed, big.bin holding both attempts' lines).
    expect({ two, lines: appendedLines(upper) }).toEqual({ two: expect.stringMatching(/^ERR_UNDO_FAILED: .*big\.bin/), lines: 'appended\n' });
  }, 180_000);
});
