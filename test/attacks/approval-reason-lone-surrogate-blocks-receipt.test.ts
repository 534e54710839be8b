/**
 * Regression (issue 17, lone-surrogate handling: an entry point not made well-formed; was
 * test/attacks/open/): free text a client sends into a task.
 *
 * An approver's decision carries a free-text `reason` (the console's POST /api/approvals/decide
 * body, `warden approve --reason`, or any client's `warden.decideApproval` Update), and so does a
 * kill (`warden kill --reason`). JSON text `"\ud83d"` parses to a lone surrogate; it was signed as
 * `JSON.stringify` (which escapes it), verified by `JSON.parse` (which restores it) and stored in
 * the step's `approval`; the signed receipt's canonical JSON refuses it, so `warden receipt` died
 * with a raw TypeError, no exit code and no receipt, approved, denied or killed alike.
 *
 * Safe behaviour asserted: Warden's clients (client/approvals.ts, client/kill-task.ts; the console
 * and CLI go through them) mend the reason BEFORE signing it, so what is signed is what is stored;
 * another client's ill-formed reason is rejected by the Update's validator (nothing stored); and a
 * receipt of a task recorded before the fix (its result holding a lone surrogate) is written with
 * U+FFFD and a note, exit 0, while what the receipt still cannot hold is a typed
 * ERR_ATTESTATION_MALFORMED naming the field, never a raw TypeError.
 *
 * Real parts: the real Temporal server and worker (test/support/warden-test-env.ts), a registered
 * approver's real Ed25519 key, a real SQLite database, `warden receipt` in this process.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { writeReceiptOf } from '../../cli/commands/receipt';
import { decideApproval } from '../../client/approvals';
import { followAgentTask } from '../../client/start-agent-task';
import { killedTaskResult, killTask } from '../../client/kill-task';
import { WardenError } from '../../errors';
import { issueApproverKey, signApprovalDecision, type ApproverKeyFile } from '../../identity/approval-decision';
import { callDigestOf } from '../../recovery/call-key';
import { openApproverStore } from '../../identity/approver-registry';
import { parseTask } from '../../task/load-task-file';
import type { PendingApproval, TaskResult } from '../../task/task-run';
import { approvalUpdate, KILL_ACTION, KILL_REQUEST_ID, killUpdate, taskStateQuery } from '../../workflows/definitions';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

let env: WardenTestEnv;
let approver: ApproverKeyFile;

beforeAll(async () => {
  env = await startWardenTestEnv();
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  approver = (await issueApproverKey(store, { name: `ops-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => env?.close());

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { address } = testTemporalAddress();
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() } };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** A finished task of this file (approved), kept for the receipt-of-an-old-history cases. */
let approvedTask: { workflowId: string; result: TaskResult } | undefined;

describe('an approval whose reason holds a lone surrogate', () => {
  it.each([
    ['approved', true],
    ['denied', false],
  ])('(%s) is mended before it is signed, and the task\'s receipt is written', async (_name, approved) => {
    const handle = await env.start(heldTask());
    const pending = await waitForPending(handle);
    // What the console's body `{"reason":"looks fine \ud83d"}` parses to (a browser's cut of an emoji).
    const reason = 'looks fine \ud83d';
    const outcome = await decideApproval(env.client, { workflowId: handle.workflowId, requestId: pending.requestId, approved, reason, key: approver });
    expect(outcome.status).toBe(approved ? 'approved' : 'denied');
    const result = await followAgentTask(handle);
    expect(result.steps[1]?.approval?.reason).toBe('looks fine \ufffd');
    if (approved) approvedTask = { workflowId: handle.workflowId, result };
    await expectReceipt(handle.workflowId);
  });

  it("from another client (signed over the lone surrogate) is rejected by the Update's validator, unstored", async () => {
    const handle = await env.start(heldTask());
    const pending = await waitForPending(handle);
    const { runId } = await handle.describe();
    const reason = 'raw \udc00 client';
    const signature = await signApprovalDecision(approver, { workflowId: handle.workflowId, runId, requestId: pending.requestId, action: callDigestOf(pending.tool, pending.args), approved: true, reason });
    const refused = await handle.executeUpdate(approvalUpdate, { args: [{ requestId: pending.requestId, approved: true, reason, signature }] }).then(
      () => undefined,
      (error: unknown) => error as { cause?: { type?: string; message?: string } },
    );
    expect(refused?.cause?.type).toBe('ERR_APPROVAL_UNAUTHENTICATED');
    expect(refused?.cause?.message).toMatch(/reason: holds a lone UTF-16 surrogate/);
    // Still pending: the refusal stored nothing; Warden's own client then decides it.
    expect((await handle.query(taskStateQuery)).pendingApprovals.map((p) => p.requestId)).toEqual([pending.requestId]);
    await decideApproval(env.client, { workflowId: handle.workflowId, requestId: pending.requestId, approved: false, reason, key: approver });
    expect((await followAgentTask(handle)).steps[1]?.approval?.reason).toBe('raw \ufffd client');
  });
});

