/**
 * The approvers Warden knows: each a name and the public half of the Ed25519 key Warden issued
 * to that person (`warden approvers add`). Only a decision signed with a registered, unrevoked
 * approver key counts (identity/approval-decision.ts). Kept behind a small store interface, like
 * the credential stores: in SQLite (`<stateDir>/identity.db`, one worker) or in the shared state
 * database (`warden_approvers`, PostgreSQL when WARDEN_DATABASE_URL is set), so a key registered
 * with any worker's `warden approvers add` verifies on every worker. Only public keys are stored.
 *
 * Invariants: a name is registered once (re-adding a name is refused; remove it first); removal
 * is a revocation that keeps the record, so an old decision can still be explained, and a
 * removed name's key never verifies again.
 */
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { ApproverError } from '../errors';
import { IDENTITY_DB_FILE } from './credential-stores';
import { openStateStore, usesSharedDatabase } from '../state/state-store';
import { toSafeInteger, type SqlDatabase } from '../state/sql-database';

/** Approver names: what people are called in approval records (`alice`, `sec-lead`, `ops.oncall`). */
export const ApproverNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'an approver name: lower-case letters, digits, ".", "_" or "-", at most 63 characters');

/** The approver's public key as a JWK (Ed25519). */
export const ApproverPublicJwkSchema = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});

export const ApproverRecordSchema = z.strictObject({
  name: ApproverNameSchema,
  /** RFC 7638 thumbprint of the public key: the `kid` of every decision the approver signs. */
  kid: z.string().min(1),
  publicJwk: ApproverPublicJwkSchema,
  /** Epoch ms. */
  addedAt: z.number().int(),
  /** Where `warden approvers add` wrote the private key, so Warden can keep every tool away from it. */
  keyFile: z.string().optional(),
  /** Epoch ms; set when the approver was removed. */
  revokedAt: z.number().int().optional(),
});
export type ApproverRecord = z.infer<typeof ApproverRecordSchema>;

type Awaitable<T> = T | Promise<T>;

/** The registry as every caller uses it (await each result: the shared store answers asynchronously). */
export interface ApproverStore {
  /** Registers a new approver; ERR_APPROVER_INVALID when the name is already registered (also when removed). */
  add(record: ApproverRecord): Awaitable<void>;
  /** The record of `name`, revoked or not; undefined when unknown. */
  get(name: string): Awaitable<ApproverRecord | undefined>;
  /** Every record, by name. */
  list(): Awaitable<ApproverRecord[]>;
  /** Revokes `name` (idempotent); false when unknown. */
  remove(name: string, at?: number): Awaitable<boolean>;
  close(): Awaitable<void>;
}

/** The one-worker store in `identity.db`, which answers at once. */
export interface LocalApproverStore extends ApproverStore {
  add(record: ApproverRecord): void;
  get(name: string): ApproverRecord | undefined;
  list(): ApproverRecord[];
  remove(name: string, at?: number): boolean;
  close(): void;
}

function alreadyRegistered(name: string): ApproverError {
  return new ApproverError('ERR_APPROVER_INVALID', `an approver named "${name}" is already registered (remove it first to issue a new key)`, { details: { name } });
}

/**
 * Where `warden approvers add` puts key files by default and `warden approve` looks for them:
 * `WARDEN_APPROVER_DIR`, else `$XDG_CONFIG_HOME/warden/approvers`, else `~/.config/warden/approvers`.
 * Warden keeps every tool and workspace away from it.
 */
export function defaultApproverKeyDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WARDEN_APPROVER_DIR) return resolve(env.WARDEN_APPROVER_DIR);
  if (env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME)) return join(env.XDG_CONFIG_HOME, 'warden', 'approvers');
  return join(env.HOME || homedir(), '.config', 'warden', 'approvers');
}

/** The key files of registered approvers, where `warden approvers add` wrote them. */
export async function approverKeyFiles(store: Pick<ApproverStore, 'list'>): Promise<string[]> {
  return (await store.list()).flatMap((r) => (r.keyFile === undefined ? [] : [r.keyFile]));
}

