/**
 * The approver registry on the state layer: with WARDEN_DATABASE_URL every worker reads the one
 * registry in PostgreSQL (`warden_approvers`), so an approver added on one machine is known on
 * every worker and a removal anywhere stops the key everywhere; without it, `<state>/identity.db`.
 * Both stores keep the same invariants (table-driven over both): a name is decided once (also
 * after removal: never re-issued), removal only revokes, records round-trip exactly.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueApproverKey } from '../../identity/approval-decision';
import { openApproverRegistry, type ApproverStore } from '../../identity/approver-registry';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;

beforeAll(async () => {
  pg = await createTestDatabase();
}, 300_000);
afterAll(async () => pg?.drop());

const fresh = () => mkdtempSync(join(tmpdir(), 'warden-approvers-'));

const stores: { name: string; open(stateDir: string): Promise<ApproverStore> }[] = [
  { name: 'identity.db (one worker)', open: (stateDir) => openApproverRegistry({ stateDir, env: {} }) },
  { name: 'shared PostgreSQL', open: (stateDir) => openApproverRegistry({ stateDir, env: { WARDEN_DATABASE_URL: pg.url } }) },
];

describe.each(stores)('the approver registry in $name', ({ open, name }) => {
  it('adds once, never re-issues a name, and revokes without forgetting', async () => {
    const store = await open(fresh());
    const approver = `alice-${name.length}-${Date.now()}`;
    try {
      const { record } = await issueApproverKey(store, { name: approver, now: 1_000 });
      expect(await store.get(approver)).toEqual(record);
      await expect(issueApproverKey(store, { name: approver })).rejects.toMatchObject({ code: 'ERR_APPROVER_INVALID' });
      expect(await store.remove(approver, 2_000)).toBe(true);
      expect((await store.get(approver))?.revokedAt).toBe(2_000);
      // Removal is final: idempotent, never cleared, the name never issued again.
      expect(await store.remove(approver, 3_000)).toBe(true);
      expect((await store.get(approver))?.revokedAt).toBe(2_000);
      await expect(issueApproverKey(store, { name: approver })).rejects.toMatchObject({ code: 'ERR_APPROVER_INVALID' });
      expect(await store.remove('nobody-here')).toBe(false);
    } finally {
      await store.close();
    }
  });
});

describe('two workers on one shared database', () => {
  it('see the same approvers: added on one, known and revoked on the other', async () => {
    const one = await openApproverRegistry({ stateDir: fresh(), env: { WARDEN_DATABASE_URL: pg.url } });
    const two = await openApproverRegistry({ stateDir: fresh(), env: { WARDEN_DATABASE_URL: pg.url } });
    try {
      const { record } = await issueApproverKey(one, { name: `bob-${Date.now()}` });
      expect(await two.get(record.name)).toEqual(record);
      expect((await two.list()).map((r) => r.name)).toContain(record.name);
      await two.remove(record.name, 5_000);
      expect((await one.get(record.name))?.revokedAt).toBe(5_000);
      // A worker's local identity.db is not consulted when the state is shared.
      const local = await openApproverRegistry({ stateDir: fresh(), env: {} });
      try {
        expect(await local.get(record.name)).toBeUndefined();
      } finally {
        await local.close();
      }
    } finally {
      await one.close();
      await two.close();
    }
  });
});
