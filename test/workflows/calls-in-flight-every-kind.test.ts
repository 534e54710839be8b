/**
 * Every kind of tool call stops when the task is killed or cancelled while it runs, or its deadline
 * passes, and the task goes on to its end (the saga, the grant's revocation) only once it has: the
 * executors honour the `runTool` activity's cancellationSignal (on the data flow also the deadline
 * the call is given), and the activity reports cancelled (or ERR_DEADLINE_EXCEEDED) only after the
 * tool's effects have stopped (test/workflows/calls-in-flight.test.ts holds the same table for `proc.run`).
 *
 * Was two open findings:
 * - test/attacks/open/kill-leaves-isolate-tool-running.test.ts: a tool in the isolate (http.fetch,
 *   sql.*, fs.*, custom tools) did not listen for the cancellation; the sandbox client's call ran
 *   to its own timeout and the activity failed ERR_SANDBOX_TIMEOUT, not cancelled, the fetch's
 *   socket open all along. Now the host disposes of the call's isolate and aborts its capability
 *   requests; a host inside a SQLite statement is killed, the statement never committed.
 * - test/attacks/open/kill-leaves-mcp-tool-running.test.ts: a stdio MCP server that ignores
 *   notifications/cancelled went on running its tool (a child process) while the saga discarded
 *   the overlay. Now a call its server has not answered within the grace ends the session: a stdio
 *   server's process tree is killed; an HTTP server's session is terminated (DELETE), what that
 *   server goes on doing being beyond Warden's reach.
 *
 * Observed from the worker (test/support/run-tool-watch.ts): how `runTool` ended, and, when the
 * task's first end activity started, whether `runTool` had ended and which processes of the tool's
 * job were alive; plus each kind's own trace (the held socket closed, no row committed, the HTTP
 * session ended before the saga). No timing assertion: on the old code the isolate calls end
 * ERR_SANDBOX_TIMEOUT (ApplicationFailure) after `toolTimeout`, and the stdio job is alive at the saga.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTask } from '../../client/kill-task';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { parseTask } from '../../task/load-task-file';
import { FIXTURES as MCP_FIXTURES, replayHistories, startDeafHttpMcpServer, type DeafHttpMcpServer } from '../mcp/mcp-test-kit';
import { endStatusOf, processesWith, runToolWatchInterceptor, stoppedCall, until, watchRunToolOf, watchTaskEndOf } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** A loopback host: `/hold/<marker>` is held open for good, `/started/<marker>` answered at once; both remembered by marker. */
let web: Server;
const heldOpen = new Map<string, Promise<void>>();
const arrived = new Set<string>();
let httpMcp: DeafHttpMcpServer;

let env: WardenTestEnv;
let oncall: ApproverKeyFile;
beforeAll(async () => {
  web = createServer((req, res) => {
    const [, kind, marker] = (req.url ?? '').split('/');
    arrived.add(marker ?? '');
    if (kind === 'hold') heldOpen.set(marker ?? '', new Promise((resolve) => req.socket.once('close', () => resolve())));
    else res.end('ok');
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  httpMcp = await startDeafHttpMcpServer();
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor], mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [MCP_FIXTURES] });
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => {
  await env?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
  await httpMcp?.stop();
});

const webHost = () => `127.0.0.1:${(web.address() as AddressInfo).port}`;

/** One tool kind: the task around its call, when it is at work, and what must hold once the task ended. */
interface Kind {
  task: (marker: string, workspace: string, dbFile: string) => Record<string, unknown>;
  working: (marker: string, dbFile: string) => boolean;
  /** Read when the task's end began (its first end activity started). */
  atTaskEnd?: () => unknown;
  expectAtTaskEnd?: unknown;
  after?: (marker: string, dbFile: string) => Promise<void>;
  /**
   * An MCP server's session ends at the grant's expiry, the deadline rounded up to the second
   * (executors/mcp-connection-pool.ts): that may fail the call ERR_MCP_* before the deadline
   * timer's cancellation reaches the activity (at its next heartbeat).
   */
  sessionEndsAtDeadline?: true;
  /** A task with MCP servers does not take the data flow (workflows/data-flow-choice.ts): no data-flow row. */
  originalLoopOnly?: true;
}

