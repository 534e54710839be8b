/**
 * Attack on the call lease (recovery/call-lease.ts; guarantee: a call that does not complete leaves
 * no file effects, and the overlay holds the writes of exactly one attempt, the one Temporal takes).
 *
 * A stdio MCP server with the workspace writes through the kernel overlay, which the worker does not
 * see: an attempt measures the upper folder before the call (`captureUpper`, in memory only) and,
 * when the call fails, records what changed as undo records and undoes them. A superseded attempt is
 * fenced before that step (executeOutsideIsolate's catch: "what it changed is the newer attempt's to
 * undo"), but its changes were never written down anywhere: the newer attempt, once the older one
 * ended, finds no undo records for the call, measures the upper folder with the older attempt's
 * writes in it as its own "before", and runs the tool again. The superseded attempt's writes stay
 * for good, and are committed with the task: the tool's effect twice (a root call's or a
 * sub-agent's alike).
 *
 * The branch's own test (test/recovery/attempt-fence.test.ts, stdio MCP row) missed it because its
 * server writes the same bytes on every attempt. Here each attempt appends a line to log.txt.
 *
 * Real parts: the real runTool activity twice at once through MockActivityEnvironment (attempt 1
 * cancelled at its next heartbeat while attempt 2 runs), a real stdio MCP server in the OS sandbox.
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
let w: AttemptWorker;
beforeAll(async () => {
  w = await openAttemptWorker('warden-superseded-mcp-');
}, 120_000);
afterAll(async () => w?.close());

function taskFor(workspace: string, rootWorkflowId: string, rootRunId: string): Promise<Task> {
  return mcpTaskOn(
    w,
    {
      user: 'alice@example.com',
      intent: 'append slowly',
      agent: { name: 'appender', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { mcp: { slow: { command: 'node', args: [path.join(FIXTURES, 'slow-appender-server.mjs')] } } },
      grants: { tools: ['slow.append'] },
      limits: { toolTimeout: '30s' },
      resources: { workspace },
    },
    { rootWorkflowId, rootRunId },
    [FIXTURES],
  );
}

const logOf = (upper: string) => (fs.existsSync(path.join(upper, 'log.txt')) ? fs.readFileSync(path.join(upper, 'log.txt'), 'utf8') : undefined);

describe('a stdio MCP call superseded by its next attempt', () => {
  it.each([
    { name: 'root call', subagent: false },
    { name: "sub-agent's call", subagent: true },
  ])("$name: the overlay holds attempt 2's write only", async ({ subagent }) => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-superseded-mcp-ws-'));
    const rootWorkflowId = `superseded-mcp-${subagent ? 'sub' : 'root'}-${Date.now()}`;
    const rootRunId = 'run-1';
    const task = await taskFor(workspace, rootWorkflowId, rootRunId);
    const workflowId = subagent ? `${rootWorkflowId}/helper` : rootWorkflowId;
    const grant = await saveTaskGrant(w, workflowId, task);
    const callId = `${workflowId}:${rootRunId}:0:digest`;
    const input: RunToolInput = { rootWorkflowId, rootRunId, workflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'slow.append', args: {} };
    const taskKey = taskKeyOf(rootWorkflowId, rootRunId);
    const { upper } = overlayPathsOf(w.stateDir, taskKey);
    const activities = createActivities(attemptDeps(w, [FIXTURES]));

    const first = startAttempt(activities.runTool, input, 1);
    // Attempt 1's server has appended its line and keeps working: Temporal times it out and starts attempt 2.
    await until(() => logOf(upper) !== undefined, "attempt 1's write");
    const second = startAttempt(activities.runTool, input, 2);
    // Attempt 1 hears of its timeout at its next heartbeat.
    await new Promise((r) => setTimeout(r, 1000));
    first.env.cancel();
    const [one, two] = await Promise.all([first.outcome, second.outcome]);
    expect(one).not.toBe('completed');
    expect(two).toBe('completed');
    // Exactly one attempt's effect: one line (was two: attempt 1's line was never recorded, so never undone).
    expect(logOf(upper)).toBe('appended\n');
  }, 120_000);
});
