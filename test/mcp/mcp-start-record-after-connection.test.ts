/**
 * Regression test, was the open finding `mcp-start-record-before-server-reached` (s16, atk16). Fixed (s16): an MCP call's start record is written by `McpConnection.callTool` once the connection is open and its listing checked, right before `tools/call` is sent (`beforeSend`, filled by activities/run-tool.ts): a server that cannot be reached leaves no record.
 *
 * The finding as reported:
 * Severity: low (the class of the fixed `start-record-before-host-refusal`, for MCP tools: a
 * compensating tool runs for an effect never made, `unbook`/`release` for a `book`/`reserve` the
 * server never received).
 *
 * Attack: for an MCP tool the activity still writes the call's start record `started` right after
 * its own credential check (`toolStarting(…, 'activity')` in `executeOutsideIsolate`,
 * activities/run-tool.ts), before anything reaches the server: opening the server's connection
 * (`McpConnectionPool.connection`: a remote server unreachable, a stdio server that cannot start, a
 * listing that no longer matches its pin when a worker opens it again) and the request itself come
 * after it. A call that fails there never reached the server, yet reads started; with the call in
 * doubt (its failure, a cancel in the retry backoff, its data plane lost) the saga's compensation
 * (`startedOnly`, recovery/run-compensation.ts) finds `started` and runs the compensating tool once
 * the server is back. An outage of the server at the moment of the call is enough; whoever can make
 * the server refuse connections briefly (its operator, a network attacker between worker and
 * server) turns a call into an unconditional compensation.
 *
 * Why it works: this branch moved the isolate tools' record to the point where the tool's code
 * starts (the sandbox host, once it accepted the call), but left MCP tools writing it before the
 * executor's own refusals (as on main: not a regression, the same class left open). For an MCP
 * tool "the tool started" becomes true only when the request is written to the server's
 * transport. (Program tools: the saga of a current run registers only their overlay undo, no
 * compensating tool, `registerToolCall` in workflows/task-saga.ts.)
 *
 * Suggested fix: write the record for an MCP call after the connection is open and its pin checked,
 * right before `tools/call` is sent (e.g. a `beforeSend` hook of `McpConnection.callTool` that the
 * activity fills with `markCallStarted`); a failure before it leaves no record, so the compensation
 * fences the call `never`.
 *
 * Real parts: a real streamable-HTTP MCP server on loopback (the SDK's server transport), the real
 * connection pool and MCP executor through `executeToolCall`, a keystore and SQLite credential
 * stores in a state folder, the real start record and `runCompensation`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executeToolCall } from '../../activities/run-tool';
import type { ToolProgress } from '../../activities/call-outcome';
import type { ActivityDeps } from '../../activities/index';
import { McpConnectionPool } from '../../executors/mcp-connection-pool';
import { openTaskServers } from '../../executors/mcp-executor';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { hashIntent } from '../../identity/intent-hash';
import { issueTaskGrant } from '../../identity/task-grant';
import { readCallStart } from '../../recovery/call-starts';
import type { Compensation } from '../../recovery/compensation';
import { callStartPathOf, taskKeyOf } from '../../recovery/recovery-paths';
import { runCompensation } from '../../recovery/run-compensation';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';
import { startBookingServer, type BookingServer } from '../support/booking-mcp-server';

const WORKFLOW_ID = 'w-mcp-start-record';
const ROOT_RUN_ID = 'run-1';
let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let booker: BookingServer;
const pools: McpConnectionPool[] = [];

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-mcp-start-record-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  booker = await startBookingServer(async () => undefined);
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await booker?.close();
  stores?.close();
});

it('an MCP call that never reached its server leaves no start record, and no compensating tool runs for it', async () => {
  const task: Task = parseTask(
    {
      user: 'sam@example.com',
      intent: 'book seat 12A',
      policyPacks: [],
      agent: { name: 'booker', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { mcp: { late: { url: booker.url, tools: { book: { compensate: { tool: 'late.unbook', args: { seat: '/args/seat' } } } } } } },
      grants: { tools: ['late.book', 'late.unbook'] },
    },
    'booking.yaml',
    stateDir,
  );
  const deadlineAt = Date.now() + 10 * 60_000;
  // The task starts: its server's tools are listed and pinned, as `openToolSources` does.
  const startPool = new McpConnectionPool();
  pools.push(startPool);
  const mcpDeps = { pool: startPool, env: process.env, stateDir };
  const listings = await openTaskServers(mcpDeps, task, WORKFLOW_ID, deadlineAt, ROOT_RUN_ID);
  const pinned: Task = { ...task, tools: { ...task.tools, mcpPinned: listings } };
  // The server goes away (an outage); the call lands on a worker that opens the connection afresh.
  await startPool.close();
  await booker.close();
  const callPool = new McpConnectionPool();
  pools.push(callPool);

  const grant = await issueTaskGrant(keystore, {
    workflowId: WORKFLOW_ID,
    user: 'sam@example.com',
    intentHash: hashIntent('book seat 12A'),
    agent: { name: 'booker', model: { id: 'scripted', version: '1' } },
    grants: { tools: ['late.book', 'late.unbook'], subagents: [], hosts: [], databases: [] },
    limits: { maxSteps: 10, toolTimeoutMs: 5000, toolMemoryMb: 64 },
    expiresAt: deadlineAt,
  });
  stores.grants.saveGrant(grant);
  const callId = `${WORKFLOW_ID}:${ROOT_RUN_ID}:0`;
  const taskKey = taskKeyOf(WORKFLOW_ID, ROOT_RUN_ID);
  const progress: ToolProgress = { started: false };
  const deps = { stateDir, identity: { keystore, stores }, mcp: { pool: callPool } } as unknown as ActivityDeps;
  const error = await executeToolCall(deps, { rootWorkflowId: WORKFLOW_ID, rootRunId: ROOT_RUN_ID, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task: pinned, tool: 'late.book', args: { seat: '12A' }, progress }).then(
    () => undefined,
    (e: unknown) => e as { code?: unknown; message?: string },
  );
  // The call failed before anything reached the server.
  expect({ code: error?.code, serverSaw: [...booker.events] }).toEqual({ code: 'ERR_MCP_UNAVAILABLE', serverSaw: [] });

  // The task ends with the call in doubt: the saga's compensation of `late.book` (the server is back by then).
  let unbooks = 0;
  const compensation: Compensation = {
    kind: 'tool',
    tool: 'late.unbook',
    forTool: 'late.book',
    callId,
    input: { compensationId: `late.unbook:${callId}`, original: { tool: 'late.book', args: { seat: '12A' }, output: null } },
  };
  const outcome = await runCompensation(compensation, {
    stateDir,
    taskKey,
    startedOnly: 'fence',
    runTool: async () => {
      unbooks += 1;
      return null;
    },
  });
  // Expected: no record of a start, the call fenced `never`, no unbook. This branch: `started`, unbook run.
  expect({ record: await readCallStart(callStartPathOf(stateDir, taskKey, callId)), status: outcome.status, unbooks }).toEqual({ record: 'never', status: 'not-run', unbooks: 0 });
}, 120_000);
