import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryCredentialStores, IDENTITY_DB_FILE, openCredentialStores, type CredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { createSqlCredentialStores } from '../../identity/sql-credential-stores';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { verifyDelegationChain } from '../../identity/delegation-chain';
import { openKeystore } from '../../identity/keystore';
import { issueTaskGrant } from '../../identity/task-grant';
import { childGrantInput, FrozenClock, makeTempDir, rootGrantInput, T0 } from './identity-test-kit';

const dirs: string[] = [];
const open: CredentialStores[] = [];
let postgres: TestDatabase;
const sqliteStateDbs: SqlDatabase[] = [];
beforeAll(async () => {
  postgres = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  for (const s of open) await s.close();
  for (const db of sqliteStateDbs) await db.close();
  await postgres?.drop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function sqliteStores(time: FrozenClock, dir = makeTempDir('stores')): LocalCredentialStores & { dir: string } {
  dirs.push(dir);
  const stores = openCredentialStores({ stateDir: dir, clock: time.clock });
  open.push(stores);
  return Object.assign(stores, { dir });
}

/** Each case gets an empty store: the shared ones clear the tables the stores use. */
async function sqlStores(db: SqlDatabase, time: FrozenClock): Promise<CredentialStores> {
  for (const table of ['warden_used_jti', 'warden_grants', 'warden_revoked_grants']) await db.run(`DELETE FROM ${table}`);
  return createSqlCredentialStores({ db, clock: time.clock });
}

async function sqliteStateDb(): Promise<SqlDatabase> {
  const dir = makeTempDir('state-db');
  dirs.push(dir);
  const db = openSqliteDatabase(path.join(dir, 'state.db'));
  sqliteStateDbs.push(db);
  await migrate(db);
  return db;
}

const IMPLEMENTATIONS: [string, (time: FrozenClock) => Promise<CredentialStores>][] = [
  ['SQLite file', async (time) => sqliteStores(time)],
  ['in-memory', async (time) => createMemoryCredentialStores(time.clock)],
  ['shared PostgreSQL', (time) => sqlStores(postgres.db, time)],
  ['shared-schema SQLite', async (time) => sqlStores(await sqliteStateDb(), time)],
];
const exp = T0 / 1000 + 60;

describe.each(IMPLEMENTATIONS)('%s stores', (_name, make) => {
  it('accept a jti once', async () => {
    const { replay } = await make(new FrozenClock());
    expect(await replay.isUsed('a')).toBe(false);
    expect(await replay.markUsed('a', exp)).toBe(true);
    expect(await replay.markUsed('a', exp)).toBe(false);
    expect(await replay.markUsed('b', exp)).toBe(true);
    expect(await replay.isUsed('a')).toBe(true);
    await expect(async () => replay.markUsed('', exp)).rejects.toThrow(TypeError);
    await expect(async () => replay.markUsed('c', 1.5)).rejects.toThrow(TypeError);
  });

  it('forget a jti only well after its credential expired', async () => {
    const time = new FrozenClock();
    const { replay } = await make(time);
    await replay.markUsed('old', exp);
    await replay.markUsed('new', exp + 3600);
    time.advance(61_000);
    expect(await replay.prune()).toBe(0); // within the grace period
    time.advance(600_000);
    expect(await replay.prune()).toBe(1);
    expect(await replay.isUsed('old')).toBe(false);
    expect(await replay.isUsed('new')).toBe(true);
  });

  it('revoke grants for good; the first reason wins; any id of a lineage matches', async () => {
    const time = new FrozenClock();
    const { revocation } = await make(time);
    expect(await revocation.isRevoked(['g1', 'g2'])).toBeUndefined();
    expect(await revocation.isRevoked([])).toBeUndefined();
    await revocation.revokeGrant('g1', 'task completed');
    await revocation.revokeGrant('g1', 'task cancelled', T0 + 5);
    expect(await revocation.isRevoked(['g0', 'g1', 'g2'])).toEqual({ grantId: 'g1', reason: 'task completed', revokedAt: T0 });
    expect(await revocation.isRevoked(['g2'])).toBeUndefined();
  });

  it('prune a revocation only once its grant expired', async () => {
    const time = new FrozenClock();
    const { revocation } = await make(time);
    await revocation.revokeGrant('with-exp', 'done', T0, { expiresAt: T0 + 60_000 });
    await revocation.revokeGrant('without-exp', 'done', T0);
    time.advance(60_000 + 301_000);
    expect(await revocation.prune()).toBe(1);
    expect(await revocation.isRevoked(['with-exp'])).toBeUndefined();
    expect(await revocation.isRevoked(['without-exp'])).toBeDefined();
  });

  it('keep grants by id and rebuild a delegation chain from its leaf', async () => {
    const time = new FrozenClock();
    const stores = await make(time);
    const dir = makeTempDir('grant-store');
    dirs.push(dir);
    const keystore = await openKeystore({ stateDir: dir, clock: time.clock });
    const root = await issueTaskGrant(keystore, rootGrantInput());
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    const grandchild = await issueTaskGrant(keystore, childGrantInput(child, 'checker'));
    for (const grant of [root, child, grandchild]) await stores.grants.saveGrant(grant);
    expect(await stores.grants.getGrant(child.id)).toEqual(child);
    expect(await stores.grants.getGrant('unknown')).toBeUndefined();
    const tokens = await stores.grants.chainTokens(grandchild.id);
    expect(tokens).toEqual([root.token, child.token, grandchild.token]);
    expect((await verifyDelegationChain(tokens, keystore, { clock: time.clock })).leaf.id).toBe(grandchild.id);
    expect(await stores.grants.chainTokens('unknown')).toEqual([]);
    time.advance(10 * 60_000 + 301_000);
    expect(await stores.grants.prune()).toBe(3);
    expect(await stores.grants.getGrant(root.id)).toBeUndefined();
  });
});

describe('the SQLite file', () => {
  it('answers a grant row as it reads now: claims edited in the file are checked anew, and a caller changing its copy changes no other', async () => {
    const time = new FrozenClock();
    const stores = sqliteStores(time);
    const keystore = await openKeystore({ stateDir: stores.dir, clock: time.clock });
    const root = await issueTaskGrant(keystore, rootGrantInput());
    stores.grants.saveGrant(root);
    const first = stores.grants.getGrant(root.id)!;
    expect(first.claims).toEqual(root.claims);
    first.claims.grants.tools.push('fs.write');
    first.claims.act.sub = 'user:mallory';
    expect(stores.grants.getGrant(root.id)!.claims).toEqual(root.claims);
    const db = new Database(stores.file as string);
    try {
      const edit = (claims: unknown) => db.prepare('UPDATE grants SET claims = ? WHERE grant_id = ?').run(JSON.stringify(claims), root.id);
      // A schema-valid edit is read as it is now (never an earlier read of the row)...
      edit({ ...root.claims, sub: 'agent:other@wf-2' });
      expect(stores.grants.getGrant(root.id)!.claims.sub).toBe('agent:other@wf-2');
      // ...and an invalid one fails the schema each time it is read.
      edit({ ...root.claims, exp: 'never' });
      expect(() => stores.grants.getGrant(root.id)).toThrow(/exp/);
      expect(() => stores.grants.getGrant(root.id)).toThrow(/exp/);
    } finally {
      db.close();
    }
  });

  it('is <stateDir>/identity.db, mode 0600, in WAL mode', () => {
    const stores = sqliteStores(new FrozenClock());
    expect(stores.file).toBe(path.join(stores.dir, IDENTITY_DB_FILE));
    stores.replay.markUsed('x', exp);
    expect(fs.statSync(stores.file as string).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${stores.file}-wal`).mode & 0o777).toBe(0o600);
    const db = new Database(stores.file as string, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('is shared by every connection (as the worker and the sandbox host will share it) and survives reopening', () => {
    const time = new FrozenClock();
    const first = sqliteStores(time);
    const second = sqliteStores(time, first.dir);
    expect(first.replay.markUsed('shared', exp)).toBe(true);
    expect(second.replay.markUsed('shared', exp)).toBe(false);
    second.revocation.revokeGrant('g', 'task failed');
    expect(first.revocation.isRevoked(['g'])).toMatchObject({ reason: 'task failed' });
    first.close();
    const reopened = sqliteStores(time, first.dir);
    expect(reopened.replay.isUsed('shared')).toBe(true);
  });

  it('gives exactly one winner when many connections race on one jti', () => {
    const time = new FrozenClock();
    const base = sqliteStores(time);
    const others = Array.from({ length: 5 }, () => sqliteStores(time, base.dir));
    const winners = [base, ...others].map((s) => s.replay.markUsed('contended', exp)).filter(Boolean);
    expect(winners).toHaveLength(1);
  });
});

describe('the shared PostgreSQL stores', () => {
  it('give exactly one winner when many pooled connections race on one jti, and see each other at once', async () => {
    const time = new FrozenClock();
    const [a, b] = [createSqlCredentialStores({ db: postgres.db, clock: time.clock }), createSqlCredentialStores({ db: postgres.db, clock: time.clock })];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).replay.markUsed('raced-jti', exp)));
    expect(results.filter(Boolean)).toHaveLength(1);
    await a.revocation.revokeGrant('g-shared', 'task completed');
    expect(await b.revocation.isRevoked(['g-parent', 'g-shared'])).toMatchObject({ grantId: 'g-shared', reason: 'task completed' });
  });
});
