/**
 * Tasks at the sizes issue 12 names, on the real Temporal server and the data flow (opt-in, `dataFlow: true`): a 1,000-step task (it continues
 * as new, each run well under Temporal's history limits) and a task with 50 outputs of 900 KB
 * (claim-checked out of history), both replayed run by run.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { followAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import { isClaimCheckRef } from '../../task/data-flow';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { historiesOfRuns, replayAllRuns } from '../support/replay-runs';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const { History } = temporal.api.history.v1;
let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

async function run(name: string, steps: unknown[], tool: Record<string, unknown>, limits: Record<string, unknown> = {}) {
  const workspace = await mkdtemp(join(tmpdir(), `warden-${name}-`));
  const task = parseTask(
    {
      user: 'ops@example.com',
      intent: `a ${name} task`,
      agent: { name: 'worker', model: { driver: 'scripted', script: [...steps, { final: `${name} done` }] } },
      tools: { custom: [tool] },
      grants: { tools: [tool.name] },
      limits: { maxSteps: steps.length + 1, deadline: '1h', ...limits },
      resources: { workspace },
      // The data flow is opt-in: it is what keeps such tasks under Temporal's limits.
      dataFlow: true,
    },
    `${name}.yaml`,
    REPO_ROOT,
  );
  const workflowId = `long-${name}-${Date.now()}`;
  const handle = await env.start(task, workflowId);
  return { workflowId, result: await followAgentTask(handle, undefined, { blobs: openBlobStore(TEST_STATE_DIR) }) };
}

describe('long tasks', () => {
  it('runs 1,000 steps in runs that stay under history limits', async () => {
    const steps = Array.from({ length: 1000 }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } }));
    // A per-call limit over 5 s keeps every call an activity on the queue (a pure, short tool's run locally: local-pure-calls.test.ts).
    const { workflowId, result } = await run('thousand', steps, { name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }, { toolTimeout: '10s' });
    expect(result.status).toBe('completed');
    expect(result.steps).toHaveLength(1000);
    expect(result.steps.map((s) => s.index)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(result.steps[999]?.output).toBe(1000);
    const runs = await historiesOfRuns(env.client, workflowId);
    expect(runs.length).toBeGreaterThan(1);
    for (const history of runs) expect(history.events?.length ?? 0).toBeLessThan(2_500);
    const bytes = runs.reduce((sum, h) => sum + History.encode(h).finish().length, 0);
    process.stderr.write(`1,000-step task: ${runs.length} runs, ${bytes} history bytes, ${(bytes / 1000).toFixed(0)} B/step\n`);
    // Flat per step: about 4.8 KiB before the policy decision was made ahead, 5.1 KiB since (each
    // call carries the step's policy request, which the activity counts into the state it decides
    // the next action with). A history that grew with the step count would be far past this.
    expect(bytes / 1000).toBeLessThan(6 * 1024);
  }, 1_200_000);

  it('completes with 50 outputs of 900 KB, none of them in history', async () => {
    const steps = Array.from({ length: 50 }, (_, n) => ({ tool: 'big', args: { n } }));
    const { workflowId, result } = await run('heavy', steps, {
      name: 'big',
      description: '900 KB of output',
      input: { type: 'object' },
      source: "return 'x'.repeat(900 * 1024 - 16) + String(input.n).padStart(16, '0');",
    });
    expect(result.status).toBe('completed');
    expect(result.steps).toHaveLength(50);
    expect(result.steps.every((s, n) => typeof s.output === 'string' && s.output.length === 900 * 1024 && s.output.endsWith(String(n)))).toBe(true);
    const raw = (await env.client.workflow.getHandle(workflowId).result()) as TaskResult;
    expect(raw.steps.every((s) => isClaimCheckRef(s.output))).toBe(true);
    const bytes = (await historiesOfRuns(env.client, workflowId)).reduce((sum, h) => sum + History.encode(h).finish().length, 0);
    expect(bytes).toBeLessThan(1024 * 1024);
    // And the assembled result matches what the client helper gave.
    expect((await assembleTaskResult(raw, openBlobStore(TEST_STATE_DIR))).steps.map((s) => (s.output as string).length)).toEqual(result.steps.map(() => 900 * 1024));
  }, 600_000);

  it('replays every run of both', async () => {
    const { failures, runs } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    expect(runs).toBeGreaterThan(2);
  }, 300_000);
});
