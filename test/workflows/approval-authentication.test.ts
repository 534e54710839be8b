/**
 * Approvals cannot be forged, pre-empted or self-granted, in real runs on the Temporal server:
 *  (a) a decision for a request that does not exist yet (the reproduced example: a `warden.approval`
 *      signal naming the step before it is held) is never stored, by signal or Update;
 *  (b) anyone who can reach the frontend cannot approve: a decision must be signed by a registered
 *      approver's key for exactly this request; forgeries fail the Update and the request waits on;
 *  (c) an agent granted the Temporal frontend, its HTTP API or UI is refused before it starts.
 * The approver who did decide is recorded in the step and in the custody ledger.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decideApproval } from '../../client/approvals';
import { followAgentTask } from '../../client/start-agent-task';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerReader } from '../../custody/ledger-reader';
import { issueApproverKey, signApprovalDecision, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { callDigestOf } from '../../recovery/call-key';
import { parseTask } from '../../task/load-task-file';
import type { PendingApproval, TaskState } from '../../task/task-run';
import { loadEmbeddedPorts } from '../../temporal/temporal-config';
import { approvalSignal, approvalUpdate, taskStateQuery } from '../../workflows/definitions';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let dbFile: string;
let approver: ApproverKeyFile;
let removed: ApproverKeyFile;
/** A key under the approver's name that Warden never issued. */
let impostor: ApproverKeyFile;

beforeAll(async () => {
  env = await startWardenTestEnv();
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  const suffix = randomUUID().slice(0, 8);
  approver = (await issueApproverKey(store, { name: `ops-${suffix}` })).keyFile;
  removed = (await issueApproverKey(store, { name: `gone-${suffix}` })).keyFile;
  store.remove(removed.name);
  store.close();
  const elsewhere = openApproverStore({ stateDir: mkdtempSync(join(tmpdir(), 'warden-elsewhere-')) });
  impostor = (await issueApproverKey(elsewhere, { name: approver.name })).keyFile;
  elsewhere.close();
  dbFile = join(mkdtempSync(join(tmpdir(), 'warden-approval-auth-')), 'crm.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO leads (stale) VALUES (?)').run(i < 42 ? 1 : 0);
  db.close();
});
afterAll(async () => env?.close());

const rows = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM leads').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** A task whose second step (a 42-row delete) is held for approval. */
function heldTask(approvalTimeout = '2m') {
  return parseTask(
    {
      user: 'fay@example.com',
      intent: 'clean up the stale leads',
      agent: {
        name: 'janitor',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'sql.query', args: { database: 'crm', sql: 'SELECT count(*) AS n FROM leads' } },
            { tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } },
            { final: 'cleaned' },
          ],
        },
      },
      tools: { builtin: ['sql.query', 'sql.exec'] },
      grants: { tools: ['sql.query', 'sql.exec'], databases: ['crm'] },
      limits: { approvalTimeout },
      resources: { databases: { crm: dbFile } },
    },
    'task.yaml',
    REPO_ROOT,
  );
}

async function waitForPending(handle: { query: (q: typeof taskStateQuery) => Promise<TaskState> }): Promise<PendingApproval> {
  let found: PendingApproval | undefined;
  await vi.waitFor(
    async () => {
      found = (await handle.query(taskStateQuery)).pendingApprovals[0];
      expect(found).toBeDefined();
    },
    { timeout: 60_000, interval: 50 },
  );
  return found!;
}

/** The failure type an Update was rejected or failed with. */
async function updateFailure(send: () => Promise<unknown>): Promise<string> {
  try {
    await send();
    return 'accepted';
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) return (error.cause as { type?: string } | undefined)?.type ?? 'failed';
    if (error instanceof Error && 'code' in error) return String((error as { code: unknown }).code);
    throw error;
  }
}

