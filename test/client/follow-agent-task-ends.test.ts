/**
 * Following a task ends when its result is in, leaving nothing of its progress polls behind
 * (issue 17: `warden run` adding time to the task). The wait before the next poll was a timer
 * nobody cleared: the result resolved the wait, but the timer stayed armed and kept the process
 * (`warden run`, which exits when nothing is left to do) alive for up to a poll interval after
 * the task. Checked on the timers the follower arms, not on time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

/** A poll interval no other timer of this process uses: the timers armed with it are the follower's waits. */
const POLL_MS = 987_654;

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);
afterAll(async () => env?.close());
afterEach(() => vi.restoreAllMocks());

describe('followAgentTask', () => {
  it('clears the wait before its next poll once the result is in', async () => {
    const handle = await env.start(parseTask({ user: 'gil@example.com', intent: 'say done', agent: { name: 'quick', model: { driver: 'scripted', script: [{ final: 'done' }] } } }, 'task.yaml', REPO_ROOT));
    const armed: unknown[] = [];
    const cleared = new Set<unknown>();
    const setTimer = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: () => void, ms?: number) => {
      const timer = setTimer(callback, ms);
      if (ms === POLL_MS) armed.push(timer);
      return timer;
    }) as typeof setTimeout);
    const clearTimer = globalThis.clearTimeout;
    vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((timer?: Parameters<typeof clearTimeout>[0]) => {
      cleared.add(timer);
      clearTimer(timer);
    }) as typeof clearTimeout);

    const result = await followAgentTask(handle, () => undefined, { pollMs: POLL_MS });
    expect(result.status).toBe('completed');
    // The first poll runs at once, then waits POLL_MS (far longer than the task): at least one wait was armed.
    expect(armed.length).toBeGreaterThanOrEqual(1);
    expect(armed.filter((timer) => !cleared.has(timer))).toEqual([]);
  }, 120_000);
});
