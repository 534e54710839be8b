/**
 * Attack (issues 12/17, the commit proof): a tool call that the sandbox host's policy gate stops
 * part-way (its second write is inside a denied path) is recorded as `decision: deny,
 * executed: false`, but the write it made before the denied one stays in the overlay and is
 * committed to the workspace when the task completes: on the data flow the commit proof even
 * counts it as written (`writesOfFailure`, workflows/tool-step.ts), on the original loop the
 * overlay keeps it too. Custody and the result say the step did nothing; the workspace holds its
 * 20 KB file.
 *
 * Verdict: WORKS (open), on both paths. Expected: a step that did not execute leaves nothing
 * behind (what its call wrote is undone before the task goes on), or the step is recorded as
 * executed with its writes, so the commit never holds effects the record denies.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

function task(dataFlow: boolean, workspace: string) {
  const script = [{ tool: 'writer', args: {} }, { final: 'done' }];
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write',
      agent: { name: 'writer-agent', model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.write'], custom: [{ name: 'writer', description: 'writes', capabilities: ['fs.write'], input: { type: 'object' }, source: "warden.fs.write('a.txt', 'y'.repeat(20000)); warden.fs.write('secret/c.txt', 'z'); return 'ok';" }] },
      grants: { tools: ['writer', 'fs.write'] },
      policies: ['never write inside /workspace/secret'],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', approvalTimeout: '3s', onDeny: 'continue' },
      resources: { workspace },
      dataFlow,
    },
    'denied-writes.yaml',
    REPO_ROOT,
  );
}

describe('a step denied part-way through its call', () => {
  it('commits none of its writes, on either path', async () => {
    const out: Record<string, unknown> = {};
    for (const df of [false, true]) {
      const workspace = await mkdtemp(join(tmpdir(), 'warden-denied-writes-'));
      const workflowId = `denied-writes-${df}-${Date.now()}`;
      const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: task(df, workspace) }] });
      env.workflowIds.push(workflowId);
      const r = await followAgentTask(handle);
      out[String(df)] = { status: r.status, files: await readdir(workspace), steps: r.steps.map((s) => [s.tool, s.decision, s.executed, s.error?.code]) };
    }
    const expected = { status: 'completed', files: [], steps: [['writer', 'deny', false, 'ERR_POLICY_DENIED']] };
    // Measured today on both: files ['a.txt'].
    expect(out).toEqual({ false: expected, true: expected });
  });
});
