/**
 * Pre-task snapshots (`snapshot: true`): before the task's first step, a full content-addressed
 * copy of the workspace's regular files and of its databases, for the cases compensation alone
 * cannot undo. The snapshot is immutable once written (taking it again returns the first one, so
 * a retried activity cannot snapshot a workspace the task already changed).
 *
 * Restoring it puts every snapshotted file back and deletes files added since. Differences the
 * task's own commit does not explain (someone else's work) are refused (ERR_ROLLBACK_CONFLICT)
 * unless `force`. Paths are confined like every fs path; symbolic links are never followed,
 * snapshotted or created.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RecoveryError } from '../errors';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { writeFileAtomic } from './atomic-file';
import { commitManifestPathOf, preTaskManifestPathOf } from './recovery-paths';
import {
  fileStateOf,
  putObjectFromFile,
  objectPathOf,
  readManifest,
  readObject,
  storeFileAt,
  writeManifest,
  type DatabaseSnapshot,
  type SnapshotEntry,
  type SnapshotManifest,
} from './snapshot-store';
import { walkFiles } from './walk-files';

/** Defaults that keep a snapshot of a runaway workspace from filling the disk. */
export const SNAPSHOT_LIMITS = { maxFiles: 100_000, maxBytes: 2 * 1024 * 1024 * 1024 } as const;

export interface SnapshotOptions {
  stateDir: string;
  taskKey: string;
  /** The workspace to copy (its regular files; symlinks and special files are skipped). */
  workspace?: string;
  /** Databases to copy: name -> path of the SQLite file. */
  databases?: Readonly<Record<string, string>>;
  maxFiles?: number;
  maxBytes?: number;
  now?: () => Date;
}

/** Takes the pre-task snapshot of a task tree, or returns the one already taken. */
export async function snapshotWorkspace(options: SnapshotOptions): Promise<SnapshotManifest> {
  const file = preTaskManifestPathOf(options.stateDir, options.taskKey);
  const existing = await readManifest(file);
  if (existing !== undefined) return existing;
  const maxFiles = options.maxFiles ?? SNAPSHOT_LIMITS.maxFiles;
  const maxBytes = options.maxBytes ?? SNAPSHOT_LIMITS.maxBytes;
  const tooLarge = (what: string): never => {
    throw new RecoveryError('ERR_SNAPSHOT_TOO_LARGE', `cannot snapshot ${options.taskKey}: ${what}`, { details: { taskKey: options.taskKey } });
  };

  const entries: SnapshotEntry[] = [];
  let workspace = '';
  if (options.workspace !== undefined) {
    workspace = realRootOf(options.workspace);
    const files = await walkFiles(workspace, {
      exclude: await excludedFolders(options.stateDir),
      maxFiles,
      onTooMany: (count) => tooLarge(`the workspace has more than ${maxFiles} files (${count} so far)`),
    });
    let bytes = 0;
    for (const path of files) {
      const absolute = resolveConfined(workspace, path, 'refuse').absolute;
      const sha = await storeFileAt(options.stateDir, absolute);
      if (sha === null || sha.startsWith('other:')) continue; // vanished or replaced while walking
      bytes += (await fsp.stat(objectPathOf(options.stateDir, sha))).size;
      if (bytes > maxBytes) tooLarge(`the workspace holds more than ${maxBytes} bytes`);
      entries.push({ path, before: sha, after: sha });
    }
  }
  const databases: DatabaseSnapshot[] = [];
  for (const [name, path] of Object.entries(options.databases ?? {})) {
    databases.push({ name, path, object: await snapshotDatabase(options.stateDir, path) });
  }
  const manifest: SnapshotManifest = {
    version: 1,
    taskKey: options.taskKey,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    kind: 'pre-task',
    status: 'complete',
    workspace,
    entries,
    ...(databases.length > 0 ? { databases } : {}),
  };
  await writeManifest(file, manifest);
  return manifest;
}

/** The state folder, when it sits inside the workspace, is not part of the workspace's content. */
async function excludedFolders(stateDir: string): Promise<string[]> {
  try {
    return [await fsp.realpath(stateDir)];
  } catch {
    return [];
  }
}

