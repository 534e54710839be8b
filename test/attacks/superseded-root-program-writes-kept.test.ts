/**
 * Finding (medium, older than the call lease, which narrowed it; fixed): a root task's program
 * (`proc.run`) kept no undo records ("its exit, time-out or kill is its output"). When Temporal
 * timed an attempt of it out and started the next, the lease stopped the older attempt (its
 * program killed) and the newer one ran the program again with nothing of the older run undone:
 * the overlay held the effect of two runs, and the task committed it (a program appending a line
 * had done it twice).
 *
 * Now a root program is measured before it runs as an MCP call is (activities/run-tool.ts
 * `beginOutsideUndo`): the superseded attempt records what it changed, and the newer attempt
 * undoes that before it runs the program. test/recovery/attempt-fence-outside-isolate.test.ts
 * covers the class (each executor outside the isolate, root and sub-agent).
 *
 * Real parts: the real runTool activity twice at once (MockActivityEnvironment), the real OS sandbox.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import type { RunToolInput } from '../../activities/run-tool';
import type { ActivityDeps } from '../../activities/index';
import { overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import { parseTask } from '../../task/load-task-file';
import { openAttemptWorker, saveTaskGrant, startAttempt, waitUntil as until, type AttemptWorker } from '../support/attempt-overlap-kit';

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
