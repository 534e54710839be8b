/**
 * What makes a credential single-use and ends it with its task: the replay store (each `jti`
 * accepted once) and the revocation store (grants of finished tasks); plus the grant store, where
 * grant tokens wait between activities instead of in workflow history. All live in one SQLite
 * file, `<stateDir>/identity.db` (WAL, 0600), so the worker that mints and revokes and the
 * sandbox host that verifies, separate processes, see the same state.
 *
 * Invariants: `markUsed` is a single INSERT that either adds the `jti` or changes nothing, so two
 * processes presenting the same credential at once cannot both succeed; a revocation is never
 * undone (the first reason and time win); a `jti` is forgotten only after its credential expired.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GrantClaimsSchema, type GrantClaims } from './claims';
import { systemClock, toNumericDate, type Clock } from './clock';
import type { IssuedGrant } from './task-grant';

export const IDENTITY_DB_FILE = 'identity.db';
/** Used `jti`s are kept this long past their `exp`, beyond any verifier's clock tolerance. */
export const REPLAY_GRACE_SEC = 300;
/** Expired `jti`s are pruned after this many inserts (and on open). */
const PRUNE_EVERY = 500;

export interface ReplayStore {
  /** Records `jti` as used until `exp` (NumericDate); false when it was already used. Atomic across processes. */
  markUsed(jti: string, exp: number): boolean | Promise<boolean>;
  /** Whether `jti` was used (for explaining a token without consuming it). */
  isUsed(jti: string): boolean | Promise<boolean>;
  /** Forgets `jti`s whose credentials have expired; returns how many. */
  prune(now?: number): number | Promise<number>;
}

export interface RevocationRecord {
  grantId: string;
  reason: string;
  /** Epoch ms. */
  revokedAt: number;
}

export interface RevocationStore {
  /**
   * Ends a grant (and with it every credential minted from it or from any descendant grant).
   * `at` is epoch ms (default now); `expiresAt` (epoch ms, the grant's expiry) lets the record be
   * pruned once nothing it covers can verify anyway.
   */
  revokeGrant(grantId: string, reason: string, at?: number, options?: { expiresAt?: number }): void | Promise<void>;
  /** The revocation of any of `grantIds` (a credential's grant and its ancestors), or undefined. */
  isRevoked(grantIds: readonly string[]): RevocationRecord | undefined | Promise<RevocationRecord | undefined>;
  /** Forgets revocations of grants that have expired; returns how many. */
  prune(now?: number): number | Promise<number>;
}

/**
 * Issued grants by id, so workflow history can carry only ids and hashes: an activity that mints
 * or delegates loads the grant here, and an auditor rebuilds a delegation chain from its leaf.
 * A grant token cannot call a tool by itself (tools accept only call credentials), but it is
 * still kept only in this 0600 file (or the shared state database, see sql-credential-stores.ts).
 * Callers `await` every method: the shared stores answer asynchronously.
 */
export interface GrantStore {
  saveGrant(grant: IssuedGrant): void | Promise<void>;
  getGrant(grantId: string): IssuedGrant | undefined | Promise<IssuedGrant | undefined>;
  /** The tokens from the root grant down to `grantId` (for `verifyDelegationChain`); empty when unknown. */
  chainTokens(grantId: string): string[] | Promise<string[]>;
  /** Forgets grants that expired before `now` (epoch ms); returns how many. */
  prune(now?: number): number | Promise<number>;
}

export interface CredentialStores {
  replay: ReplayStore;
  revocation: RevocationStore;
  grants: GrantStore;
  /** The SQLite file, the shared database's description, or undefined for the in-memory stores. */
  readonly file: string | undefined;
  close(): void | Promise<void>;
}

/** The stores of one SQLite file or of memory: every answer is immediate. */
export interface LocalCredentialStores extends CredentialStores {
  replay: ReplayStore & { markUsed(jti: string, exp: number): boolean; isUsed(jti: string): boolean; prune(now?: number): number };
  revocation: RevocationStore & {
    revokeGrant(grantId: string, reason: string, at?: number, options?: { expiresAt?: number }): void;
    isRevoked(grantIds: readonly string[]): RevocationRecord | undefined;
    prune(now?: number): number;
  };
  grants: LocalGrantStore;
  close(): void;
}

export interface LocalGrantStore extends GrantStore {
  saveGrant(grant: IssuedGrant): void;
  getGrant(grantId: string): IssuedGrant | undefined;
  chainTokens(grantId: string): string[];
  prune(now?: number): number;
}

