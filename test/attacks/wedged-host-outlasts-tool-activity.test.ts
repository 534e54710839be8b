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
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { parseTask } from '../../task/load-task-file';
import { endStatusOf, runToolWatchInterceptor, until, watchRunToolOf } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv } from '../support/warden-test-env';

let web: Server;
/** Requests that arrived, by marker: the tool's effect, counted. */
const arrivals = new Map<string, number>();
let folder: string;
let latePreload: string;

beforeAll(async () => {
  // `/hold/<marker>` and `/late/<marker>` are never answered: the tool waits on them until its call is stopped.
  web = createServer((req) => {
    const marker = (req.url ?? '').split('/')[2] ?? '';
    arrivals.set(marker, (arrivals.get(marker) ?? 0) + 1);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'wedged-host-'));
  latePreload = path.join(folder, 'late-host.js');
  // Test-only, in the sandbox host: once a call fetching a `/late/` URL arrives, every message but
  // a ping is taken up LATE_MS late, in order (as behind a SQL process still booting, or a slow
  // credential store): the host's main thread is free and answers pings at once.
  fs.writeFileSync(
    latePreload,
    `if (process.argv.some((arg) => arg.includes('sandbox-host'))) {
  const on = process.on.bind(process);
  let chain;
  process.on = (event, listener) => event !== 'message' ? on(event, listener) : on(event, (message, handle) => {
    if (chain === undefined && message && message.type === 'run' && JSON.stringify(message.input ?? null).includes('/late/')) chain = new Promise((resolve) => setTimeout(resolve, ${LATE_MS}));
    if (chain === undefined || (message && message.type === 'ping')) return listener(message, handle);
    chain = chain.then(() => listener(message, handle));
  });
}
`,
  );
});

afterAll(async () => {
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
  fs.rmSync(folder, { recursive: true, force: true });
});

/** How late the row (late) host takes its calls up: past the old activity timeout (tool timeout + 10 s), within the sandbox's overrun limit. */
const LATE_MS = 20_000;
const TOOL_TIMEOUT_MS = 2000;

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

interface Row {
  /** The path the tool fetches (`hold` or `late`). */
  kind: 'hold' | 'late';
  /** The host's environment (undefined: the worker's default host). */
  hostEnv?: () => NodeJS.ProcessEnv;
  /** Done to the worker's host once the task started. */
  act: (marker: string) => Promise<(() => void) | undefined>;
  /** How the sandbox may answer the first attempt's call. */
  codes: string[];
  /** How many times the tool's request may arrive (the old code's kill at timeout + 2 s stopped a late host's call before its tool ran). */
  maxArrivals: number;
}

const ROWS: Record<string, Row> = {
  // Killed 12-13 s past the timeout (a ping unanswered for the liveness window).
  'a host stopped during the call (its main thread makes no progress)': {
    kind: 'hold',
    act: async (marker) => {
      await until(() => arrivals.has(marker), 'the tool request arrived');
      const hosts = sandboxHostsOfThisProcess();
      expect(hosts).toHaveLength(1);
      const pid = hosts[0]!;
      process.kill(pid, 'SIGSTOP');
      return () => {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Killed as wedged.
        }
      };
    },
    codes: ['ERR_SANDBOX_TIMEOUT'],
    maxArrivals: 1,
  },
  // Answers pings ('absent', then 'running'); the call is taken up 20 s late and answered by the host at its own timeout.
  'a host that takes the call up 20 s late (answering pings meanwhile)': {
    kind: 'late',
    hostEnv: () => ({ PATH: process.env['PATH'], NODE_OPTIONS: `--require ${latePreload}` }),
    act: async () => undefined,
    // Its own timeout; or, taken up past the credential's lifetime (the tool's timeout + 10 s of setup), refused by the host's gate.
    codes: ['ERR_SANDBOX_TIMEOUT', 'ERR_CREDENTIAL_EXPIRED'],
    maxArrivals: 1,
  },
};

it.each(Object.keys(ROWS))('%s: the call is answered by the sandbox before its activity times out, and the tool runs at most once', async (name) => {
  const row = ROWS[name]!;
  const hostEnv = row.hostEnv;
  const env = await startWardenTestEnv(process.env, {
    activityInterceptors: [runToolWatchInterceptor],
    ...(hostEnv === undefined ? {} : { sandboxHost: { take: async (options) => SandboxClient.boot({ ...options, env: hostEnv() }), discard: async () => undefined } }),
  });
  try {
    const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    const marker = `wedged-${randomUUID()}`;
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'fetch a page that does not answer',
        policyPacks: [],
        limits: { toolTimeout: `${TOOL_TIMEOUT_MS}ms` },
        agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${host}/${row.kind}/${marker}` } }, { final: 'done' }] } },
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
    const undo = await row.act(marker);
    try {
      expect(await status).toBe('completed');
    } finally {
      undo?.();
    }
    // The first attempt's call was answered by the sandbox (its host found wedged and killed, or the host itself).
    const end = await ended;
    expect(end).toMatchObject({ outcome: 'failed' });
    expect(row.codes).toContain(end.code);
    // One attempt, not timed out by the server; the tool's request made once.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const runTool = events.filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'runTool').map((event) => String(event.eventId));
    expect(runTool).toHaveLength(1);
    // A started event records the attempt that ended the activity.
    const attempts = events.filter((event) => runTool.includes(String(event.activityTaskStartedEventAttributes?.scheduledEventId))).map((event) => event.activityTaskStartedEventAttributes!.attempt);
    expect(attempts).toEqual([1]);
    expect(arrivals.get(marker) ?? 0).toBeLessThanOrEqual(row.maxArrivals);
  } finally {
    await env.close();
  }
}, 240_000);