const scripted = (tool: string, args: Record<string, unknown>) => ({ name: 'runner', model: { driver: 'scripted', script: [{ tool, args }, { final: 'done' }] } });

const KINDS: Record<string, Kind> = {
  'http.fetch (isolate)': {
    task: (marker) => ({
      agent: scripted('http.fetch', { url: `http://${webHost()}/hold/${marker}` }),
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [webHost()] },
      resources: { hosts: [webHost()] },
    }),
    working: (marker) => heldOpen.has(marker),
    // The request's socket was closed by the host.
    after: (marker) => heldOpen.get(marker)!,
  },
  'sql.exec (isolate, a statement that does not end)': {
    task: (_marker, _workspace, dbFile) => ({
      agent: scripted('sql.exec', {
        database: 'shop',
        // One row at once (the rollback journal appears), then a count that does not end in time.
        sql: "INSERT INTO items (name) SELECT 'x' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x = 1 OR x = 1000000000000000",
      }),
      tools: { builtin: ['sql.exec'] },
      grants: { tools: ['sql.exec'], databases: ['shop'] },
      resources: { databases: { shop: dbFile } },
    }),
    working: (_marker, dbFile) => fs.existsSync(`${dbFile}-journal`),
    // Nothing committed: the row went with the statement's transaction.
    after: async (_marker, dbFile) => {
      const db = new Database(dbFile, { readonly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM items').get()).toEqual({ n: 0 });
      } finally {
        db.close();
      }
    },
  },
  'custom tool (isolate, a CPU loop)': {
    task: (marker) => ({
      agent: scripted('spin', {}),
      tools: { builtin: ['http.fetch'], custom: [{ name: 'spin', description: 'says it started, then spins', capabilities: ['http.fetch'], source: `await warden.http.fetch('http://${webHost()}/started/${marker}'); for (;;) {}` }] },
      grants: { tools: ['spin', 'http.fetch'], hosts: [webHost()] },
      resources: { hosts: [webHost()] },
    }),
    working: (marker) => arrived.has(marker),
  },
  'stdio MCP server that ignores notifications/cancelled': {
    task: (marker, workspace) => ({
      agent: scripted('deaf.wait', { marker }),
      tools: { mcp: { deaf: { command: 'node', args: [join(MCP_FIXTURES, 'cancel-deaf-server.mjs')] } } },
      grants: { tools: ['deaf.wait'] },
      resources: { workspace },
    }),
    working: (marker) => processesWith(marker).length > 0,
    sessionEndsAtDeadline: true,
    originalLoopOnly: true,
  },
  'HTTP MCP server that ignores notifications/cancelled': {
    task: () => ({
      agent: scripted('deafhttp.wait', {}),
      tools: { mcp: { deafhttp: { url: httpMcp.url } } },
      grants: { tools: ['deafhttp.wait'] },
    }),
    working: () => httpMcp.events.includes('call wait'),
    // The session was ended (the cancellation, then DELETE) before the saga: the server's own job is beyond Warden's reach.
    atTaskEnd: () => httpMcp.events.filter((e) => e !== 'session closed'),
    expectAtTaskEnd: ['call wait', 'cancelled', 'DELETE'],
    sessionEndsAtDeadline: true,
    originalLoopOnly: true,
  },
};

/** How the task is ended while its tool runs, and the status it then ends with. */
const WAYS = { kill: 'blocked', cancel: 'cancelled', deadline: 'timed_out' } as const;
type Way = keyof typeof WAYS;
type Loop = 'original loop' | 'data flow';

