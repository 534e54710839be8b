/**
 * The approvers Warden knows: each a name and the public half of the Ed25519 key Warden issued
 * to that person (`warden approvers add`). Only a decision signed with a registered, unrevoked
 * approver key counts (identity/approval-decision.ts). Kept behind a small store interface, like
 * the credential stores, so it can live in SQLite (here, in `<stateDir>/identity.db`) or in
 * another database.
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

export interface ApproverStore {
  /** Registers a new approver; ERR_APPROVER_INVALID when the name is already registered (also when removed). */
  add(record: ApproverRecord): void;
  /** The record of `name`, revoked or not; undefined when unknown. */
  get(name: string): ApproverRecord | undefined;
  /** Every record, by name. */
  list(): ApproverRecord[];
  /** Revokes `name` (idempotent); false when unknown. */
  remove(name: string, at?: number): boolean;
  close(): void;
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
export function approverKeyFiles(store: Pick<ApproverStore, 'list'>): string[] {
  return store.list().flatMap((r) => (r.keyFile === undefined ? [] : [r.keyFile]));
}

/** Opens the approver table of `<stateDir>/identity.db` (created 0600 on first use). */
export function openApproverStore(options: { stateDir: string }): ApproverStore {
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
      if (insert.run(checked.name, JSON.stringify(checked)).changes !== 1) {
        throw new ApproverError('ERR_APPROVER_INVALID', `an approver named "${checked.name}" is already registered (remove it first to issue a new key)`, {
          details: { name: checked.name },
        });
      }
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