/** A consistent copy of the database at `path` (VACUUM INTO), stored as an object. */
async function snapshotDatabase(stateDir: string, path: string): Promise<string> {
  const temp = join(stateDir, 'snapshots', `.db-${process.pid}-${Date.now()}.sqlite`);
  await fsp.mkdir(join(stateDir, 'snapshots'), { recursive: true });
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.prepare('VACUUM INTO ?').run(temp);
  } finally {
    db.close();
  }
  try {
    return await putObjectFromFile(stateDir, temp);
  } finally {
    await fsp.rm(temp, { force: true });
  }
}

export interface RestoreResult {
  restored: string[];
  deleted: string[];
  /** Paths overwritten or deleted although the task's commit did not explain their change (`force`). */
  forced: string[];
  databases: string[];
}

/**
 * Puts the workspace (and, with `databases: true`, the snapshotted databases) back to the
 * pre-task snapshot. Refuses differences the task's commit does not explain unless `force`.
 */
export async function restoreSnapshot(options: {
  stateDir: string;
  taskKey: string;
  workspace?: string;
  force?: boolean;
  databases?: boolean;
}): Promise<RestoreResult> {
  const snapshot = await readManifest(preTaskManifestPathOf(options.stateDir, options.taskKey));
  if (snapshot === undefined) {
    throw new RecoveryError('ERR_SNAPSHOT_NOT_FOUND', `no pre-task snapshot of ${options.taskKey}`, { details: { taskKey: options.taskKey } });
  }
  const commit = await readManifest(commitManifestPathOf(options.stateDir, options.taskKey));
  const committedAfter = new Map((commit?.entries ?? []).map((e) => [e.path, e.after]));
  const result: RestoreResult = { restored: [], deleted: [], forced: [], databases: [] };

  const workspacePath = options.workspace ?? (snapshot.workspace === '' ? undefined : snapshot.workspace);
  if (workspacePath !== undefined) {
    const root = realRootOf(workspacePath);
    const wanted = new Map(snapshot.entries.map((e) => [e.path, e.after]));
    const present = await walkFiles(root, { exclude: await excludedFolders(options.stateDir) });
    const changes: { path: string; absolute: string; want: string | null; explained: boolean }[] = [];
    const conflicts: string[] = [];
    for (const path of new Set([...wanted.keys(), ...present])) {
      let absolute: string;
      try {
        absolute = resolveConfined(root, path, 'refuse').absolute;
      } catch {
        conflicts.push(path);
        continue;
      }
      const want = wanted.get(path) ?? null;
      const state = await fileStateOf(absolute);
      if (state === want) continue;
      if (state !== null && state.startsWith('other:')) {
        conflicts.push(path);
        continue;
      }
      const explained = committedAfter.has(path) && committedAfter.get(path) === state;
      if (!explained && options.force !== true) conflicts.push(path);
      else changes.push({ path, absolute, want, explained });
    }
    if (conflicts.length > 0) {
      throw new RecoveryError('ERR_ROLLBACK_CONFLICT', `cannot restore the snapshot of ${options.taskKey}: changed by something other than the task: ${conflicts.join(', ')}`, {
        details: { taskKey: options.taskKey, paths: conflicts },
      });
    }
    for (const change of changes) {
      if (change.want === null) {
        await fsp.rm(change.absolute, { force: true });
        result.deleted.push(change.path);
      } else {
        await fsp.mkdir(join(change.absolute, '..'), { recursive: true });
        await writeFileAtomic(change.absolute, await readObject(options.stateDir, change.want));
        result.restored.push(change.path);
      }
      if (!change.explained) result.forced.push(change.path);
    }
  }
  if (options.databases === true) {
    for (const database of snapshot.databases ?? []) {
      await restoreDatabase(options.stateDir, database);
      result.databases.push(database.name);
    }
  }
  return result;
}

/** Copies a database snapshot back over its file with SQLite's online backup (safe with other connections). */
async function restoreDatabase(stateDir: string, database: DatabaseSnapshot): Promise<void> {
  const temp = join(stateDir, 'snapshots', `.restore-${process.pid}-${Date.now()}.sqlite`);
  await fsp.writeFile(temp, await readObject(stateDir, database.object), { mode: 0o600 });
  const source = new Database(temp, { readonly: true, fileMustExist: true });
  try {
    await source.backup(database.path);
  } finally {
    source.close();
    await fsp.rm(temp, { force: true });
  }
}
