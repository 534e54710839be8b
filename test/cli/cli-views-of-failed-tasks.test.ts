/**
 * Attack on issue 16's "a task that did not complete closes as Failed": the CLI's views of a task
 * (`warden status`, `warden logs`, `warden cancel` through `readTaskView`; `warden list` through
 * `listTasks`) must still tell a denied or limit-exceeded task from a crashed one. They read
 * Warden's result only from a COMPLETED workflow, so every guardrail outcome now shows as
 * `failed`, "without a Warden result", and `warden list --status denied` lists nothing.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTasks } from '../../cli/commands/list';
import { readTaskView } from '../../cli/task-view';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let denied: TaskResult;
let limited: TaskResult;

beforeAll(async () => {
  env = await startWardenTestEnv();
  const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-views-'));
  denied = await env.runTask({
    user: 'eve@example.com',
    intent: 'write without the grant',
    agent: { name: 'denier', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x.txt', content: 'hi' } }, { final: 'x' }] } },
    tools: { builtin: ['fs.write', 'fs.read'] },
    grants: { tools: ['fs.read'] },
    resources: { workspace },
  });
  limited = await env.runTask({
    user: 'eve@example.com',
    intent: 'list more often than allowed',
    agent: { name: 'looper', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: {} }, { tool: 'fs.list', args: {} }, { tool: 'fs.list', args: {} }, { final: 'x' }] } },
    tools: { builtin: ['fs.list'] },
    grants: { tools: ['fs.list'] },
    limits: { maxSteps: 1 },
    resources: { workspace },
  });
}, 180_000);

afterAll(async () => env?.close());

describe('CLI views of tasks that closed as Failed', () => {
  it('the runs themselves report denied and limit_exceeded (the precondition)', () => {
    expect(denied.status).toBe('denied');
    expect(limited.status).toBe('limit_exceeded');
  });

  it('warden status / logs / cancel (readTaskView) give the Warden status and result of a denied task', async () => {
    const view = await readTaskView(env.client, denied.workflowId);
    expect(view.execution).toBe('FAILED');
    expect({ status: view.status, reason: view.result?.reason, note: view.note }).toEqual({ status: 'denied', reason: denied.reason, note: undefined });
  });

  it('warden status gives limit_exceeded, not failed, for a task stopped by its step limit', async () => {
    const view = await readTaskView(env.client, limited.workflowId);
    expect(view.status).toBe('limit_exceeded');
    expect(view.result?.steps.length).toBe(limited.steps.length);
  });

  it('warden list --status denied lists the denied task, with its reason', async () => {
    const listed = await listTasks(env.client, { status: 'denied', limit: 200, all: false });
    const mine = listed.find((t) => t.workflowId === denied.workflowId);
    expect(mine).toMatchObject({ status: 'denied', reason: denied.reason });
  });
});
