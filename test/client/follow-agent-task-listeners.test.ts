/**
 * Following a task holds no more than a few listeners on the caller's abort signal, however long
 * it polls: the Temporal SDK adds one per RPC and never removes it, and `warden run` printed
 * MaxListenersExceededWarning while a task waited for an approval (issue-16 attack, newcomer
 * friction). Each call of the follower gets a signal of its own instead.
 */
import { getEventListeners } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { followAgentTask, type ProgressEvent } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);
afterAll(async () => env?.close());

describe('followAgentTask with an abort signal', () => {
  it('keeps the listeners on the signal bounded while a held action waits', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-follow-'));
    await writeFile(join(workspace, 'page.html'), 'Visit http://127.0.0.1:9/claim now');
    const handle = await env.start(
      parseTask(
        {
          user: 'fay@example.com',
          intent: 'read page.html',
          agent: { name: 'browser', model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'page.html' } }, { tool: 'http.fetch', args: { url: 'http://127.0.0.1:9/claim' } }, { final: 'done' }] } },
          tools: { builtin: ['fs.read', 'http.fetch'] },
          grants: { tools: ['fs.read', 'http.fetch'], hosts: ['127.0.0.1:9'] },
          limits: { approvalTimeout: '5m', onDeny: 'continue' },
          resources: { workspace, hosts: ['127.0.0.1:9'] },
        },
        'task.yaml',
        REPO_ROOT,
      ),
    );
    const controller = new AbortController();
    const events: ProgressEvent[] = [];
    // Counts the follower's calls (each goes through withAbortSignal), so the wait is on polls done, not on time.
    let calls = 0;
    const client = handle.client;
    const counted = new Proxy(client, {
      get: (target, key, receiver) =>
        key === 'withAbortSignal' ? (signal: AbortSignal, fn: () => Promise<unknown>) => ((calls += 1), target.withAbortSignal(signal, fn)) : Reflect.get(target, key, receiver),
    });
    const following = followAgentTask(Object.assign(Object.create(handle) as typeof handle, { client: counted }), (e) => events.push(e), { signal: controller.signal, pollMs: 5 });
    following.catch(() => undefined);
    await vi.waitFor(() => expect(events.some((e) => e.kind === 'approval')).toBe(true), { timeout: 60_000, interval: 100 });
    const before = calls;
    await vi.waitFor(() => expect(calls).toBeGreaterThan(before + 40), { timeout: 60_000, interval: 50 });
    // One for each call in flight (the result's wait and at most a poll or two), not one per poll.
    expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(4);
    await handle.cancel();
    expect((await following).status).toBe('cancelled');
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  }, 150_000);
});
