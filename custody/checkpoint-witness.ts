/**
 * Signed tree heads published outside the ledger, as they are made, to a witness the user names
 * (`WARDEN_CUSTODY_WITNESS`): a folder (one file per head, plus `jwks.json`) or a file (one JSON
 * line per head or key, appended). Whoever later doubts the ledger checks it against them:
 * `warden audit verify --checkpoint <file|folder>`.
 *
 * What this protects: a ledger cut back past a published head (its newest checkpoint deleted with
 * the records it covered) no longer reaches that head's tree size; a ledger rewritten and re-signed
 * with the ledger's own key no longer has that head's root. Both show as tampering, which the
 * ledger alone cannot show. The keys a verifier trusts are those the witness published, so a key
 * added to the state folder or the database later is not trusted.
 *
 * Invariants: every head is written durably (fsync, and an atomic rename in folder mode) before
 * `publish` resolves; publishing the same head twice is harmless; reading never trusts a line
 * that does not parse (it is reported, not skipped silently).
 */
import { readUserFileSync, UserFileError } from '../regular-file';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CustodyError } from '../errors';
import { CheckpointSchema, type Checkpoint } from './ledger-record';
import type { PublicJwk } from './signing-key';

export const SIGNED_TREE_HEAD_FORMAT = 'warden.custody.signed-tree-head/1';
const JWKS_FILE = 'jwks.json';

const PublicJwkSchema = z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().regex(/^[A-Za-z0-9_-]{43}$/), kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });

export const SignedTreeHeadSchema = z.strictObject({
  format: z.literal(SIGNED_TREE_HEAD_FORMAT),
  /** The ledger it is a head of (file path, or database without password). */
  ledger: z.string(),
  checkpoint: CheckpointSchema,
});
export type SignedTreeHead = z.infer<typeof SignedTreeHeadSchema>;

const KeyLineSchema = z.strictObject({ format: z.literal('warden.custody.public-key/1'), key: PublicJwkSchema });
const JwksFileSchema = z.strictObject({ keys: z.array(PublicJwkSchema) });

export interface CheckpointWitness {
  readonly location: string;
  readonly kind: 'folder' | 'file';
  /** Publishes a signer's public key (before the first head it signs). */
  publishKey(key: PublicJwk): void;
  /** Publishes one signed tree head, durably. */
  publish(ledger: string, checkpoint: Checkpoint): void;
}

function witnessError(location: string, error: unknown): CustodyError {
  return new CustodyError('ERR_CUSTODY_WRITE', `cannot publish to the custody witness ${location}: ${error instanceof Error ? error.message : String(error)}`, {
    details: { witness: location },
    retryable: true,
    cause: error,
  });
}

