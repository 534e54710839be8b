import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryCredentialStores, IDENTITY_DB_FILE, openCredentialStores, type CredentialStores } from '../../identity/credential-stores';
import { verifyDelegationChain } from '../../identity/delegation-chain';
import { openKeystore } from '../../identity/keystore';
import { issueTaskGrant } from '../../identity/task-grant';
import { childGrantInput, FrozenClock, makeTempDir, rootGrantInput, T0 } from './identity-test-kit';

const dirs: string[] = [];
const open: CredentialStores[] = [];
afterAll(() => {
  for (const s of open) s.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function sqliteStores(time: FrozenClock, dir = makeTempDir('stores')): CredentialStores & { dir: string } {
  dirs.push(dir);
  const stores = openCredentialStores({ stateDir: dir, clock: time.clock });
  open.push(stores);
  return Object.assign(stores, { dir });
}

const IMPLEMENTATIONS: [string, (time: FrozenClock) => CredentialStores][] = [
  ['SQLite', (time) => sqliteStores(time)],
  ['in-memory', (time) => createMemoryCredentialStores(time.clock)],
];
const exp = T0 / 1000 + 60;

describe.each(IMPLEMENTATIONS)('%s stores', (_name, make) => {
  it('accept a jti once', async () => {
    const { replay } = make(new FrozenClock());
    expect(await replay.isUsed('a')).toBe(false);
    expect(await replay.markUsed('a', exp)).toBe(true);
    expect(await replay.markUsed('a', exp)).toBe(false);
    expect(await replay.markUsed('b', exp)).toBe(true);
    expect(await replay.isUsed('a')).toBe(true);
    expect(() => replay.markUsed('', exp)).toThrow(TypeError);
    expect(() => replay.markUsed('c', 1.5)).toThrow(TypeError);
  });

  it('forget a jti only well after its credential expired', async () => {
    const time = new FrozenClock();
    const { replay } = make(time);
    await replay.markUsed('old', exp);
    await replay.markUsed('new', exp + 3600);
    time.advance(61_000);
    expect(replay.prune()).toBe(0); // within the grace period
    time.advance(600_000);
    expect(replay.prune()).toBe(1);
    expect(await replay.isUsed('old')).toBe(false);
    expect(await replay.isUsed('new')).toBe(true);
  });

  it('revoke grants for good; the first reason wins; any id of a lineage matches', async () => {
    const time = new FrozenClock();
    const { revocation } = make(time);
    expect(await revocation.isRevoked(['g1', 'g2'])).toBeUndefined();
    expect(await revocation.isRevoked([])).toBeUndefined();
    await revocation.revokeGrant('g1', 'task completed');
    await revocation.revokeGrant('g1', 'task cancelled', T0 + 5);
    expect(await revocation.isRevoked(['g0', 'g1', 'g2'])).toEqual({ grantId: 'g1', reason: 'task completed', revokedAt: T0 });
    expect(await revocation.isRevoked(['g2'])).toBeUndefined();
  });

  it('prune a revocation only once its grant expired', async () => {
    const time = new FrozenClock();
    const { revocation } = make(time);
    await revocation.revokeGrant('with-exp', 'done', T0, { expiresAt: T0 + 60_000 });
    await revocation.revokeGrant('without-exp', 'done', T0);
    time.advance(60_000 + 301_000);
    expect(revocation.prune()).toBe(1);
    expect(await revocation.isRevoked(['with-exp'])).toBeUndefined();
    expect(await revocation.isRevoked(['without-exp'])).toBeDefined();
  });

  it('keep grants by id and rebuild a delegation chain from its leaf', async () => {
    const time = new FrozenClock();
    const stores = make(time);
    const dir = makeTempDir('grant-store');
    dirs.push(dir);
    const keystore = await openKeystore({ stateDir: dir, clock: time.clock });
    const root = await issueTaskGrant(keystore, rootGrantInput());
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    const grandchild = await issueTaskGrant(keystore, childGrantInput(child, 'checker'));
    for (const grant of [root, child, grandchild]) stores.grants.saveGrant(grant);
    expect(stores.grants.getGrant(child.id)).toEqual(child);
    expect(stores.grants.getGrant('unknown')).toBeUndefined();
    const tokens = stores.grants.chainTokens(grandchild.id);
    expect(tokens).toEqual([root.token, child.token, grandchild.token]);
    expect((await verifyDelegationChain(tokens, keystore, { clock: time.clock })).leaf.id).toBe(grandchild.id);
    expect(stores.grants.chainTokens('unknown')).toEqual([]);
    time.advance(10 * 60_000 + 301_000);
    expect(stores.grants.prune()).toBe(3);
    expect(stores.grants.getGrant(root.id)).toBeUndefined();
  });
});

describe('the SQLite file', () => {
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
