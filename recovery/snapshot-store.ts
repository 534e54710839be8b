/**
 * The content-addressed snapshot store and the manifests that point into it.
 *
 * Invariants: an object is stored under the SHA-256 of its bytes and never changes afterwards
 * (written atomically, read back only after its hash is checked); a manifest is validated against
 * its schema on every read, so a damaged or edited manifest is refused (ERR_SNAPSHOT_CORRUPT)
 * rather than acted upon.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RecoveryError } from '../errors';
import { readTextIfExists, writeFileAtomic, writeJsonAtomic } from './atomic-file';
import { commitManifestPathOf, preTaskManifestPathOf, snapshotsDirOf } from './recovery-paths';

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');

/** One file of a snapshot: its workspace-relative path (`/`-separated), before and after. */
export const SnapshotEntrySchema = z.strictObject({
  path: z.string().min(1),
  /** The content the task replaced; null when the file did not exist. */
  before: Sha256Schema.nullable(),
  /** The content the task wrote (for a pre-task snapshot: the content at snapshot time); null when the task deleted the file. */
  after: Sha256Schema.nullable(),
});
export type SnapshotEntry = z.infer<typeof SnapshotEntrySchema>;

/** A database copied before the task (`snapshot: true`). */
export const DatabaseSnapshotSchema = z.strictObject({
  name: z.string(),
  path: z.string(),
  /** The object holding a consistent copy of the database file. */
  object: Sha256Schema,
});
export type DatabaseSnapshot = z.infer<typeof DatabaseSnapshotSchema>;

export const SnapshotManifestSchema = z.strictObject({
  version: z.literal(1),
  taskKey: z.string(),
  createdAt: z.string(),
  kind: z.enum(['commit', 'pre-task']),
  /**
   * commit: `committing` (written before the first file is replaced), `committed`, `rolled-back`;
   * pre-task: `complete`.
   */
  status: z.enum(['committing', 'committed', 'rolled-back', 'complete']),
  /** Real path of the workspace the entries are relative to. */
  workspace: z.string(),
  entries: z.array(SnapshotEntrySchema),
  /** Folders the commit created (deepest last), removed again by a rollback when empty. */
  createdDirs: z.array(z.string()).optional(),
  /** The overlay this commit came from (guards against a second run under the same task key). */
  overlayId: z.string().optional(),
  databases: z.array(DatabaseSnapshotSchema).optional(),
  committedAt: z.string().optional(),
  rolledBackAt: z.string().optional(),
});
export type SnapshotManifest = z.infer<typeof SnapshotManifestSchema>;

export function sha256Of(content: Uint8Array | string): string {
  return createHash('sha256').update(content).digest('hex');
}

export function objectsDirOf(stateDir: string): string {
  return join(snapshotsDirOf(stateDir), 'objects');
}

export function objectPathOf(stateDir: string, sha: string): string {
  Sha256Schema.parse(sha);
  return join(objectsDirOf(stateDir), sha);
}

/** Stores `content` (if not already there) and returns its SHA-256. */
export async function putObject(stateDir: string, content: Uint8Array): Promise<string> {
  const sha = sha256Of(content);
  const target = objectPathOf(stateDir, sha);
  try {
    const stat = await fsp.stat(target);
    if (stat.isFile() && stat.size === content.byteLength) return sha;
  } catch {
    // Not stored yet.
  }
  await fsp.mkdir(objectsDirOf(stateDir), { recursive: true });
  await writeFileAtomic(target, content, { mode: 0o444 });
  return sha;
}

/** Stores the file at `absolute` and returns its SHA-256 (for large files such as database copies). */
export async function putObjectFromFile(stateDir: string, absolute: string): Promise<string> {
  return putObject(stateDir, await fsp.readFile(absolute));
}

/** The bytes of object `sha`, checked against their hash. */
export async function readObject(stateDir: string, sha: string): Promise<Buffer> {
  let content: Buffer;
  try {
    content = await fsp.readFile(objectPathOf(stateDir, sha));
  } catch (cause) {
    throw new RecoveryError('ERR_SNAPSHOT_NOT_FOUND', `snapshot object ${sha} is missing`, { details: { object: sha }, cause });
  }
  if (sha256Of(content) !== sha) {
    throw new RecoveryError('ERR_SNAPSHOT_CORRUPT', `snapshot object ${sha} does not match its hash`, { details: { object: sha } });
  }
  return content;
}

/**
 * What is at `absolute` now, for comparing against a manifest: null when nothing is there, the
 * SHA-256 of a regular file (`file` when `hash` is false), or `other:<kind>` for a folder,
 * symlink or special file.
 */
export async function fileStateOf(absolute: string, hash = true): Promise<string | null> {
  let stat;
  try {
    stat = await fsp.lstat(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
  if (stat.isSymbolicLink()) return 'other:symlink';
  if (stat.isDirectory()) return 'other:folder';
  if (!stat.isFile()) return 'other:special';
  return hash ? sha256Of(await fsp.readFile(absolute)) : 'file';
}

/**
 * Like `fileStateOf`, but a regular file is also stored as an object (read once, so the hash
 * returned is exactly what was stored).
 */
export async function storeFileAt(stateDir: string, absolute: string): Promise<string | null> {
  const state = await fileStateOf(absolute, false);
  if (state !== 'file') return state;
  return putObject(stateDir, await fsp.readFile(absolute));
}

/** The manifest at `file`, validated; undefined when there is none. */
export async function readManifest(file: string): Promise<SnapshotManifest | undefined> {
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new RecoveryError('ERR_SNAPSHOT_CORRUPT', `snapshot manifest ${file} is not valid JSON`, { details: { file }, cause });
  }
  const result = SnapshotManifestSchema.safeParse(parsed);
  if (!result.success) {
    const where = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
    throw new RecoveryError('ERR_SNAPSHOT_CORRUPT', `snapshot manifest ${file} is invalid: ${where}`, { details: { file } });
  }
  return result.data;
}

export async function writeManifest(file: string, manifest: SnapshotManifest): Promise<void> {
  await writeJsonAtomic(file, SnapshotManifestSchema.parse(manifest));
}

/** Every snapshot of a task tree: the pre-task one (if taken) first, then its commit (if any). */
export async function listSnapshots(stateDir: string, taskKey: string): Promise<SnapshotManifest[]> {
  const found: SnapshotManifest[] = [];
  for (const file of [preTaskManifestPathOf(stateDir, taskKey), commitManifestPathOf(stateDir, taskKey)]) {
    const manifest = await readManifest(file);
    if (manifest !== undefined) found.push(manifest);
  }
  return found;
}
