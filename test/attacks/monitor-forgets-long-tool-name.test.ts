/**
 * Attack (guarantee 2: the monitor's memory survives the data flow's continue-as-new): a tool whose
 * name is longer than MAX_CARRIED_NAME (200 characters; tool names have no length limit, any
 * `[a-z][a-z0-9_-]*` is legal, an MCP server names its own tools) has its call count carried under
 * a shortened stand-in (`carriedName`: prefix + `...#hash`), while the next run counts its calls
 * under the full name. So per-tool counts (`calls-jump`, a whole-run count rule "more than N
 * calls of tool X", windowed per-tool rules) restart at every hand-over.
 *
 * The input: the same task as test/attacks/monitor-forgets-at-continue-as-new.test.ts's count-rule
 * row (12 calls, "block the task when it makes more than 9 calls of tool <name>"), with the tool
 * named `add-` + 246 × `x`; the data flow hands over every couple of steps (the client's own
 * `flow.maxRunStepBytes: 1024`). Seen before the fix: the original loop blocks the task at the
 * 10th call; the data flow completed all 12 calls (status `completed`). Now the same verdict on
 * both paths (blocked at the 10th): the next run takes a carried count back under the full name
 * before it counts or reads it (monitor-carry.ts `reclaimCarried`, monitor-step.ts). The class,
 * rule by rule and with names alike up to the carried prefix: test/monitoring/monitor-carry.test.ts.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { runCountingRuns } from '../support/monitor-kit';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

const TOOL = `add-${'x'.repeat(246)}`;

function task(dataFlow: boolean, workspace: string) {
  const script = [...Array.from({ length: 12 }, (_, i) => ({ tool: TOOL, args: { a: i, b: 2 } })), { final: 'done' }];
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'add numbers',
      agent: { name: 'looper', model: { driver: 'scripted', script } },
      tools: { custom: [{ name: TOOL, description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: [TOOL] },
      policies: [`block the task when it makes more than 9 calls of tool ${TOOL}`],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', approvalTimeout: '3s' },
      resources: { workspace },
      dataFlow,
    },
    'loop.yaml',
    REPO_ROOT,
  );
}

async function run(dataFlow: boolean): Promise<{ result: TaskResult; runs: number }> {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-monitor-long-name-'));
  const workflowId = `monitor-long-name-${dataFlow}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  return runCountingRuns(env, workflowId, task(dataFlow, workspace), dataFlow);
}

describe('the monitor across continue-as-new, a tool with a long name', () => {
  it('a whole-run count rule over a 250-character tool name ends the task as on the original loop', async () => {
    const loop = await run(false);
    const flow = await run(true);
    // The row tests what it names: the original loop blocks, and the flow really handed over.
    expect(loop.result.status).toBe('blocked');
    expect(flow.runs).toBeGreaterThan(2);
    const calls = (r: TaskResult) => r.steps.filter((s) => s.tool === TOOL && s.executed).length;
    expect({ status: flow.result.status, calls: calls(flow.result) }).toEqual({ status: loop.result.status, calls: calls(loop.result) });
  });
});
