/**
 * Attack on the shared custody ledger by someone who can write the PostgreSQL state database but
 * not any worker's disk: they read the ledger, delete it, and append it again without the records
 * they want gone, signing with a key of their own (running Warden's own ledger code against the
 * database, which publishes that key to `warden_public_keys`). `warden audit verify` trusts every
 * custody key the database lists, so the rewritten ledger reports "intact".
 *
 * Expected: a key that only the database vouches for does not make a ledger intact: `audit
 * verify` on the shared ledger trusts keys pinned outside the database (the workers' own key
 * folders, a witness, the credential authority), or says it cannot tell; never "intact".
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import type { CliIo } from '../../cli/cli-io';
import { SharedCustodyLedger } from '../../custody/shared-ledger';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;
let workerState: string;

beforeAll(async () => {
  pg = await createTestDatabase();
  workerState = mkdtempSync(join(tmpdir(), 'warden-attack-ledger-worker-'));
}, 300_000);
afterAll(async () => pg?.drop());

function io(stateDir = workerState, extraEnv: Record<string, string> = {}): CliIo & { out: string; err: string } {
  const captured = {
    out: '',
    err: '',
    stdout: (text: string) => void (captured.out += text),
    stderr: (text: string) => void (captured.err += text),
    env: { WARDEN_STATE_DIR: stateDir, WARDEN_DATABASE_URL: pg.url, ...extraEnv },
  };
  return captured;
}

const event = (task: string, i: number, what: string) => ({ recordKey: `${task}-${i}`, taskId: task, workflowId: task, kind: 'event', body: { what } });

describe('a shared ledger rewritten under a key only the database vouches for', () => {
  let before: { code: number; out: string };
  let after: { code: number; out: string };
  const elsewhere: Record<string, { code: number; out: string }> = {};
  let afterPinned: { code: number; out: string };

  beforeAll(async () => {
    // The worker records two tasks; one of them did something someone wants forgotten.
    const worker = SharedCustodyLedger.open({ db: pg.db, keyDir: join(workerState, 'custody-keys'), workerId: 'worker-1', checkpointEvery: 4 });
    await worker.appendMany([event('task-a', 0, 'read notes'), event('task-payroll', 0, 'sql.exec UPDATE payroll SET salary = salary * 3 WHERE id = 7'), event('task-a', 1, 'wrote summary')]);
    await worker.appendMany([event('task-a', 2, 'final answer'), event('task-payroll', 1, 'final answer')]);
    await worker.checkpoint();
    await worker.close();
    const ok = io();
    before = { code: await auditCommand(['verify'], ok), out: ok.out + ok.err };
    // From a machine without the worker's key folder: only pinned keys make it verified.
    const keyDir = join(workerState, 'custody-keys');
    const other = mkdtempSync(join(tmpdir(), 'warden-attack-ledger-auditor-'));
    for (const [name, argv, extraEnv] of [
      ['unpinned', ['verify'], {}],
      ['--keys folder', ['verify', '--keys', keyDir], {}],
      ['WARDEN_CUSTODY_TRUSTED_KEYS', ['verify'], { WARDEN_CUSTODY_TRUSTED_KEYS: keyDir }],
    ] as const) {
      const c = io(other, extraEnv);
      elsewhere[name] = { code: await auditCommand([...argv], c), out: c.out + c.err };
    }

    // The database writer: copy what to keep, wipe, append it again with its own key.
    const kept = (await pg.db.all<{ record_key: string; task_id: string; workflow_id: string; kind: string; body: string }>('SELECT * FROM warden_custody_records ORDER BY seq')).filter(
      (r) => r.task_id !== 'task-payroll',
    );
    await pg.db.exec(
      `DELETE FROM warden_custody_records; DELETE FROM warden_custody_checkpoints; UPDATE warden_custody_head SET tree_size = 0, tail_hash = '${'0'.repeat(64)}', subtree_roots = '[]'`,
    );
    const forger = SharedCustodyLedger.open({ db: pg.db, keyDir: join(mkdtempSync(join(tmpdir(), 'warden-attack-forger-')), 'custody-keys'), workerId: 'worker-1', checkpointEvery: 4 });
    await forger.appendMany(kept.map((r) => ({ recordKey: r.record_key, taskId: r.task_id, workflowId: r.workflow_id, kind: r.kind, body: JSON.parse(r.body) as unknown })));
    await forger.checkpoint();
    await forger.close();
    const rewritten = io();
    after = { code: await auditCommand(['verify'], rewritten), out: rewritten.out + rewritten.err };
    const pinnedCheck = io(mkdtempSync(join(tmpdir(), 'warden-attack-ledger-auditor-')));
    afterPinned = { code: await auditCommand(['verify', '--keys', join(workerState, 'custody-keys')], pinnedCheck), out: pinnedCheck.out + pinnedCheck.err };
  });

  it('verifies the honest ledger (the check works)', () => {
    expect(before.code).toBe(0);
    expect(before.out).toMatch(/intact, 5 records/);
  });

  it('does not call the rewritten ledger intact', () => {
    expect(after.out).not.toMatch(/intact/);
    expect(after.code).not.toBe(0);
  });

  it('says NOT VERIFIED (exit 1), naming the reason, where only the database vouches for the keys', () => {
    expect(after.out).toMatch(/NOT VERIFIED: internally consistent/);
    expect(after.out).toMatch(/only the shared database vouches for/);
    expect(elsewhere['unpinned']?.code).toBe(1);
    expect(elsewhere['unpinned']?.out).toMatch(/NOT VERIFIED/);
  });

  it('verifies the honest ledger against pinned keys (--keys, WARDEN_CUSTODY_TRUSTED_KEYS)', () => {
    for (const name of ['--keys folder', 'WARDEN_CUSTODY_TRUSTED_KEYS']) {
      expect(elsewhere[name]?.out, name).toMatch(/intact, 5 records/);
      expect(elsewhere[name]?.code, name).toBe(0);
    }
  });

  it('does not verify the rewritten ledger against the pinned keys', () => {
    expect(afterPinned.out).not.toMatch(/intact/);
    expect(afterPinned.code).toBe(1);
  });
});
