/**
 * A standalone worker's log (worker/worker-log-filters.ts): a tool call a guard refused (a path
 * outside the workspace, read by a built-in or by a custom tool through its capability) is an
 * outcome the task reports in its step. It was the SDK's WARN "Activity failed" with a stack trace
 * of the activity boundary under it; it is now one WARN line naming the code and why. A failure
 * that is no refusal (a custom tool that threw) keeps the SDK's entry and its stack. And the run's
 * own view of such a step says the policy allowed it and the tool refused it (cli/format-summary.ts),
 * while the decision recorded stays `allow`.
 *
 * Real parts: a real `warden worker` and `warden run` on the test Temporal server, a private state
 * folder and queue, real files outside the workspace and a link out of it.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { agentTaskResult } from '../../client/start-agent-task';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { stopChildren, type CollectedOutput } from '../support/child-output';
import { runThroughStandaloneWorker } from '../support/standalone-worker-run';
import { testTemporalAddress, testTemporalConfig } from '../support/temporal';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-log-refusals-'));
const stateDir = join(root, 'state');
const taskQueue = `warden-log-refusals-${randomUUID()}`;
const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()! };
  delete e.TEMPORAL_ADDRESS;
  return e;
};

/** A stack frame, on a continuation line of its entry (`  | `, worker/worker-log-filters.ts CONTINUATION). */
const STACK = /\n {2}\| \s+at /;

/** The refusal kinds, one step each, and the failure that must keep its stack. */
const steps = [
  { what: 'fs.read climbing out with ..', tool: 'fs.read', args: { path: '../outside.txt' }, code: 'ERR_PATH_OUTSIDE_WORKSPACE' },
  { what: 'fs.read of an absolute path', tool: 'fs.read', args: { path: join(root, 'outside.txt') }, code: 'ERR_PATH_OUTSIDE_WORKSPACE' },
  { what: 'fs.read through a link out of the workspace', tool: 'fs.read', args: { path: 'out-link/outside.txt' }, code: 'ERR_PATH_OUTSIDE_WORKSPACE' },
  { what: 'fs.list of the folder above', tool: 'fs.list', args: { path: '..' }, code: 'ERR_PATH_OUTSIDE_WORKSPACE' },
  { what: 'a custom tool reading outside through its fs.read capability', tool: 'peek', args: {}, code: 'ERR_PATH_OUTSIDE_WORKSPACE' },
] as const;
const failure = { what: 'a custom tool that threw (a failure, no refusal)', tool: 'boom', args: {}, code: 'ERR_TOOL_THREW' } as const;

let worker: ChildProcess;
let workerOutput: CollectedOutput;
let run: { code: number; stdout: string; stderr: string };
/** The task's result as Temporal holds it (the run prints its steps, not JSON). */
let result: TaskResult;

beforeAll(async () => {
  const workspace = join(root, 'workspace');
  fs.mkdirSync(workspace);
  fs.writeFileSync(join(root, 'outside.txt'), 'not yours\n');
  fs.symlinkSync(root, join(workspace, 'out-link'));
  const task = join(root, 'task.json');
  fs.writeFileSync(
    task,
    JSON.stringify({
      user: 'u@example.com',
      intent: 'probe the workspace',
      agent: { name: 'prober', model: { driver: 'scripted', script: [...[...steps, failure].map(({ tool, args }) => ({ tool, args })), { final: 'probed' }] } },
      tools: {
        builtin: ['fs.read', 'fs.list'],
        custom: [
          { name: 'peek', description: 'reads a file outside', capabilities: ['fs.read'], source: "return warden.fs.read('../outside.txt');" },
          { name: 'boom', description: 'throws', source: "throw new Error('boom');" },
        ],
      },
      grants: { tools: ['fs.read', 'fs.list', 'peek', 'boom'] },
      resources: { workspace },
    }),
  );
  ({ worker, workerOutput, run } = await runThroughStandaloneWorker({ cwd: root, env: env(), taskQueue, taskFile: task }));
  const workflowId = /started (warden-prober-\S+)/.exec(run.stderr)?.[1];
  if (workflowId === undefined) throw new Error(`no task started:\n${run.stderr}`);
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    result = await agentTaskResult(client.workflow.getHandle(workflowId));
  } finally {
    await connection.close();
  }
}, 600_000);

afterAll(async () => {
  await stopChildren([worker]);
  fs.rmSync(root, { recursive: true, force: true });
});

/** The worker's "Activity failed" entries, in order (an entry starts with its ISO time). */
function failedActivities(): string[] {
  const failed = workerOutput.stderr.split(/\n(?=\d{4}-\d{2}-\d{2}T)/).filter((entry) => entry.includes('Activity failed'));
  expect(failed, workerOutput.stderr).toHaveLength(steps.length + 1);
  return failed;
}

it('the task ran on the standalone worker and completed with every step refused or failed', () => {
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).toContain('running on the standalone worker');
  expect(result.steps.map((s) => s.error?.code)).toEqual([...steps, failure].map((s) => s.code));
});

it.each(steps.map((s, index) => [s.what, index, s] as const))('%s: one WARN line with the code and why, no stack', (_what, index, step) => {
  const recorded = result.steps[index]!;
  // The policy's decision as recorded is unchanged: allow.
  expect(recorded.decision).toBe('allow');
  // One entry per step, in order: each step is one runTool activity, not retried (a refusal is final).
  const logged = failedActivities()[index]!;
  expect(logged.trimEnd().split('\n'), logged).toHaveLength(1);
  expect(logged).toContain(`[WARN] Activity failed, refused: ${step.code} ${recorded.error!.message}`);
  expect(logged).not.toMatch(STACK);
  // And the run's view says who refused it.
  expect(run.stderr).toContain(`#${index} ${step.tool} ${JSON.stringify(step.args)} -> allowed by policy, but REFUSED by the tool: ${step.code}`);
});

it('a failure that is no refusal keeps the SDK entry with its stack', () => {
  const logged = failedActivities()[steps.length]!;
  expect(logged).toContain(failure.code);
  expect(logged).toMatch(STACK);
  expect(run.stderr).toContain(`#${steps.length} boom {} -> allowed; failed: ERR_TOOL_THREW`);
});

it('the start says what the worker polls, not the SDK line about the Nexus tasks Warden never registers', () => {
  expect(workerOutput.stderr).toContain('data-plane worker polling');
  expect(workerOutput.stderr).not.toContain('Nexus');
});
