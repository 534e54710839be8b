/**
 * The credential stores (jti replay, revocations, grants) on the shared state database, so a
 * grant issued by one worker is found by another, a task ended on one stops credentials checked
 * by every sandbox host, and a credential is accepted once across the fleet.
 *
 * Same invariants as the SQLite file stores (credential-stores.ts): `markUsed` is one
 * `INSERT … ON CONFLICT DO NOTHING`, so of two hosts presenting one `jti` at once exactly one
 * wins, decided by the database's unique index; a revocation is never undone (the first reason
 * and time win); a `jti` is forgotten only after its credential expired.
 */
import { systemClock, toNumericDate, type Clock } from './clock';
import { checkGrantId, checkJti, REPLAY_GRACE_SEC, storedGrantClaims, type CredentialStores, type GrantStore, type ReplayStore, type RevocationRecord, type RevocationStore } from './credential-stores';
import type { IssuedGrant } from './task-grant';
import type { SqlDatabase } from '../state/sql-database';

/** Expired rows are pruned after this many inserts by this process. */
const PRUNE_EVERY = 500;
/** Longest delegation chain followed (the grant schema allows far fewer levels). */
const MAX_CHAIN = 16;

export interface SqlCredentialStores extends CredentialStores {
  replay: ReplayStore & { markUsed(jti: string, exp: number): Promise<boolean>; isUsed(jti: string): Promise<boolean>; prune(now?: number): Promise<number> };
  revocation: RevocationStore & {
    revokeGrant(grantId: string, reason: string, at?: number, options?: { expiresAt?: number }): Promise<void>;
    isRevoked(grantIds: readonly string[]): Promise<RevocationRecord | undefined>;
    prune(now?: number): Promise<number>;
  };
  grants: GrantStore & {
    saveGrant(grant: IssuedGrant): Promise<void>;
    getGrant(grantId: string): Promise<IssuedGrant | undefined>;
    chainTokens(grantId: string): Promise<string[]>;
    prune(now?: number): Promise<number>;
  };
  close(): Promise<void>;
}

export interface SqlCredentialStoresOptions {
  db: SqlDatabase;
  clock?: Clock;
  /** Close `db` with the stores (default false: the caller owns it). */
  closeDatabase?: boolean;
}

/** The credential stores over `db` (whose schema must be current: see state/migrations.ts). */
export function createSqlCredentialStores(options: SqlCredentialStoresOptions): SqlCredentialStores {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  let insertsSincePrune = 0;

  const replay: SqlCredentialStores['replay'] = {
    async markUsed(jti, exp) {
      checkJti(jti, exp);
      const fresh = (await db.run('INSERT INTO warden_used_jti (jti, exp) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING', [jti, exp])) === 1;
      insertsSincePrune += 1;
      if (insertsSincePrune >= PRUNE_EVERY) {
        insertsSincePrune = 0;
        await replay.prune();
      }
      return fresh;
    },
    async isUsed(jti) {
      return (await db.get('SELECT 1 AS used FROM warden_used_jti WHERE jti = $1', [jti])) !== undefined;
    },
    async prune(now = clock()) {
      return db.run('DELETE FROM warden_used_jti WHERE exp < $1', [toNumericDate(now) - REPLAY_GRACE_SEC]);
    },
  };

  const revocation: SqlCredentialStores['revocation'] = {
    async revokeGrant(grantId, reason, at = clock(), revokeOptions = {}) {
      checkGrantId(grantId);
      await db.run('INSERT INTO warden_revoked_grants (grant_id, reason, revoked_at, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (grant_id) DO NOTHING', [
        grantId,
        reason,
        Math.trunc(at),
        revokeOptions.expiresAt === undefined ? null : Math.trunc(revokeOptions.expiresAt),
      ]);
    },
    async isRevoked(grantIds) {
      if (grantIds.length === 0) return undefined;
      const placeholders = grantIds.map((_, i) => `$${i + 1}`).join(', ');
      const row = await db.get<{ grant_id: string; reason: string; revoked_at: number }>(
        `SELECT grant_id, reason, revoked_at FROM warden_revoked_grants WHERE grant_id IN (${placeholders}) ORDER BY revoked_at LIMIT 1`,
        grantIds,
      );
      return row === undefined ? undefined : { grantId: row.grant_id, reason: row.reason, revokedAt: Number(row.revoked_at) };
    },
    async prune(now = clock()) {
      return db.run('DELETE FROM warden_revoked_grants WHERE expires_at IS NOT NULL AND expires_at < $1', [Math.trunc(now) - REPLAY_GRACE_SEC * 1000]);
    },
  };

  async function getGrant(grantId: string): Promise<IssuedGrant | undefined> {
    const row = await db.get<{ token: string; claims: string; hash: string }>('SELECT token, claims, hash FROM warden_grants WHERE grant_id = $1', [grantId]);
    return row === undefined ? undefined : { token: row.token, claims: storedGrantClaims(row.claims), id: grantId, hash: row.hash };
  }

  const grants: SqlCredentialStores['grants'] = {
    async saveGrant(grant) {
      checkGrantId(grant.id);
      await db.run(
        'INSERT INTO warden_grants (grant_id, parent_id, token, claims, hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (grant_id) DO NOTHING',
        [grant.id, grant.claims.parent?.id ?? null, grant.token, JSON.stringify(grant.claims), grant.hash, grant.claims.exp],
      );
    },
    getGrant,
    async chainTokens(grantId) {
      const tokens: string[] = [];
      for (let id: string | undefined = grantId; id !== undefined; ) {
        const grant = await getGrant(id);
        if (grant === undefined || tokens.length > MAX_CHAIN) return [];
        tokens.unshift(grant.token);
        id = grant.claims.parent?.id;
      }
      return tokens;
    },
    async prune(now = clock()) {
      return db.run('DELETE FROM warden_grants WHERE expires_at < $1', [toNumericDate(now) - REPLAY_GRACE_SEC]);
    },
  };

  return {
    replay,
    revocation,
    grants,
    file: db.description,
    close: async () => {
      if (options.closeDatabase === true) await db.close();
    },
  };
}