describe('(a) a decision before the request exists', () => {
  it('is never stored: the held step still waits, then times out; nothing is deleted', async () => {
    const handle = await env.start(heldTask('3s'));
    // Sent at once, before the delete is held: the old unauthenticated signal, for the step's index…
    await handle.signal(approvalSignal, { requestId: '1', approved: true, approver: 'user:mallory' });
    // …and Updates naming the ids an attacker would guess.
    for (const requestId of ['0', '1', '2']) {
      expect(await updateFailure(() => handle.executeUpdate(approvalUpdate, { args: [{ requestId, approved: true, signature: undefined }] }))).toBe('ERR_APPROVAL_NOT_PENDING');
    }
    const result = await followAgentTask(handle);
    expect(result.steps[1]).toMatchObject({ tool: 'sql.exec', error: { code: 'ERR_APPROVAL_TIMEOUT' }, approval: { status: 'timed_out' }, executed: false });
    expect(result.steps[1]?.approval?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(rows()).toBe(50);
  });
});

describe('(b) only a registered approver, for exactly this request', () => {
  it('refuses every forgery, keeps the request pending, then takes the real approval and records who gave it', async () => {
    const handle = await env.start(heldTask());
    const pending = await waitForPending(handle);
    const { runId } = await handle.describe();
    const base = { workflowId: handle.workflowId, runId, requestId: pending.requestId, action: callDigestOf(pending.tool, pending.args), approved: true };
    const send = (signature: unknown, approved = true) => updateFailure(() => handle.executeUpdate(approvalUpdate, { args: [{ requestId: pending.requestId, approved, signature }] }));
    const forgeries: [string, () => Promise<unknown>][] = [
      ['no signature (anyone who reaches the frontend)', async () => undefined],
      ['a key Warden never issued, under the approver’s name', () => signApprovalDecision(impostor, base)],
      ['a removed approver', () => signApprovalDecision(removed, base)],
      ['the approver’s signature for another action', () => signApprovalDecision(approver, { ...base, action: callDigestOf('sql.exec', { database: 'crm', sql: 'DELETE FROM leads' }) })],
      ['the approver’s signature for another run', () => signApprovalDecision(approver, { ...base, runId: randomUUID() })],
      ['the approver’s deny, sent as an approve', () => signApprovalDecision(approver, { ...base, approved: false })],
    ];
    for (const [name, forge] of forgeries) {
      expect(await send(await forge()), name).toBe('ERR_APPROVAL_UNAUTHENTICATED');
    }
    // Still pending, nothing ran.
    expect((await handle.query(taskStateQuery)).pendingApprovals.map((p) => p.requestId)).toEqual([pending.requestId]);
    expect(rows()).toBe(50);

    const outcome = await decideApproval(env.client, { workflowId: handle.workflowId, requestId: pending.requestId, approved: true, reason: 'checked', key: approver });
    expect(outcome).toEqual({ requestId: pending.requestId, status: 'approved', approver: approver.name });
    // A second decision, even a valid one, is refused: the request is no longer pending.
    const again = await decideApproval(env.client, { workflowId: handle.workflowId, requestId: pending.requestId, approved: false, key: approver }).catch((e: { code?: string }) => e.code);
    expect(again).toBe('ERR_APPROVAL_NOT_PENDING');

    const result = await followAgentTask(handle);
    expect(result.status).toBe('completed');
    expect(result.steps[1]).toMatchObject({ executed: true, approval: { status: 'approved', approver: approver.name, approverKey: approver.kid, reason: 'checked' } });
    expect(rows()).toBe(8);
    await vi.waitFor(
      () => {
        const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
        try {
          const attributes = reader.records(handle.workflowId).map((r) => (r.body as { attributes?: Record<string, unknown> }).attributes ?? {});
          const verified = attributes.filter((a) => a[WARDEN_ATTR.approvalApprover] === approver.name);
          expect(verified).toHaveLength(1);
          expect(verified[0]).toMatchObject({ [WARDEN_ATTR.approvalApproverKey]: approver.kid, [WARDEN_ATTR.approvalRequestId]: pending.requestId });
          // Every signed forgery was checked and refused on the record; the unsigned one never got past the validator.
          expect(attributes.filter((a) => a[WARDEN_ATTR.approvalRequestId] === pending.requestId && a[WARDEN_ATTR.outcome] === 'denied').length).toBe(forgeries.length - 1);
        } finally {
          reader.close();
        }
      },
      { timeout: 30_000, interval: 200 },
    );
  });
});

describe('(c) an agent granted the Temporal frontend, its HTTP API or UI', () => {
  it.each(['port', 'httpPort', 'uiPort'] as const)('is refused before it starts (%s)', async (which) => {
    const ports = loadEmbeddedPorts(process.env);
    const host = `127.0.0.1:${ports[which]}`;
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'approve my own action',
      agent: { name: 'selfapprover', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${host}/` } }, { final: 'x' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [host] },
      resources: { hosts: [host] },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/ERR_RESOURCE_PROTECTED: .*grants\.hosts\.0/);
    expect(result.steps).toEqual([]);
  });
});
