/**
 * A sandbox host that stops making progress while a task's tool call runs must be found wedged,
 * and the call answered (ERR_SANDBOX_TIMEOUT), before the server times the `runTool` activity
 * out: otherwise the server retries the call while the first attempt's call is still pending, the
 * retry is sent to the same stopped host (still the client's current host), and the tool runs
 * again (atk19a, against the liveness rule of sandbox/sandbox-client.ts).
 *
 * The liveness rule kills a stopped host only once a ping has gone unanswered for the liveness
 * window: with the defaults, 12-13 s past the call's timeout (grace 2 s + ping interval 1 s +
 * window 10 s), and answers any call at the latest 62 s past it (grace + overrun limit). The
 * `runTool` activity's start-to-close was the tool timeout + 10 s (workflows/activity-stubs.ts),
 * sized to the old fixed 2 s grace. On that code the attempt timed out at the server first, was
 * retried (3 attempts), and the held request of this test's tool arrived twice.
 *
 * Real parts: the test's worker and its sandbox host, real Temporal; the host is SIGSTOPped (no
 * thread of it runs, as a host whose main thread is held) once the tool's request arrived.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseTask } from '../../task/load-task-file';
import { endStatusOf, runToolWatchInterceptor, until, watchRunToolOf } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let web: Server;
/** Requests that arrived, by marker: the tool's effect, counted. */
const arrivals = new Map<string, number>();
let env: WardenTestEnv;

beforeAll(async () => {
  // `/hold/<marker>` is never answered: the tool waits on it until its call is stopped.
  web = createServer((req) => {
    const marker = (req.url ?? '').split('/')[2] ?? '';
    arrivals.set(marker, (arrivals.get(marker) ?? 0) + 1);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor] });
});

afterAll(async () => {
  await env?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
});

/** Sandbox host processes this process forked (the test worker's). */
function sandboxHostsOfThisProcess(): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('sandbox-host')) found.push(Number(entry));
    } catch {
      // Gone while listed.
    }
  }
  return found;
}

it('a host stopped during a tool call is killed, and the call answered, before its activity times out: the tool runs once', async () => {
  const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
  const marker = `wedged-${randomUUID()}`;
  const task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'fetch a page that does not answer',
      policyPacks: [],
      limits: { toolTimeout: '2s' },
      agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${host}/hold/${marker}` } }, { final: 'done' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [host] },
      resources: { hosts: [host] },
    },
    'wedged-host.yaml',
    REPO_ROOT,
  );
  const workflowId = `wedged-host-${randomUUID()}`;
  const ended = watchRunToolOf(workflowId, marker);
  const handle = await env.start(task, workflowId);
  const status = endStatusOf(handle);
  await until(() => arrivals.has(marker), 'the tool request arrived', { status });
  const hosts = sandboxHostsOfThisProcess();
  expect(hosts).toHaveLength(1);
  const pid = hosts[0]!;
  process.kill(pid, 'SIGSTOP');
  try {
    expect(await status).toBe('completed');
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Killed as wedged.
    }
  }
  // The first attempt's call was answered by the sandbox (its host found wedged and killed).
  expect(await ended).toMatchObject({ outcome: 'failed', code: 'ERR_SANDBOX_TIMEOUT' });
  // One attempt, not timed out by the server; the tool's request made once.
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const runTool = events.filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'runTool').map((event) => String(event.eventId));
  expect(runTool).toHaveLength(1);
  // A started event records the attempt that ended the activity.
  const attempts = events.filter((event) => runTool.includes(String(event.activityTaskStartedEventAttributes?.scheduledEventId))).map((event) => event.activityTaskStartedEventAttributes!.attempt);
  expect(attempts).toEqual([1]);
  expect((history.events ?? []).some((event) => event.activityTaskTimedOutEventAttributes !== undefined && event.activityTaskTimedOutEventAttributes !== null)).toBe(false);
  expect(arrivals.get(marker)).toBe(1);
}, 180_000);
