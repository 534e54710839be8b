/**
 * A call's start record (recovery/call-starts.ts) says `started` only once the sandbox host has
 * accepted the call, right before the tool's code runs (s15, atk15c, was the open finding
 * `start-record-before-host-refusal`, low). Before, the activity wrote `started` and only then
 * sent the call, so a call the host refused without running any of the tool's code (its
 * credential gate: a credential refused, revoked by a kill, already used) read started, and with
 * the call in doubt (its failure, a cancel in the retry backoff, its data plane lost) its
 * compensating tool ran for an effect never made: `release` put 100 back for a `reserve` that
 * never ran (stock 1 -> 101).
 *
 * Each row runs one call of `reserve` through `executeToolCall` on a real sandbox host, then the
 * saga's compensation of that call (`runCompensation` with its real start record), and checks the
 * record, the compensation's outcome and the stock. Real parts: keystores and SQLite stores in
 * state folders, two real sandbox hosts (one whose gate trusts another folder's keys, so it
 * refuses every credential of this worker: any refusal before the tool runs), a real SQLite shop.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executeToolCall } from '../../activities/run-tool';
import type { ToolProgress } from '../../activities/call-outcome';
import type { ActivityDeps } from '../../activities/index';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import type { IssuedGrant } from '../../identity/task-grant';
import { fenceUnstartedCall, readCallStart } from '../../recovery/call-starts';
import type { Compensation } from '../../recovery/compensation';
import { callStartPathOf, taskKeyOf } from '../../recovery/recovery-paths';
import { runCompensation } from '../../recovery/run-compensation';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { Task } from '../../task/task-schema';
import { openStockShop } from '../support/stock-tools';

let stateDir: string;
let otherDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let otherStores: LocalCredentialStores;
let refusingHost: SandboxClient;
let acceptingHost: SandboxClient;
let task: Task;
let grant: IssuedGrant;
let dbFile: string;
let stockQty: () => number;
const WORKFLOW_ID = 'w-start-record';

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-record-'));
  otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-start-record-other-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  await openKeystore({ stateDir: otherDir });
  otherStores = openCredentialStores({ stateDir: otherDir });
  // This host's gate trusts another folder's keys: it refuses this worker's credentials before any tool code runs.
  refusingHost = await SandboxClient.start({ identityStateDir: otherDir });
  acceptingHost = await SandboxClient.start({ identityStateDir: stateDir });
  ({ task, grant, dbFile, stockQty } = await openStockShop(stateDir, WORKFLOW_ID, keystore, stores));
}, 120_000);

afterAll(async () => {
  await refusingHost?.close();
  await acceptingHost?.close();
  stores?.close();
  otherStores?.close();
});

interface Row {
  name: string;
  host: () => SandboxClient;
  /** Done to the call before its activity runs. */
  before?: (startFile: string, callId: string) => Promise<unknown>;
  signal?: () => AbortSignal;
  /** What the call's failure code must match; undefined: the call succeeds. */
  failure?: RegExp;
  record: 'started' | 'never';
  compensation: 'done' | 'not-run';
  /** The stock's change from the call and its compensation together. */
  stockChange: number;
}

const ROWS: Row[] = [
  // The finding: refused by the host's credential gate, the tool never ran.
  { name: 'the host refuses the credential', host: () => refusingHost, failure: /^ERR_CREDENTIAL_/, record: 'never', compensation: 'not-run', stockChange: 0 },
  // Cancelled before it was sent: nothing reached the host.
  { name: 'cancelled before it was sent', host: () => acceptingHost, signal: () => AbortSignal.abort(), failure: /./, record: 'never', compensation: 'not-run', stockChange: 0 },
  // Fenced off by its compensation first: the host refuses to start it.
  { name: 'fenced off before the host starts it', host: () => acceptingHost, before: (file, callId) => fenceUnstartedCall(file, callId), failure: /^ERR_TOOL_CANCELLED$/, record: 'never', compensation: 'not-run', stockChange: 0 },
  // Control: the host accepted and the tool ran (reserve 1), so release runs (+100).
  { name: 'the host accepts and the tool runs', host: () => acceptingHost, record: 'started', compensation: 'done', stockChange: 99 },
];

it.each(ROWS.map((row, index) => [row.name, row, index] as const))('%s', async (_name, row, index) => {
  const rootRunId = `run-${index}`;
  const callId = `${WORKFLOW_ID}:${rootRunId}:0`;
  const taskKey = taskKeyOf(WORKFLOW_ID, rootRunId);
  const startFile = callStartPathOf(stateDir, taskKey, callId);
  await row.before?.(startFile, callId);
  const stockBefore = stockQty();
  const progress: ToolProgress = { started: false };
  const deps = { sandbox: row.host(), stateDir, identity: { keystore, stores } } as unknown as ActivityDeps;
  const signal = row.signal?.();
  const error = await executeToolCall(deps, { rootWorkflowId: WORKFLOW_ID, rootRunId, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'reserve', args: { item: 'tea', qty: 1 }, progress, ...(signal === undefined ? {} : { signal }) }).then(
    () => undefined,
    (e: unknown) => e as { code?: unknown; name?: string; message?: string },
  );
  if (row.failure === undefined) expect(error, error?.message).toBeUndefined();
  else expect(typeof error?.code === 'string' ? error.code : error?.name, error?.message).toMatch(row.failure);
  // The task ends with the call in doubt (its failure, a cancel in the retry backoff, its data plane lost): the saga's compensation.
  const compensation: Compensation = {
    kind: 'tool',
    tool: 'release',
    forTool: 'reserve',
    callId,
    input: { compensationId: `release:${callId}`, original: { tool: 'reserve', args: { item: 'tea', qty: 1 }, output: null } },
  };
  const outcome = await runCompensation(compensation, {
    stateDir,
    taskKey,
    startedOnly: 'fence',
    runTool: async () => {
      const db = new Database(dbFile);
      try {
        db.prepare("UPDATE stock SET qty = qty + 100 WHERE item = 'tea'").run();
      } finally {
        db.close();
      }
      return null;
    },
  });
  expect({ record: await readCallStart(startFile), status: outcome.status, stockChange: stockQty() - stockBefore }).toEqual({
    record: row.record,
    status: row.compensation,
    stockChange: row.stockChange,
  });
}, 120_000);