/** Opens the approver table of `<stateDir>/identity.db` (created 0600 on first use). */
export function openApproverStore(options: { stateDir: string }): LocalApproverStore {
  fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const file = join(options.stateDir, IDENTITY_DB_FILE);
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS approvers (
      name TEXT PRIMARY KEY,
      record TEXT NOT NULL
    ) WITHOUT ROWID;`);
  } catch (error) {
    db.close();
    throw error;
  }
  const insert = db.prepare<[string, string]>('INSERT INTO approvers (name, record) VALUES (?, ?) ON CONFLICT (name) DO NOTHING');
  const select = db.prepare<[string]>('SELECT record FROM approvers WHERE name = ?').pluck();
  const selectAll = db.prepare('SELECT record FROM approvers ORDER BY name').pluck();
  const update = db.prepare<[string, string]>('UPDATE approvers SET record = ? WHERE name = ?');
  const parse = (text: unknown) => ApproverRecordSchema.parse(JSON.parse(String(text)));
  return {
    add(record) {
      const checked = ApproverRecordSchema.parse(record);
      if (insert.run(checked.name, JSON.stringify(checked)).changes !== 1) throw alreadyRegistered(checked.name);
    },
    get(name) {
      const text = select.get(name);
      return text === undefined ? undefined : parse(text);
    },
    list() {
      return selectAll.all().map(parse);
    },
    remove(name, at = Date.now()) {
      const text = select.get(name);
      if (text === undefined) return false;
      const record = parse(text);
      if (record.revokedAt === undefined) update.run(JSON.stringify({ ...record, revokedAt: Math.trunc(at) }), name);
      return true;
    },
    close: () => db.close(),
  };
}

interface ApproverRow {
  name: string;
  kid: string;
  public_jwk: string;
  key_file: string | null;
  added_at: number | string;
  revoked_at: number | string | null;
}

function recordOf(row: ApproverRow): ApproverRecord {
  return ApproverRecordSchema.parse({
    name: row.name,
    kid: row.kid,
    publicJwk: JSON.parse(row.public_jwk) as unknown,
    addedAt: toSafeInteger(row.added_at, 'added_at'),
    ...(row.key_file === null ? {} : { keyFile: row.key_file }),
    ...(row.revoked_at === null ? {} : { revokedAt: toSafeInteger(row.revoked_at, 'revoked_at') }),
  });
}

/**
 * The registry in the shared state database (`warden_approvers`, migration 4): what one worker's
 * `warden approvers add` registers, every worker verifies against; a removal anywhere stops the
 * key everywhere. Same invariants as the SQLite store: one `INSERT … ON CONFLICT DO NOTHING`
 * decides a name, removal only sets `revoked_at` (never cleared).
 */
export function openSqlApproverStore(db: SqlDatabase): ApproverStore {
  const columns = 'name, kid, public_jwk, key_file, added_at, revoked_at';
  return {
    async add(record) {
      const r = ApproverRecordSchema.parse(record);
      const changes = await db.run(
        'INSERT INTO warden_approvers (name, kid, public_jwk, key_file, added_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING',
        [r.name, r.kid, JSON.stringify(r.publicJwk), r.keyFile ?? null, r.addedAt, r.revokedAt ?? null],
      );
      if (changes !== 1) throw alreadyRegistered(r.name);
    },
    async get(name) {
      const row = await db.get<ApproverRow>(`SELECT ${columns} FROM warden_approvers WHERE name = $1`, [name]);
      return row === undefined ? undefined : recordOf(row);
    },
    async list() {
      return (await db.all<ApproverRow>(`SELECT ${columns} FROM warden_approvers ORDER BY name`)).map(recordOf);
    },
    async remove(name, at = Date.now()) {
      const known = await db.get(`SELECT name FROM warden_approvers WHERE name = $1`, [name]);
      if (known === undefined) return false;
      await db.run('UPDATE warden_approvers SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL', [Math.trunc(at), name]);
      return true;
    },
    // The database belongs to whoever opened it (the worker's state store).
    close() {},
  };
}

/**
 * The registry this configuration uses: the shared one when WARDEN_DATABASE_URL is set (the
 * database's schema must be current, as for a worker), else `<stateDir>/identity.db`.
 */
export async function openApproverRegistry(options: { stateDir: string; env?: NodeJS.ProcessEnv }): Promise<ApproverStore> {
  const env = options.env ?? process.env;
  if (!usesSharedDatabase(env)) return openApproverStore({ stateDir: options.stateDir });
  const state = await openStateStore({ stateDir: options.stateDir, env });
  return { ...openSqlApproverStore(state.db), close: () => state.close() };
}