/**
 * Every kind × kill and cancel on the original loop, and × the deadline on both loops. The data
 * flow's deadline rows fail on the code before patch `warden-flow-call-deadline`: the server timed
 * `runTool` out at the deadline (its schedule-to-close), so the activity ended CancelledFailure at
 * its next heartbeat, after the task's end had begun (was
 * test/attacks/open/deadline-leaves-data-flow-program-running.test.ts). MCP tasks do not take the
 * data flow. The original loop's deadline rows check that its timer, which cancels the call and
 * waits, stops every kind too; its HTTP MCP row failed before the session's end at the grant's
 * expiry (the deadline) cancelled the calls in flight and terminated the session: the pool closed
 * the streams, the call failed ERR_MCP_TOOL_FAILED and the task ended with the deaf server's tool
 * never told (no notifications/cancelled, no DELETE; mcp/mcp-connection.ts `close`).
 */
const CASES: [Way, Loop, string][] = [
  ...(['kill', 'cancel'] as const).flatMap((way) => Object.keys(KINDS).map((kind): [Way, Loop, string] => [way, 'original loop', kind])),
  ...(['original loop', 'data flow'] as const).flatMap((loop) => Object.keys(KINDS).filter((kind) => loop === 'original loop' || KINDS[kind]!.originalLoopOnly !== true).map((kind): [Way, Loop, string] => ['deadline', loop, kind])),
];

describe('a task ended while its tool runs', () => {
  it.each(CASES)('%s (%s), %s: the tool is stopped, and the task ends after it', async (way, loop, kindName) => {
    const kind = KINDS[kindName]!;
    const marker = `warden-stop-${randomUUID()}`;
    const workspace = await mkdtemp(join(tmpdir(), 'warden-stop-kind-'));
    const dbFile = join(workspace, 'shop.db');
    const db = new Database(dbFile);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);');
    db.close();
    httpMcp.events.length = 0;
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'run a tool that takes long',
        // The foundation pack refuses an MCP tool that does not declare its effects.
        policyPacks: [],
        // Longer than any row takes once stopped; on the old code the isolate calls end at it.
        limits: { toolTimeout: '120s', ...(way === 'deadline' ? { deadline: '45s' } : {}) },
        ...kind.task(marker, workspace, dbFile),
        ...(loop === 'data flow' ? { dataFlow: true } : {}),
      },
      'stop-kind.yaml',
      REPO_ROOT,
    );
    const workflowId = `stop-kind-${way}-${loop === 'data flow' ? 'flow-' : ''}${randomUUID()}`;
    const ended = watchRunToolOf(workflowId, marker);
    const taskEnd = watchTaskEndOf(workflowId, marker).then((start) => ({ ...start, ...(kind.atTaskEnd === undefined ? {} : { trace: kind.atTaskEnd() }) }));
    const handle = await env.start(task, workflowId);
    const result = endStatusOf(handle);
    // The tool is at work (or the task ended first: its status says why).
    const early = await Promise.race([until(() => kind.working(marker, dbFile), `${kindName} at work`).then(() => 'working'), result]);
    expect(early).toBe('working');

    if (way === 'kill') expect((await killTask(env.client, { workflowId, key: oncall, reason: 'runaway' })).status).toBe('blocked');
    if (way === 'cancel') await handle.cancel();
    const status = await result;

    // The activity ended as cancelled (on the data flow's deadline: failed ERR_DEADLINE_EXCEEDED by its worker), the tool's job already dead.
    // An MCP session ended at the grant's expiry may fail the call first (ERR_MCP_*): how it failed is then the executor's.
    if (way === 'deadline' && kind.sessionEndsAtDeadline === true) expect(await ended).toMatchObject({ outcome: 'failed', alive: [] });
    else expect(await ended).toEqual(stoppedCall(way, loop));
    // The task went on to its end only after that.
    expect(await taskEnd).toMatchObject({ runToolEnded: true, alive: [], ...(kind.expectAtTaskEnd === undefined ? {} : { trace: kind.expectAtTaskEnd }) });
    expect(status).toBe(WAYS[way]);
    await kind.after?.(marker, dbFile);
    expect(processesWith(marker)).toEqual([]);
  }, 600_000);
});

// The cancelled activities these runs recorded replay against the code.
it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
}, 600_000);
