/**
 * Open finding (s15, atk15c), severity low: the start record (recovery/call-starts.ts) says a
 * call's tool started before the sandbox host has agreed to run it, so a call the host refused
 * without running its tool still reads `started`, and its compensating tool runs for an effect
 * that was never made: the `release` that puts 100 back for a `reserve` that never ran (stock
 * 1 -> 101), the very symptom patch `warden-tool-undo-started` was made to end.
 *
 * Why: `toolStarting` (activities/run-tool.ts) writes `started` and only then calls
 * `deps.sandbox.run`; the host can still refuse the call before any of the tool's code runs: its
 * credential gate (a credential refused, revoked by a kill, already used), a host that is retiring
 * after V8 lost one of its isolates ("the call did not run and may be run again", retryable), a
 * host that did not start. The activity then fails (or is retried, and a cancel in the backoff or
 * a lost data plane ends the task before the next attempt); the saga registers the call in doubt,
 * its compensation finds `started` and runs the compensating tool. The record's own invariant
 * ("either the call started and its compensating tool runs, or it never starts and nothing runs
 * for it") does not hold for these.
 *
 * Reproduce: `npx vitest run --config vitest.open-findings.config.mts test/attacks/open/start-record-before-host-refusal.test.ts`.
 * Real parts: a keystore and SQLite stores in a state folder, a real sandbox host whose credential
 * gate reads another state folder's keys (so it refuses every credential of this worker, a
 * stand-in for any refusal before the tool runs), a real SQLite shop, `runCompensation` with its
 * real start record. Expected: the stock is untouched and the compensation reads `not-run`;
 * today the record says `started` and the compensation runs `release`.
 *
 * Suggested fix: record `started` only once the host has accepted the call, right before the
 * isolate runs its code (e.g. a synchronous `starting` notice from the host on its notice pipe that
 * the client turns into the record before the host goes on, as `reached` notices are), or have a
 * refusal that vouches "did not run" keep the call fenceable; a control row (a call that ran and
 * failed still has its compensating tool run) exists in test/workflows/call-never-started-not-compensated.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executeToolCall } from '../../../activities/run-tool';
import type { ToolProgress } from '../../../activities/call-outcome';
import type { ActivityDeps } from '../../../activities/index';
import { openCredentialStores, type LocalCredentialStores } from '../../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../../identity/keystore';
import { hashIntent } from '../../../identity/intent-hash';
import { issueTaskGrant, type IssuedGrant } from '../../../identity/task-grant';
import { readCallStart } from '../../../recovery/call-starts';
import type { Compensation } from '../../../recovery/compensation';
import { callStartPathOf, taskKeyOf } from '../../../recovery/recovery-paths';
import { runCompensation } from '../../../recovery/run-compensation';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import { parseTask } from '../../../task/load-task-file';
import type { Task } from '../../../task/task-schema';
import { STOCK_TOOLS } from '../../support/stock-tools';

let stateDir: string;
let otherDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let otherStores: LocalCredentialStores;
let sandbox: SandboxClient;
let task: Task;
let grant: IssuedGrant;
let dbFile: string;

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-refused-'));
  otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-refused-other-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  await openKeystore({ stateDir: otherDir });
  otherStores = openCredentialStores({ stateDir: otherDir });
  // The host's gate trusts another folder's keys: it refuses this worker's credentials before any tool code runs.
  sandbox = await SandboxClient.start({ identityStateDir: otherDir });
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-refused-ws-'));
  dbFile = path.join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1);");
  db.close();
  task = parseTask(
    {
      user: 'erin@example.com',
      intent: 'reserve tea',
      agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { builtin: ['sql.exec'], custom: STOCK_TOOLS },
      grants: { tools: ['reserve', 'release', 'sql.exec'], databases: ['shop'] },
      resources: { workspace, databases: { shop: dbFile } },
    },
    'clerk.yaml',
    stateDir,
  );
  grant = await issueTaskGrant(keystore, {
    workflowId: 'w-start-refused',
    user: 'erin@example.com',
    intentHash: hashIntent('reserve tea'),
    agent: { name: 'clerk', model: { id: 'scripted', version: '1' } },
    grants: { tools: ['reserve', 'release', 'sql.exec'], subagents: [], hosts: [], databases: ['shop'] },
    limits: { maxSteps: 10, toolTimeoutMs: 5000, toolMemoryMb: 64 },
    expiresAt: Date.now() + 10 * 60_000,
  });
  stores.grants.saveGrant(grant);
}, 120_000);

afterAll(async () => {
  await sandbox?.close();
  stores?.close();
  otherStores?.close();
});

function stock(): unknown {
  const db = new Database(dbFile, { readonly: true });
  try {
    return db.prepare("SELECT qty FROM stock WHERE item = 'tea'").get();
  } finally {
    db.close();
  }
}

it('a call the sandbox host refused before its tool ran has no compensating tool run for it', async () => {
  const rootWorkflowId = 'w-start-refused';
  const rootRunId = 'run-1';
  const callId = `${rootWorkflowId}:${rootRunId}:0`;
  const progress: ToolProgress = { started: false };
  const deps = { sandbox, stateDir, identity: { keystore, stores } } as unknown as ActivityDeps;
  const error = await executeToolCall(deps, { rootWorkflowId, rootRunId, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'reserve', args: { item: 'tea', qty: 1 }, progress }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );
  // Preconditions: the host refused the call, and `reserve` never ran.
  expect(error?.code, error?.message).toMatch(/^ERR_CREDENTIAL_/);
  expect(stock()).toEqual({ qty: 1 });
  // The task ends with the call in doubt (its failure, a cancel in the retry backoff, its data plane lost): the saga's compensation.
  const compensation: Compensation = {
    kind: 'tool',
    tool: 'release',
    forTool: 'reserve',
    callId,
    input: { compensationId: `release:${callId}`, original: { tool: 'reserve', args: { item: 'tea', qty: 1 }, output: null } },
  };
  const released: string[] = [];
  const outcome = await runCompensation(compensation, {
    stateDir,
    taskKey: taskKeyOf(rootWorkflowId, rootRunId),
    startedOnly: 'fence',
    runTool: async (tool) => {
      released.push(tool);
      return null;
    },
  });
  expect({ record: await readCallStart(callStartPathOf(stateDir, taskKeyOf(rootWorkflowId, rootRunId), callId)), status: outcome.status, released }).toEqual({
    record: 'never',
    status: 'not-run',
    released: [],
  });
}, 120_000);
