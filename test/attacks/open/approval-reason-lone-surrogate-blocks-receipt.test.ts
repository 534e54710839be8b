/**
 * Open finding (severity: medium; issue 17 area, lone-surrogate handling: an entry point not made
 * well-formed).
 *
 * An approver's decision carries a free-text `reason` (the console's POST /api/approvals/decide
 * body, `warden approve --reason`, or any client's `warden.approval` Update). JSON text
 * `"\ud800"` parses to a lone surrogate, and nothing on the way mends it: the decision is signed
 * as `JSON.stringify` (which escapes it), verified by `JSON.parse` (which restores it), and the
 * workflow stores `reason` in the step's `approval` (workflows/approval-gate.ts). The signed
 * receipt carries every step's `approval` in its in-toto Statement, which is canonical JSON, which
 * refuses lone surrogates: the task ran (the held delete was applied), but `warden receipt` fails.
 * The same entry class: a kill's `--reason` (client/kill-task.ts) becomes the result's reason.
 *
 * Safe behaviour asserted: a decision's reason is made well-formed where it enters (as model turns,
 * tool outputs and MCP client data are, custody/well-formed-json.ts), and `warden receipt` of the
 * task writes the receipt (exit 0).
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
import { main } from '../../../cli/main';
import type { CliIo } from '../../../cli/cli-io';
import { decideApproval } from '../../../client/approvals';
import { followAgentTask } from '../../../client/start-agent-task';
import { killedTaskResult, killTask } from '../../../client/kill-task';
import { issueApproverKey, type ApproverKeyFile } from '../../../identity/approval-decision';
import { openApproverStore } from '../../../identity/approver-registry';
import { parseTask } from '../../../task/load-task-file';
import type { PendingApproval } from '../../../task/task-run';
import { taskStateQuery } from '../../../workflows/definitions';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';
import { testTemporalAddress } from '../../support/temporal';

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

describe('an approval whose reason holds a lone surrogate', () => {
  it.each([
    ['approved', true],
    ['denied', false],
  ])('(%s) leaves a task whose receipt can still be written', async (_name, approved) => {
    const handle = await env.start(heldTask());
    const pending = await waitForPending(handle);
    // What the console's body `{"reason":"looks fine \ud83d"}` parses to (a browser's cut of an emoji).
    const reason = 'looks fine \ud83d';
    const outcome = await decideApproval(env.client, { workflowId: handle.workflowId, requestId: pending.requestId, approved, reason, key: approver });
    expect(outcome.status).toBe(approved ? 'approved' : 'denied');
    const result = await followAgentTask(handle);
    const kept = result.steps[1]?.approval?.reason ?? '';
    await expectReceipt(handle.workflowId);
    expect((kept as string & { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  });
});

describe('a kill whose reason holds a lone surrogate', () => {
  it('leaves a blocked task whose receipt can still be written', async () => {
    const handle = await env.start(heldTask());
    await waitForPending(handle);
    await killTask(env.client, { workflowId: handle.workflowId, key: approver, reason: 'runaway \udc00' });
    const result = await killedTaskResult(env.client, handle.workflowId);
    await expectReceipt(handle.workflowId);
    expect((result.reason ?? '') as string & { isWellFormed(): boolean }).toSatisfy((r: string & { isWellFormed(): boolean }) => r.isWellFormed());
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