export interface OpenCredentialStoresOptions {
  stateDir: string;
  clock?: Clock;
}

/** Opens (creating) `<stateDir>/identity.db`; safe to open from several processes at once. */
export function openCredentialStores(options: OpenCredentialStoresOptions): LocalCredentialStores {
  const clock = options.clock ?? systemClock;
  fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const file = join(options.stateDir, IDENTITY_DB_FILE);
  // Create the file 0600 first: SQLite gives its -wal and -shm files the database file's mode.
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS used_jti (
        jti TEXT PRIMARY KEY,
        exp INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS used_jti_exp ON used_jti (exp);
      CREATE TABLE IF NOT EXISTS grants (
        grant_id TEXT PRIMARY KEY,
        parent_id TEXT,
        token TEXT NOT NULL,
        claims TEXT NOT NULL,
        hash TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS revoked_grants (
        grant_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER
      ) WITHOUT ROWID;
    `);
  } catch (error) {
    db.close();
    throw error;
  }

  const insertJti = db.prepare<[string, number]>('INSERT INTO used_jti (jti, exp) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING');
  const selectJti = db.prepare<[string]>('SELECT 1 FROM used_jti WHERE jti = ?').pluck();
  const pruneJti = db.prepare<[number]>('DELETE FROM used_jti WHERE exp < ?');
  const insertRevocation = db.prepare<[string, string, number, number | null]>(
    'INSERT INTO revoked_grants (grant_id, reason, revoked_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (grant_id) DO NOTHING',
  );
  const selectRevocation = db.prepare<[string]>(
    'SELECT grant_id AS grantId, reason, revoked_at AS revokedAt FROM revoked_grants WHERE grant_id IN (SELECT value FROM json_each(?)) ORDER BY revoked_at LIMIT 1',
  );
  const pruneRevocations = db.prepare<[number]>('DELETE FROM revoked_grants WHERE expires_at IS NOT NULL AND expires_at < ?');
  const insertGrant = db.prepare<[string, string | null, string, string, string, number]>(
    'INSERT INTO grants (grant_id, parent_id, token, claims, hash, expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (grant_id) DO NOTHING',
  );
  const selectGrant = db.prepare<[string]>('SELECT token, claims, hash FROM grants WHERE grant_id = ?');
  const pruneGrants = db.prepare<[number]>('DELETE FROM grants WHERE expires_at < ?');

  let insertsSincePrune = 0;
  const replay: LocalCredentialStores['replay'] = {
    markUsed(jti, exp) {
      checkJti(jti, exp);
      const fresh = insertJti.run(jti, exp).changes === 1;
      insertsSincePrune += 1;
      if (insertsSincePrune >= PRUNE_EVERY) replay.prune();
      return fresh;
    },
    isUsed(jti) {
      return selectJti.get(jti) !== undefined;
    },
    prune(now = clock()) {
      insertsSincePrune = 0;
      return pruneJti.run(toNumericDate(now) - REPLAY_GRACE_SEC).changes;
    },
  };
  const revocation: LocalCredentialStores['revocation'] = {
    revokeGrant(grantId, reason, at = clock(), revokeOptions = {}) {
      checkGrantId(grantId);
      insertRevocation.run(grantId, reason, Math.trunc(at), revokeOptions.expiresAt === undefined ? null : Math.trunc(revokeOptions.expiresAt));
    },
    isRevoked(grantIds) {
      if (grantIds.length === 0) return undefined;
      return selectRevocation.get(JSON.stringify(grantIds)) as RevocationRecord | undefined;
    },
    prune(now = clock()) {
      return pruneRevocations.run(Math.trunc(now) - REPLAY_GRACE_SEC * 1000).changes;
    },
  };
  const grants = grantStoreOver(
    (grant) => {
      insertGrant.run(grant.id, grant.claims.parent?.id ?? null, grant.token, JSON.stringify(grant.claims), grant.hash, grant.claims.exp);
    },
    (grantId) => {
      const row = selectGrant.get(grantId) as { token: string; claims: string; hash: string } | undefined;
      return row === undefined ? undefined : { token: row.token, claims: storedGrantClaims(row.claims), id: grantId, hash: row.hash };
    },
    (now) => pruneGrants.run(toNumericDate(now) - REPLAY_GRACE_SEC).changes,
    clock,
  );
  replay.prune();
  revocation.prune();
  grants.prune();
  return { replay, revocation, grants, file, close: () => db.close() };
}

/** Process-local stores with the same semantics; for unit tests and single-process tools only. */
export function createMemoryCredentialStores(clock: Clock = systemClock): LocalCredentialStores {
  const used = new Map<string, number>();
  const revoked = new Map<string, RevocationRecord & { expiresAt?: number }>();
  const replay: LocalCredentialStores['replay'] = {
    markUsed(jti, exp) {
      checkJti(jti, exp);
      if (used.has(jti)) return false;
      used.set(jti, exp);
      return true;
    },
    isUsed: (jti) => used.has(jti),
    prune(now = clock()) {
      let n = 0;
      for (const [jti, exp] of used) if (exp < toNumericDate(now) - REPLAY_GRACE_SEC && used.delete(jti)) n += 1;
      return n;
    },
  };
  const revocation: LocalCredentialStores['revocation'] = {
    revokeGrant(grantId, reason, at = clock(), options = {}) {
      checkGrantId(grantId);
      if (!revoked.has(grantId)) revoked.set(grantId, { grantId, reason, revokedAt: Math.trunc(at), ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }) });
    },
    isRevoked(grantIds) {
      for (const id of grantIds) {
        const record = revoked.get(id);
        if (record !== undefined) return { grantId: record.grantId, reason: record.reason, revokedAt: record.revokedAt };
      }
      return undefined;
    },
    prune(now = clock()) {
      let n = 0;
      for (const [id, r] of revoked) if (r.expiresAt !== undefined && r.expiresAt < now - REPLAY_GRACE_SEC * 1000 && revoked.delete(id)) n += 1;
      return n;
    },
  };
  const saved = new Map<string, IssuedGrant>();
  const grants = grantStoreOver(
    (grant) => {
      if (!saved.has(grant.id)) saved.set(grant.id, structuredClone(grant));
    },
    (grantId) => {
      const grant = saved.get(grantId);
      return grant === undefined ? undefined : structuredClone(grant);
    },
    (now) => {
      let n = 0;
      for (const [id, g] of saved) if (g.claims.exp < toNumericDate(now) - REPLAY_GRACE_SEC && saved.delete(id)) n += 1;
      return n;
    },
    clock,
  );
  return { replay, revocation, grants, file: undefined, close: () => undefined };
}

function grantStoreOver(
  save: (grant: IssuedGrant) => void,
  get: (grantId: string) => IssuedGrant | undefined,
  prune: (now: number) => number,
  clock: Clock,
): LocalGrantStore {
  return {
    saveGrant(grant) {
      checkGrantId(grant.id);
      save(grant);
    },
    getGrant: get,
    chainTokens(grantId) {
      const tokens: string[] = [];
      for (let id: string | undefined = grantId; id !== undefined; ) {
        const grant = get(id);
        if (grant === undefined || tokens.length > 16) return [];
        tokens.unshift(grant.token);
        id = grant.claims.parent?.id;
      }
      return tokens;
    },
    prune: (now = clock()) => prune(now),
  };
}

const parsedGrantClaims = new Map<string, GrantClaims>();
const MAX_PARSED_GRANT_CLAIMS = 256;

/**
 * The grant claims a store row holds as JSON text, checked against the claim schema. Every call
 * of a task reads its grant back (twice: for its span and to mint its credential), so the check
 * runs once per exact text (a row edited by a byte is another text, checked anew) and each caller
 * gets its own copy. Throws the schema's error for claims that do not match.
 */
export function storedGrantClaims(text: string): GrantClaims {
  let claims = parsedGrantClaims.get(text);
  if (claims === undefined) {
    claims = GrantClaimsSchema.parse(JSON.parse(text));
    if (parsedGrantClaims.size >= MAX_PARSED_GRANT_CLAIMS) parsedGrantClaims.delete(parsedGrantClaims.keys().next().value as string);
    parsedGrantClaims.set(text, claims);
  }
  return structuredClone(claims);
}

export function checkJti(jti: string, exp: number): void {
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw new TypeError('jti must be a non-empty string of at most 256 characters');
  if (!Number.isInteger(exp)) throw new TypeError('exp must be a NumericDate (integer seconds)');
}

export function checkGrantId(grantId: string): void {
  if (typeof grantId !== 'string' || grantId.length === 0 || grantId.length > 256) throw new TypeError('grantId must be a non-empty string of at most 256 characters');
}