describe('a kill whose reason holds a lone surrogate', () => {
  it('is mended before it is signed, and the blocked task\'s receipt is written', async () => {
    const handle = await env.start(heldTask());
    await waitForPending(handle);
    await killTask(env.client, { workflowId: handle.workflowId, key: approver, reason: 'runaway \udc00' });
    const result = await killedTaskResult(env.client, handle.workflowId);
    await expectReceipt(handle.workflowId);
    expect(result.reason ?? '').toSatisfy(isWellFormed);
    expect(JSON.stringify(result)).not.toMatch(/\\ud[89a-f]/i);
  });

  it("from another client is rejected by the kill Update's validator, and the task runs on", async () => {
    const handle = await env.start(heldTask());
    await waitForPending(handle);
    const { runId } = await handle.describe();
    const reason = 'raw kill \ud800';
    const signature = await signApprovalDecision(approver, { workflowId: handle.workflowId, runId, requestId: KILL_REQUEST_ID, action: KILL_ACTION, approved: true, reason });
    const refused = await handle.executeUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature, reason }] }).then(
      () => undefined,
      (error: unknown) => error as { cause?: { type?: string; message?: string } },
    );
    expect(refused?.cause?.type).toBe('ERR_KILL_REFUSED');
    expect(refused?.cause?.message).toMatch(/reason: holds a lone UTF-16 surrogate/);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.terminate('test done');
  });
});

describe('the receipt of a task recorded before reasons were mended', () => {
  // No committed history holds such a reason (the validator now refuses it): the result is the
  // recorded one of a real task with the old value put back where the old code stored it.
  it('is written with U+FFFD in place of each lone surrogate, and says so', async () => {
    expect(approvedTask).toBeDefined();
    const { workflowId, result } = approvedTask!;
    const old = structuredClone(result);
    old.steps[1]!.approval = { ...old.steps[1]!.approval!, reason: 'looks fine \ud83d' };
    const out = join(mkdtempSync(join(tmpdir(), 'warden-old-receipt-')), 'receipt.json');
    let stderr = '';
    const io: CliIo = { stdout: () => undefined, stderr: (t) => void (stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } };
    const code = await writeReceiptOf(io, workflowId, { result: old, user: 'fay@example.com \udfff', intent: 'clean up the stale leads' }, out);
    expect(code).toBe(0);
    expect(stderr).toMatch(/held 2 string\(s\) with a lone UTF-16 surrogate/);
    const receipt = JSON.parse(fs.readFileSync(out, 'utf8')) as { statement: { payload: string } };
    const statement = JSON.parse(Buffer.from(receipt.statement.payload, 'base64').toString('utf8')) as { predicate: { actions: { approval?: { reason?: string } }[] } };
    expect(statement.predicate.actions[1]?.approval?.reason).toBe('looks fine \ufffd');
    const verified = await warden(['receipt', 'verify', out]);
    expect(verified.code, verified.stdout).toBe(0);
  });

  it('fails with a typed error naming the field for what cannot be mended, never a raw TypeError', async () => {
    expect(approvedTask).toBeDefined();
    const { workflowId, result } = approvedTask!;
    const old = structuredClone(result);
    old.steps[1]!.approval = { ...old.steps[1]!.approval!, reason: Number.NaN as unknown as string };
    const io: CliIo = { stdout: () => undefined, stderr: () => undefined, env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } };
    const error = await writeReceiptOf(io, workflowId, { result: old, user: 'fay@example.com', intent: 'clean up the stale leads' }, undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('ERR_ATTESTATION_MALFORMED');
    expect((error as Error).message).toMatch(/approval\.reason/);
  });
});

async function expectReceipt(workflowId: string): Promise<void> {
  const receiptFile = join(mkdtempSync(join(tmpdir(), 'warden-approval-receipt-')), 'receipt.json');
  const out = await warden(['receipt', workflowId, '--out', receiptFile]);
  expect(out.code, out.stderr).toBe(0);
  expect(fs.existsSync(receiptFile)).toBe(true);
}

async function waitForPending(handle: { query: (q: typeof taskStateQuery) => Promise<{ pendingApprovals: PendingApproval[] }> }): Promise<PendingApproval> {
  let pending: PendingApproval | undefined;
  await vi.waitFor(
    async () => {
      pending = (await handle.query(taskStateQuery)).pendingApprovals[0];
      expect(pending).toBeDefined();
    },
    { timeout: 90_000, interval: 100 },
  );
  return pending!;
}

/** A task whose second step (a 42-row delete, in a database of its own) is held for approval. */
function heldTask() {
  const dbFile = join(mkdtempSync(join(tmpdir(), 'warden-approval-reason-')), 'crm.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO leads (stale) VALUES (?)').run(i < 42 ? 1 : 0);
  db.close();
  return parseTask(
        {
          user: 'fay@example.com',
          intent: 'clean up the stale leads',
          agent: {
            name: 'janitor',
            model: { driver: 'scripted', script: [{ tool: 'sql.query', args: { database: 'crm', sql: 'SELECT count(*) AS n FROM leads' } }, { tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] },
          },
          tools: { builtin: ['sql.query', 'sql.exec'] },
          grants: { tools: ['sql.query', 'sql.exec'], databases: ['crm'] },
          limits: { approvalTimeout: '5m' },
          resources: { databases: { crm: dbFile } },
        },
        'task.yaml',
        REPO_ROOT,
      );
}
