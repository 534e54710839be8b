/**
 * Regression test, was the open finding `start-record-storage-failure-not-retried` (s16, atk16). Fixed (s16): a record the host cannot write answers ERR_SHARED_STORAGE retryable (the tool did not run), and a Warden error keeps its own retryability (`recordStart`, sandbox/run-in-isolate.ts).
 *
 * The finding as reported:
 * Severity: low (availability: a call that did not run fails for good where it was retried before).
 *
 * Attack: none needed beyond a shared recovery folder that fails for a moment (ENOSPC, EIO, an NFS
 * ESTALE): an isolate call whose start record cannot be written is now refused by the sandbox host
 * (`recordStart` in sandbox/run-in-isolate.ts) with ERR_SHARED_STORAGE and no `retryable` mark, as
 * is a Warden error it caught (RecoveryError ERR_SHARED_STORAGE "vanished after it was written",
 * which call-starts.ts throws retryable, loses the mark: CallOutcome has no field for it). The
 * activity turns the answer into a ToolError without `retryable` (callTool), so Temporal does not
 * retry the call and the model is told the tool failed, though the tool never ran and a retry
 * would have. Before this branch the activity wrote the record itself: the file-system error went
 * out of the activity unconverted, which Temporal retries as an infrastructure failure
 * (activities/to-application-failure.ts), and the retryable RecoveryError stayed retryable.
 *
 * Here the record's task folder is blocked by a file (mkdir fails), a deterministic stand-in for
 * the moment the shared folder fails: the thrown failure, at the activity boundary, is
 * non-retryable on this branch and retried on main; the tool did not run either way.
 *
 * Suggested fix: the host answers a record it could not write as "the call did not run, may be run
 * again": `retryable: true` on the response (as a retiring host's refusal is), and keeps a caught
 * WardenError's `retryable`; only ERR_TOOL_CANCELLED (fenced) stays final.
 *
 * Real parts: a keystore and SQLite credential stores in a state folder, a real sandbox host, a
 * real SQLite shop, `executeToolCall` and the activity boundary's `toApplicationFailure`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executeToolCall } from '../../activities/run-tool';
import type { ToolProgress } from '../../activities/call-outcome';
import type { ActivityDeps } from '../../activities/index';
import { toApplicationFailure } from '../../activities/to-application-failure';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import type { IssuedGrant } from '../../identity/task-grant';
import { callStartPathOf, taskKeyOf } from '../../recovery/recovery-paths';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { Task } from '../../task/task-schema';
import { openStockShop } from '../support/stock-tools';

const WORKFLOW_ID = 'w-start-record-storage';
let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let host: SandboxClient;
let task: Task;
let grant: IssuedGrant;
let stockQty: () => number;

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-record-storage-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  host = await SandboxClient.start({ identityStateDir: stateDir });
  ({ task, grant, stockQty } = await openStockShop(stateDir, WORKFLOW_ID, keystore, stores));
}, 120_000);

afterAll(async () => {
  await host?.close();
  stores?.close();
});

it("a start record the shared folder could not take fails the call retryably: its tool never ran", async () => {
  const rootRunId = 'run-1';
  const callId = `${WORKFLOW_ID}:${rootRunId}:0`;
  const startFile = callStartPathOf(stateDir, taskKeyOf(WORKFLOW_ID, rootRunId), callId);
  // The record's folder cannot be made (the shared folder fails for the moment).
  fs.mkdirSync(path.dirname(path.dirname(startFile)), { recursive: true });
  fs.writeFileSync(path.dirname(startFile), 'in the way');
  const stockBefore = stockQty();
  const progress: ToolProgress = { started: false };
  const deps = { sandbox: host, stateDir, identity: { keystore, stores } } as unknown as ActivityDeps;
  const error = await executeToolCall(deps, { rootWorkflowId: WORKFLOW_ID, rootRunId, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'reserve', args: { item: 'tea', qty: 1 }, progress }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  // What Temporal gets at the activity boundary: an ApplicationFailure marked non-retryable is final; anything else is retried.
  const failure = toApplicationFailure(error);
  const retried = !(failure instanceof ApplicationFailure && failure.nonRetryable);
  expect({ toolRan: stockQty() !== stockBefore, retried, failure: failure instanceof Error ? failure.message.slice(0, 100) : String(failure) }).toMatchObject({ toolRan: false, retried: true });
}, 120_000);
