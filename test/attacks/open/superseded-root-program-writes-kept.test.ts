/**
 * Open finding (medium, older than the call lease, which narrowed it): a root task's program
 * (`proc.run`) keeps no undo records ("its exit, time-out or kill is its output",
 * activities/run-tool.ts `beginOutsideUndo`). When Temporal times an attempt of it out (start-to-
 * close or heartbeat) and starts the next, the lease stops the older attempt (its program killed)
 * and the newer one runs the program again, with nothing of the older run to undo: the overlay
 * holds the effect of two runs, and the task commits it. The run-tool header's "the overlay holds
 * the writes of exactly one attempt: the one whose result Temporal takes" does not hold for it.
 * A program that appends a line (a log, `git commit`, a counter) has done it twice.
 *
 * A fix: measure a root program as a sub-agent's (captureUpper before it, records after, in
 * executeProcessCall), at least when the call is not the first attempt's, or have the superseded
 * attempt record what it changed (as an MCP call's now does) from a listing taken before.
 *
 * Real parts: the real runTool activity twice at once (MockActivityEnvironment), the real OS sandbox.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../../activities';
import type { RunToolInput } from '../../../activities/run-tool';
import type { ActivityDeps } from '../../../activities/index';
import { overlayPathsOf, taskKeyOf } from '../../../recovery/recovery-paths';
import { parseTask } from '../../../task/load-task-file';
import { openAttemptWorker, saveTaskGrant, startAttempt, waitUntil as until, type AttemptWorker } from '../../support/attempt-overlap-kit';

let w: AttemptWorker;
beforeAll(async () => {
  w = await openAttemptWorker('warden-superseded-program-');
}, 120_000);
afterAll(async () => w?.close());

describe("a root task's program superseded by its next attempt", () => {
  it("the overlay holds one run's effect", async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-program-ws-'));
    const task = parseTask(
      {
        user: 'alice@example.com',
        intent: 'append slowly',
        agent: { name: 'appender', model: { driver: 'scripted', script: [{ final: 'done' }] } },
        tools: { builtin: ['proc.run'] },
        grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
        limits: { toolTimeout: '30s' },
        resources: { workspace },
      },
      'superseded-program.yaml',
      w.stateDir,
    );
    const rootWorkflowId = `superseded-program-${Date.now()}`;
    const rootRunId = 'run-1';
    const grant = await saveTaskGrant(w, rootWorkflowId, task);
    const callId = `${rootWorkflowId}:${rootRunId}:0:digest`;
    const input: RunToolInput = { rootWorkflowId, rootRunId, workflowId: rootWorkflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'proc.run', args: { command: 'sh', args: ['-c', 'echo appended >> log.txt; sleep 3'] } };
    const log = path.join(overlayPathsOf(w.stateDir, taskKeyOf(rootWorkflowId, rootRunId)).upper, 'log.txt');
    const activities = createActivities({ sandbox: w.sandbox, stateDir: w.stateDir, identity: { keystore: w.keystore, stores: w.stores } } as ActivityDeps);

    const first = startAttempt(activities.runTool, input, 1);
    await until(() => fs.existsSync(log), "attempt 1's line");
    const second = startAttempt(activities.runTool, input, 2);
    await new Promise((r) => setTimeout(r, 1000));
    first.env.cancel();
    const [one, two] = await Promise.all([first.outcome, second.outcome]);
    expect(one).not.toBe('completed');
    expect(two).toBe('completed');
    expect(fs.readFileSync(log, 'utf8')).toBe('appended\n');
  }, 120_000);
});