function writeDurably(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function appendDurably(file: string, line: string): void {
  const fd = fs.openSync(file, 'a', 0o644);
  try {
    fs.writeSync(fd, `${line}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Folder mode when `location` is an existing folder or ends with `/`; file mode otherwise. */
export function witnessKindOf(location: string): 'folder' | 'file' {
  if (location.endsWith('/')) return 'folder';
  try {
    return fs.statSync(location).isDirectory() ? 'folder' : 'file';
  } catch {
    return 'file';
  }
}

/** The witness at `location` (created on first publication). */
export function openCheckpointWitness(location: string): CheckpointWitness {
  const kind = witnessKindOf(location);
  const known = new Set<string>();
  return {
    location,
    kind,
    publishKey(key) {
      if (known.has(key.kid)) return;
      try {
        if (kind === 'folder') {
          fs.mkdirSync(location, { recursive: true });
          const file = join(location, JWKS_FILE);
          const current = readJwksFile(file);
          if (!current.some((k) => k.kid === key.kid)) writeDurably(file, `${JSON.stringify({ keys: [...current, PublicJwkSchema.parse(key)] }, null, 2)}\n`);
        } else {
          appendDurably(location, JSON.stringify({ format: 'warden.custody.public-key/1', key: PublicJwkSchema.parse(key) }));
        }
        known.add(key.kid);
      } catch (error) {
        throw witnessError(location, error);
      }
    },
    publish(ledger, checkpoint) {
      const head: SignedTreeHead = { format: SIGNED_TREE_HEAD_FORMAT, ledger, checkpoint: CheckpointSchema.parse(checkpoint) };
      try {
        if (kind === 'folder') {
          fs.mkdirSync(location, { recursive: true });
          const name = `sth-${String(checkpoint.treeSize).padStart(12, '0')}-${checkpoint.id}-${checkpoint.kid.slice(0, 8)}.json`;
          writeDurably(join(location, name), `${JSON.stringify(head, null, 2)}\n`);
        } else {
          appendDurably(location, JSON.stringify(head));
        }
      } catch (error) {
        throw witnessError(location, error);
      }
    },
  };
}

/**
 * The Ed25519 keys of a JWKS file (`{ keys: [...] }`); [] when there is no such file.
 * @throws CustodyError ERR_CUSTODY_BROKEN when it is not one; UserFileError (ERR_INPUT_FILE_UNREADABLE)
 *   when it cannot be read (a FIFO is refused, not waited on: ../regular-file.ts).
 */
export function readJwksFile(file: string): PublicJwk[] {
  let text: string;
  try {
    text = readUserFileSync(file, { what: 'JWKS' });
  } catch (error) {
    if (error instanceof UserFileError && error.kind === 'missing') return [];
    throw error;
  }
  const parsed = JwksFileSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new CustodyError('ERR_CUSTODY_BROKEN', `the witness key set ${file} is not a JWKS of Ed25519 keys`, { details: { file } });
  return parsed.data.keys;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface PublishedHeads {
  location: string;
  heads: SignedTreeHead[];
  /** Every key the witness published (the keys a verifier pins). */
  keys: PublicJwk[];
}

/**
 * Everything a witness holds. @throws UserFileError `ERR_INPUT_FILE_UNREADABLE` when there is no
 * witness at `location` or it cannot be read (a FIFO); CustodyError `ERR_CUSTODY_BROKEN` naming the
 * file and line that does not parse.
 */
export function readPublishedHeads(location: string): PublishedHeads {
  // Nothing there is the user's file missing (exit 2), in the words of every other one (../regular-file.ts).
  if (!fs.existsSync(location)) throw new UserFileError(location, 'custody witness', 'missing', `no such file or folder: looked for ${resolve(location)}`);
  const heads: SignedTreeHead[] = [];
  const keys = new Map<string, PublicJwk>();
  const bad = (where: string, what: string) => new CustodyError('ERR_CUSTODY_BROKEN', `the custody witness ${where} ${what}`, { details: { witness: location, where } });
  if (witnessKindOf(location) === 'folder') {
    for (const key of readJwksFile(join(location, JWKS_FILE))) keys.set(key.kid, key);
    for (const entry of fs.readdirSync(location).sort()) {
      if (!/^sth-\d{12}-\d+-[A-Za-z0-9_-]{8}\.json$/.test(entry)) continue;
      const file = join(location, entry);
      const parsed = SignedTreeHeadSchema.safeParse(safeJson(readUserFileSync(file, { what: 'signed tree head' })));
      if (!parsed.success) throw bad(file, 'is not a signed tree head');
      heads.push(parsed.data);
    }
  } else {
    // The reader of every user's file (../regular-file.ts): a FIFO is refused, not waited on.
    const lines = readUserFileSync(location, { what: 'custody witness' }).split('\n');
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      const value = safeJson(line);
      const head = SignedTreeHeadSchema.safeParse(value);
      if (head.success) {
        heads.push(head.data);
        return;
      }
      const key = KeyLineSchema.safeParse(value);
      if (key.success) {
        keys.set(key.data.key.kid, key.data.key);
        return;
      }
      // A torn last line (a crash mid-append) is not a forgery, but it is not a head either.
      throw bad(`${location}:${index + 1}`, 'line is neither a signed tree head nor a public key');
    });
  }
  // The same head published twice (a retried publication) counts once.
  const unique = new Map(heads.map((h) => [`${h.checkpoint.id}:${h.checkpoint.treeSize}:${h.checkpoint.rootHash}:${h.checkpoint.kid}`, h]));
  return { location, heads: [...unique.values()].sort((a, b) => a.checkpoint.treeSize - b.checkpoint.treeSize), keys: [...keys.values()] };
}
