/**
 * The agent loop on the real Temporal server: real worker, real sandbox host, real files.
 * The last test replays every history this file produced against the current workflow code.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentTask, agentTaskResult, TASK_QUEUE, TaskResultSchema, TaskSchema, taskStateQuery, type TaskFileInput } from '../../index';
import { workflowBundle } from '../../worker/workflow-bundle';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let workspace: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = await mkdtemp(join(tmpdir(), 'warden-ws-'));
  await writeFile(join(workspace, 'notes.txt'), 'one two three four');
});

afterAll(async () => {
  await env?.close();
});

/** A task with a scripted agent; `extra` overrides or adds fields. */
function scriptedTask(script: unknown[], extra: Partial<Record<keyof TaskFileInput, unknown>> = {}): Record<string, unknown> {
  return {
    user: 'alice@example.com',
    intent: 'test the agent loop',
    agent: { name: 'tester', model: { driver: 'scripted', id: 'scripted-test', version: '7', script } },
    resources: { workspace },
    ...extra,
  };
}

const wordCount = {
  name: 'word-count',
  description: 'Counts words.',
  input: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
  source: 'return { words: input.text.split(/\\s+/).filter(Boolean).length };',
};

describe('agentTask workflow', () => {
  it('runs a multi-step task with built-in and user-defined tools in the sandbox', async () => {
    const result = await env.runTask(
      scriptedTask(
        [
          { tool: 'fs.read', args: { path: 'notes.txt' } },
          { tool: 'word-count', args: { text: 'one two three four' } },
          { tool: 'fs.write', args: { path: 'out/count.txt', content: '4' } },
          { final: 'counted', claims: ['out/count.txt says 4'] },
        ],
        {
          tools: { builtin: ['fs.read', 'fs.write'], custom: [wordCount] },
          grants: { tools: ['fs.read', 'fs.write', 'word-count'] },
        },
      ),
    );
    expect(TaskResultSchema.safeParse(result).success).toBe(true);
    expect(result.status).toBe('completed');
    expect(result.model).toEqual({ id: 'scripted-test', version: '7' });
    expect(result.steps.map((s) => [s.tool, s.decision, s.executed, s.error?.code])).toEqual([
      ['fs.read', 'allow', true, undefined],
      ['word-count', 'allow', true, undefined],
      ['fs.write', 'allow', true, undefined],
    ]);
    expect(result.steps[0]?.output).toBe('one two three four');
    expect(result.steps[1]?.output).toEqual({ words: 4 });
    expect(await readFile(join(workspace, 'out/count.txt'), 'utf8')).toBe('4');
    expect(result.final).toEqual({ answer: 'counted', claims: ['out/count.txt says 4'] });
  });

  it('denies an ungranted tool, records it, and stops the task by default', async () => {
    const result = await env.runTask(
      scriptedTask([{ tool: 'fs.write', args: { path: 'pwned.txt', content: 'x' } }, { final: 'never reached' }], {
        tools: { builtin: ['fs.read', 'fs.write'] },
        grants: { tools: ['fs.read'] },
      }),
    );
    expect(result.status).toBe('denied');
    expect(result.steps).toHaveLength(1);
    expect(result.steps[0]).toMatchObject({ tool: 'fs.write', decision: 'deny', executed: false, error: { code: 'ERR_TOOL_NOT_GRANTED' } });
    expect(result.final).toBeNull();
    await expect(readFile(join(workspace, 'pwned.txt'))).rejects.toThrow();
  });

  it('with onDeny: continue, reports the denial to the agent and goes on', async () => {
    const result = await env.runTask(
      scriptedTask(
        [
          { tool: 'shell.exec', args: { command: 'rm -rf /' } },
          { tool: 'fs.read', args: { path: 'notes.txt' } },
          { final: 'done anyway' },
        ],
        { tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, limits: { onDeny: 'continue' } },
      ),
    );
    expect(result.status).toBe('completed');
    expect(result.steps[0]).toMatchObject({ tool: 'shell.exec', decision: 'deny', executed: false, error: { code: 'ERR_TOOL_UNKNOWN' } });
    expect(result.steps[1]).toMatchObject({ tool: 'fs.read', decision: 'allow', executed: true, output: 'one two three four' });
  });

  it('reports an infinite loop and a memory bomb as typed step errors and keeps serving', async () => {
    const result = await env.runTask(
      scriptedTask(
        [
          { tool: 'spin', args: {} },
          { tool: 'hog', args: {} },
          { tool: 'word-count', args: { text: 'still alive' } },
          { final: 'survived' },
        ],
        {
          tools: {
            custom: [
              { name: 'spin', description: 'loops forever', source: 'while (true) {}', timeout: '1s' },
              { name: 'hog', description: 'allocates without bound', source: 'const a = []; for (;;) a.push("x".repeat(1 << 20) + a.length);' },
              wordCount,
            ],
          },
          grants: { tools: ['spin', 'hog', 'word-count'] },
          // The bomb gets room in time so that, on a loaded machine, its memory runs out first.
          limits: { toolTimeout: '60s', toolMemoryMb: 32 },
        },
      ),
    );
    expect(result.status).toBe('completed');
    expect(result.steps[0]?.error?.code).toBe('ERR_SANDBOX_TIMEOUT');
    expect(['ERR_SANDBOX_MEMORY', 'ERR_SANDBOX_CRASHED']).toContain(result.steps[1]?.error?.code);
    expect(result.steps[2]).toMatchObject({ executed: true, output: { words: 2 } });
  });

  it('keeps host powers out of reach of tool code', async () => {
    const attempts = [
      'return this.constructor.constructor("return process")().pid',
      'return typeof require === "undefined" ? (() => { throw new Error("no require") })() : require("fs")',
      'return globalThis.process.env',
      'Object.prototype.polluted = "yes"; return ({}).polluted',
    ];
    const result = await env.runTask(
      scriptedTask([...attempts.map((_, i) => ({ tool: `escape-${i}`, args: {} })), { final: 'tried' }], {
        tools: { custom: attempts.map((source, i) => ({ name: `escape-${i}`, description: 'escape attempt', source })) },
        grants: { tools: attempts.map((_, i) => `escape-${i}`) },
      }),
    );
    expect(result.steps.slice(0, 3).map((s) => s.error?.code)).toEqual(['ERR_TOOL_THREW', 'ERR_TOOL_THREW', 'ERR_TOOL_THREW']);
    // Pollution stays inside that call's own isolate.
    expect(result.steps[3]?.output).toBe('yes');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects arguments that do not match the tool schema before any sandbox runs', async () => {
    const result = await env.runTask(
      scriptedTask([{ tool: 'word-count', args: { text: 42 } }, { final: 'ok' }], {
        tools: { custom: [wordCount] },
        grants: { tools: ['word-count'] },
      }),
    );
    expect(result.steps[0]?.error?.code).toBe('ERR_TOOL_INPUT_INVALID');
    expect(result.steps[0]?.error?.message).toContain('/text');
  });

  const helperSubagent = (grants: string[], script: unknown[]) => ({
    helper: {
      intent: 'help',
      agent: { name: 'helper', model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.read', 'fs.write'], custom: [wordCount] },
      grants: { tools: grants },
      limits: { onDeny: 'continue' },
    },
  });

  it('runs a sub-agent as a child workflow under a grant delegated from the parent', async () => {
    const result = await env.runTask(
      scriptedTask([{ spawn: 'helper', intent: 'count words' }, { final: 'delegated' }], {
        tools: { builtin: ['fs.read'], custom: [wordCount] },
        grants: { tools: ['fs.read', 'word-count'], subagents: ['helper'] },
        subagents: helperSubagent(['word-count'], [
          { tool: 'word-count', args: { text: 'a b c' } },
          // Granted to the parent, but not delegated to the child.
          { tool: 'fs.read', args: { path: 'notes.txt' } },
          { final: 'helped', claims: ['counted 3'] },
        ]),
      }),
    );
    expect(result.status).toBe('completed');
    expect(result.steps[0]).toMatchObject({ kind: 'spawn', tool: 'spawn:helper', decision: 'allow', executed: true });
    expect(result.children).toHaveLength(1);
    const child = result.children[0]!;
    expect(child.depth).toBe(1);
    expect(child.workflowId).toBe(`${result.workflowId}/helper-0`);
    // The parent stops on deny, and a child can never relax that.
    expect(child.status).toBe('denied');
    expect(child.steps[0]).toMatchObject({ tool: 'word-count', output: { words: 3 } });
    expect(child.steps[1]).toMatchObject({ tool: 'fs.read', decision: 'deny', error: { code: 'ERR_TOOL_NOT_GRANTED' } });
    expect(result.steps[0]?.error?.code).toBe('ERR_SUBAGENT_FAILED');
    // The chain runs from the user through the parent agent to the sub-agent.
    expect(child.identity?.chain).toEqual(['user:alice@example.com', `agent:tester@${result.workflowId}`, `agent:helper@${child.workflowId}`]);
    expect(child.steps[0]?.credential?.scope).toEqual(['word-count:invoke']);
  });

  it('refuses to delegate a grant wider than the parent holds, names the scope, and lets the parent go on', async () => {
    const result = await env.runTask(
      scriptedTask([{ spawn: 'helper' }, { tool: 'word-count', args: { text: 'x' } }, { final: 'went on' }], {
        tools: { builtin: ['fs.read'], custom: [wordCount] },
        grants: { tools: ['fs.read', 'word-count'], subagents: ['helper'] },
        subagents: helperSubagent(['word-count', 'fs.write'], [{ final: 'never runs' }]),
      }),
    );
    expect(result.status).toBe('completed');
    expect(result.steps[0]).toMatchObject({ tool: 'spawn:helper', decision: 'deny', executed: false, error: { code: 'ERR_DELEGATION_WIDENS' } });
    expect(result.steps[0]?.reason).toContain('fs.write');
    expect(result.children).toEqual([]);
    expect(result.steps[1]).toMatchObject({ tool: 'word-count', executed: true });
  });

  it('denies spawning a sub-agent that is not granted', async () => {
    const result = await env.runTask(
      scriptedTask([{ spawn: 'rogue' }, { final: 'x' }], {
        subagents: { rogue: { intent: 'x', agent: { name: 'rogue', model: { driver: 'scripted', script: [{ final: 'y' }] } } } },
      }),
    );
    expect(result.status).toBe('denied');
    expect(result.steps[0]?.error?.code).toBe('ERR_SUBAGENT_NOT_GRANTED');
    expect(result.children).toEqual([]);
  });

  it('stops at the step limit', async () => {
    const result = await env.runTask(
      scriptedTask(
        Array.from({ length: 5 }, () => ({ tool: 'word-count', args: { text: 'x' } })),
        { tools: { custom: [wordCount] }, grants: { tools: ['word-count'] }, limits: { maxSteps: 3 } },
      ),
    );
    expect(result.status).toBe('limit_exceeded');
    expect(result.steps).toHaveLength(3);
  });

  it('fails with the driver error when a script runs out without a final answer', async () => {
    const result = await env.runTask(
      scriptedTask([{ tool: 'word-count', args: { text: 'x' } }], { tools: { custom: [wordCount] }, grants: { tools: ['word-count'] } }),
    );
    expect(result.status).toBe('failed');
    expect(result.reason).toContain('ERR_SCRIPT_EXHAUSTED');
  });

  it('ends a task at its deadline even while a tool is running', async () => {
    const result = await env.runTask(
      scriptedTask([{ tool: 'spin', args: {} }, { final: 'late' }], {
        tools: { custom: [{ name: 'spin', description: 'busy', source: 'const end = Date.now() + 8000; while (Date.now() < end) {} return 1;' }] },
        grants: { tools: ['spin'] },
        limits: { deadline: '3s', toolTimeout: '10s' },
      }),
    );
    expect(result.status, JSON.stringify(result.steps)).toBe('timed_out');
    expect(result.final).toBeNull();
  });

  it('can be queried while it runs and cancelled', async () => {
    const task = TaskSchema.parse(
      scriptedTask([{ tool: 'word-count', args: { text: 'x y' } }, { tool: 'slow', args: {} }, { final: 'never' }], {
        tools: {
          // Waits until stopped (no CPU): with a tool busy for a fixed time, a machine slow to
          // answer the query saw the task already completed.
          custom: [wordCount, { name: 'slow', description: 'waits until stopped', source: 'await new Promise(() => {});' }],
        },
        grants: { tools: ['word-count', 'slow'] },
        limits: { toolTimeout: '120s' },
      }),
    );
    const handle = await env.start(task);
    let state = await handle.query(taskStateQuery);
    for (let i = 0; i < 1200 && state.steps.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await handle.query(taskStateQuery);
    }
    expect(state.status).toBe('running');
    expect(state.steps[0]).toMatchObject({ tool: 'word-count', executed: true });
    await handle.cancel();
    // A cancelled task closes as failed (not a clean Completed), carrying its result.
    await expect(handle.result()).rejects.toMatchObject({ cause: { type: 'ERR_TASK_CANCELLED' } });
    const result = await agentTaskResult(handle);
    expect(result.status).toBe('cancelled');
  });

  it('can be started by a user program with the plain Temporal client', async () => {
    const task = TaskSchema.parse(scriptedTask([{ final: 'hello from a client' }]));
    const handle = await env.client.workflow.start(agentTask, {
      taskQueue: env.taskQueue,
      workflowId: `client-example-${Date.now()}`,
      args: [{ task }],
    });
    env.workflowIds.push(handle.workflowId);
    expect(TASK_QUEUE).toBe('warden-agent-tasks');
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', final: { answer: 'hello from a client', claims: [] }, runId: handle.firstExecutionRunId });
  });

  it('replays every history of this file deterministically', async () => {
    expect(env.workflowIds.length).toBeGreaterThan(10);
    // Visibility lists children too (they run on the same task queue).
    const ids: string[] = [];
    for await (const execution of env.client.workflow.list({ query: `TaskQueue = "${env.taskQueue}"` })) ids.push(execution.workflowId);
    expect(ids).toEqual(expect.arrayContaining(env.workflowIds));
    expect(ids.some((id) => id.endsWith('/helper-0'))).toBe(true);
    const histories = (async function* () {
      for (const workflowId of ids) {
        const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
        yield { workflowId, history };
      }
    })();
    const bundle = await workflowBundle();
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) {
      expect(result.error, `replay of ${result.workflowId}`).toBeUndefined();
      replayed++;
    }
    expect(replayed).toBe(ids.length);
  });
});
