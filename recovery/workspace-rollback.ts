/**
 * Undoing a committed overlay: every file the commit wrote goes back to what it replaced (a file
 * the task created is deleted, and folders it created are removed when empty).
 *
 * Invariants: nothing is touched when any file changed since the commit (ERR_ROLLBACK_CONFLICT,
 * naming the paths) unless `force`; paths go through the fs capability's confinement with every
 * symlink refused, so a rollback never writes or deletes outside the workspace; every replacement
 * is atomic; running it again after it finished, or after a crash halfway, is safe (files already
 * restored are recognised by their hash).
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { RecoveryError } from '../errors';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { writeFileAtomic } from './atomic-file';
import { commitManifestPathOf } from './recovery-paths';
import { fileStateOf, readManifest, readObject, writeManifest, type SnapshotEntry } from './snapshot-store';

export interface RollbackOptions {
  stateDir: string;
  taskKey: string;
  /** The workspace; defaults to the one recorded in the commit manifest (pass it when the folder moved). */
  workspace?: string;
  /** Restore files that changed since the commit too (their later content is lost). */
  force?: boolean;
  now?: () => Date;
}

export interface RollbackResult {
  status: 'rolled-back' | 'already-rolled-back' | 'nothing-to-roll-back';
  /** Files written back to their content before the task. */
  restored: string[];
  /** Files the task had created, deleted again. */
  deleted: string[];
  /** Files already as they were before the task (e.g. a second run). */
  unchanged: string[];
  /** Files that had changed since the commit and were overwritten anyway (`force`). */
  forced: string[];
}

/** Restores the workspace files of a task's commit to their state before the commit. */
export async function rollbackTask(options: RollbackOptions): Promise<RollbackResult> {
  const manifestFile = commitManifestPathOf(options.stateDir, options.taskKey);
  const manifest = await readManifest(manifestFile);
  const empty = { restored: [], deleted: [], unchanged: [], forced: [] };
  if (manifest === undefined) return { status: 'nothing-to-roll-back', ...empty };
  if (manifest.status === 'rolled-back') return { status: 'already-rolled-back', ...empty };
  const root = realRootOf(options.workspace ?? manifest.workspace);

  const plan: { entry: SnapshotEntry; absolute: string; forced: boolean }[] = [];
  const unchanged: string[] = [];
  const conflicts: string[] = [];
  for (const entry of manifest.entries) {
    let absolute: string;
    try {
      absolute = resolveConfined(root, entry.path, 'refuse').absolute;
    } catch {
      conflicts.push(entry.path); // a symlink appeared on the way: never followed, even with force
      continue;
    }
    const state = await fileStateOf(absolute);
    // A folder where the task's new file was never written (its commit was cut short) is not the task's.
    if (state === entry.before || (entry.before === null && state === 'other:folder')) unchanged.push(entry.path);
    else if (state === entry.after) plan.push({ entry, absolute, forced: false });
    // A file the task replaced by a folder: the folder's files are the task's (restored first).
    else if (entry.after === null && entry.before !== null && state === 'other:folder' && (manifest.createdDirs ?? []).includes(entry.path)) plan.push({ entry, absolute, forced: false });
    else if (options.force === true && (state === null || !state.startsWith('other:'))) plan.push({ entry, absolute, forced: true });
    else conflicts.push(entry.path);
  }
  if (conflicts.length > 0) {
    throw new RecoveryError(
      'ERR_ROLLBACK_CONFLICT',
      `cannot roll back ${options.taskKey}: changed since the commit: ${conflicts.join(', ')}${options.force === true ? '' : ' (`warden rollback --force` overwrites them)'}`,
      { details: { taskKey: options.taskKey, paths: conflicts } },
    );
  }

  // Every object needed must be present and intact before the first file is touched.
  for (const { entry } of plan) if (entry.before !== null) await readObject(options.stateDir, entry.before);

  const result: RollbackResult = { status: 'rolled-back', restored: [], deleted: [], unchanged, forced: [] };
  // Files the task created go first, then the folders it created: a file it replaced by a folder
  // (or a folder by a file) can then be put back.
  plan.sort((a, b) => Number(a.entry.before !== null) - Number(b.entry.before !== null));
  let foldersRemoved = false;
  for (const { entry, absolute, forced } of plan) {
    if (entry.before !== null && !foldersRemoved) {
      await removeCreatedDirs(root, manifest.createdDirs ?? []);
      foldersRemoved = true;
    }
    if (entry.before === null) {
      await fsp.rm(absolute, { force: true });
      result.deleted.push(entry.path);
    } else {
      await fsp.mkdir(join(absolute, '..'), { recursive: true });
      // A folder the task put where this file was (emptied by the deletions before it) goes.
      if ((await fsp.lstat(absolute).catch(() => undefined))?.isDirectory() === true) await fsp.rmdir(absolute);
      await writeFileAtomic(absolute, await readObject(options.stateDir, entry.before));
      result.restored.push(entry.path);
    }
    if (forced) result.forced.push(entry.path);
  }
  await removeCreatedDirs(root, manifest.createdDirs ?? []);
  await writeManifest(manifestFile, { ...manifest, status: 'rolled-back', rolledBackAt: (options.now?.() ?? new Date()).toISOString() });
  return result;
}

/** Removes the folders a commit created, deepest first, when empty. */
async function removeCreatedDirs(root: string, createdDirs: readonly string[]): Promise<void> {
  for (const folder of [...createdDirs].reverse()) {
    try {
      await fsp.rmdir(resolveConfined(root, folder, 'refuse').absolute);
    } catch {
      // Not empty (someone put a file there since) or already gone: leave it.
    }
  }
}
