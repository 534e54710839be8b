/**
 * A program Warden stops at a limit fails its `proc.run` call with the limit's code and value,
 * in real runs with real programs in the real OS sandbox (bubblewrap): it never comes back as an
 * ok output the agent could take for a finished run. A program that exits on its own, whatever
 * its status, is still the call's output.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { replayHistories } from '../mcp/mcp-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

interface LimitCase {
  label: string;
  args: { command: string; args: string[]; timeout?: string };
  limits: Record<string, unknown>;
  /** The step's error code and message; undefined: an ok output with this exit code. */
  error?: { code: string; message: RegExp };
  /** Files the stopped program added, taken back out (the step's `undone`). */
  undone?: string[];
  exitCode?: number;
}

const CASES: LimitCase[] = [
  {
    label: "the task's tool timeout (wall time)",
    args: { command: 'sh', args: ['-c', 'echo started > partial.txt; echo started; sleep 60'] },
    limits: { toolTimeout: '2s' },
    error: { code: 'ERR_SANDBOX_TIMEOUT', message: /wall-time limit of 2000 ms \(limits\.toolTimeout 2s\)/ },
    undone: ['partial.txt'],
  },
  {
    label: "the call's own timeout (wall time)",
    args: { command: 'sleep', args: ['60'], timeout: '1s' },
    limits: { toolTimeout: '60s' },
    error: { code: 'ERR_SANDBOX_TIMEOUT', message: /wall-time limit of 1000 ms \(the call's timeout 1s\)/ },
  },
  {
    label: 'the memory limit',
    args: { command: 'node', args: ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));'] },
    // Room in time so that, on a loaded machine, its memory runs out first.
    limits: { toolTimeout: '60s', processMemoryMb: 96 },
    error: { code: 'ERR_SANDBOX_MEMORY', message: /memory limit of 96 MiB/ },
  },
  { label: 'a non-zero exit (no limit)', args: { command: 'sh', args: ['-c', 'exit 3'] }, limits: { toolTimeout: '60s' }, exitCode: 3 },
  { label: 'a signal the program raised itself (no limit)', args: { command: 'sh', args: ['-c', 'kill -TERM $$'] }, limits: { toolTimeout: '60s' }, exitCode: 143 },
];

describe('proc.run stopped at a limit', () => {
  it.each(CASES)('$label', async ({ args, limits, error, exitCode, undone }) => {
    const workspace = makeTempDir('proc-limit-ws');
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'run a program',
      agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool: 'proc.run', args }, { tool: 'fs.list', args: { path: '.' } }, { final: 'done' }] } },
      tools: { builtin: ['proc.run', 'fs.list'] },
      grants: { tools: ['proc.run', 'fs.list'], commands: ['sh', 'sleep', 'node'] },
      resources: { workspace },
      limits,
    });
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    const step = result.steps[0]!;
    if (error === undefined) {
      expect(step.error).toBeUndefined();
      expect(step.output).toMatchObject({ exitCode, reason: 'exited' });
      return;
    }
    expect(step.output ?? null).toBeNull();
    expect(step.error?.code).toBe(error.code);
    expect(step.error?.message).toMatch(error.message);
    // What the stopped program added is taken back out: the agent's next step does not see it.
    if (undone !== undefined) expect(step.undone, JSON.stringify(step)).toEqual(undone);
    expect(JSON.stringify(result.steps[1]?.output)).not.toContain('partial.txt');
    expect(fs.readdirSync(workspace)).toEqual([]);
  });
});

it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
});
