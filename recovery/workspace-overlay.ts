/**
 * Copy-on-write workspace overlays: one per task tree, under `<stateDir>/overlays/<taskKey>/`.
 * While the task runs, the fs capability writes only into the overlay's `upper/` folder (see
 * sandbox/capabilities/fs-capability.ts); the real workspace is untouched until `commitOverlay`.
 *
 * Invariants of a commit:
 * - Before the first workspace file is replaced, a manifest (status `committing`) records, for
 *   every file, the content it replaces (or "absent") and the new content, both stored in the
 *   content-addressed snapshot store. A commit interrupted at any point is finished by running
 *   it again, from the manifest and the store alone; files already replaced are recognised by
 *   their hash and skipped (idempotent).
 * - Every file is replaced atomically (temporary file in the same folder + rename).
 * - Paths are re-checked against the workspace with the same confinement as the fs capability,
 *   refusing any symbolic link on the way: a commit never writes outside the workspace.
 * - A file changed by someone else between planning and replacing is not overwritten
 *   (ERR_COMMIT_CONFLICT).
 * - A path no agent may change (Warden's own resources, the task file, its policy packs: see
 *   sandbox/capabilities/protected-guard.ts) is never written or deleted; it is reported as not
 *   committed.
 */
import { readFileBeneath } from './beneath';
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { z } from 'zod';
import { RecoveryError } from '../errors';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { readTextIfExists, writeFileAtomic, writeJsonAtomic } from './atomic-file';
import { commitManifestPathOf, overlayPathsOf, type OverlayPaths } from './recovery-paths';
import {
  fileStateOf,
  putObject,
  readManifest,
  storeFileAt,
  readObject,
  writeManifest,
  type SnapshotEntry,
  type SnapshotManifest,
} from './snapshot-store';
import { readUpperLayer } from './overlay-layer';
import { BARE_REPOSITORY_CONFIG, hostCodeAllowed, hostCodeReasonOf } from './host-code-files';
import { heldDirOf } from './recovery-paths';
import { removeCallLeases } from './call-lease';
import { apparentBytesOf, attachOverlayVolume, ensureOverlayVolume, releaseOverlayVolume } from './overlay-volume';
import { walkFiles } from './walk-files';
import { recordVolumeOwner, type VolumeOwner } from './volume-sweep';
import { createProtectedGuard, type ProtectedSet } from '../sandbox/capabilities/protected-guard';
import { rollbackTask } from './workspace-rollback';

export const OverlayManifestSchema = z.strictObject({
  version: z.literal(1),
  taskKey: z.string(),
  /** Random id of this overlay: a commit manifest from another overlay under the same key is refused. */
  overlayId: z.string(),
  /** Real path of the workspace this overlay sits on. */
  workspace: z.string(),
  createdAt: z.string(),
});
export type OverlayManifest = z.infer<typeof OverlayManifestSchema>;

export interface OpenedOverlay extends OverlayPaths {
  taskKey: string;
  overlayId: string;
  workspace: string;
}

/**
 * Creates (or finds) the overlay of `taskKey` on `workspace` and returns its paths; `upper` goes
 * into the fs grant's `overlay`. Idempotent; refuses (ERR_OVERLAY_INVALID) an existing overlay
 * of the same key on another workspace. With `volumeMb` the overlay folder is a volume of that
 * many MiB (recovery/overlay-volume.ts: the tree's bound on disk); an existing volume is mounted
 * again whatever the caller asks; `owner` (the tree's root workflow id and first run id) is
 * recorded beside a volume so it is released once that tree is closed (recovery/volume-sweep.ts).
 */
export async function openOverlay(options: { stateDir: string; taskKey: string; workspace: string; now?: () => Date; volumeMb?: number; owner?: VolumeOwner | undefined }): Promise<OpenedOverlay> {
  const paths = overlayPathsOf(options.stateDir, options.taskKey);
  // Who owns a new volume, so a worker's sweep can release it once that tree is closed (volume-sweep.ts).
  if (options.volumeMb !== undefined && options.owner !== undefined) recordVolumeOwner(options.stateDir, options.owner);
  if (options.volumeMb === undefined) await attachOverlayVolume(options.stateDir, options.taskKey);
  else await ensureOverlayVolume(options.stateDir, options.taskKey, options.volumeMb);
  const workspace = realRootOf(options.workspace);
  const existing = await readOverlayManifest(paths.manifest);
  if (existing !== undefined) {
    if (existing.workspace !== workspace) {
      throw new RecoveryError('ERR_OVERLAY_INVALID', `the overlay of ${options.taskKey} sits on ${existing.workspace}, not ${workspace}`, {
        details: { taskKey: options.taskKey, workspace: existing.workspace },
      });
    }
    await fsp.mkdir(paths.upper, { recursive: true, mode: 0o700 });
    return { ...paths, taskKey: options.taskKey, overlayId: existing.overlayId, workspace };
  }
  const manifest: OverlayManifest = {
    version: 1,
    taskKey: options.taskKey,
    overlayId: randomUUID(),
    workspace,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
  };
  await fsp.mkdir(paths.upper, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(paths.manifest, manifest);
  return { ...paths, taskKey: options.taskKey, overlayId: manifest.overlayId, workspace };
}

async function readOverlayManifest(file: string): Promise<OverlayManifest | undefined> {
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  const parsed = OverlayManifestSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new RecoveryError('ERR_OVERLAY_INVALID', `overlay manifest ${file} is invalid`, { details: { file } });
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A step of a commit, reported as it completes (for logs, and for tests that simulate a crash). */
export type CommitProgress =
  | { stage: 'manifest-written'; entries: number }
  | { stage: 'file-replaced'; path: string }
  | { stage: 'committed' };

export interface CommitOptions {
  /** Where the commit's records live: manifests and the content-addressed store (a shared folder). */
  stateDir: string;
  /** The state folder whose `overlays/` holds the overlay (default `stateDir`). */
  overlayStateDir?: string;
  taskKey: string;
  /** The real workspace (must be the one the overlay sits on). */
  workspace: string;
  onProgress?: (event: CommitProgress) => void;
  now?: () => Date;
  /**
   * Warden's own resources and the task's controls (worker/warden-resources.ts): a path the fs
   * capability would refuse to write is not committed either, whoever wrote it into the overlay.
   */
  protected?: ProtectedSet;
  /**
   * Files on the host-code list (recovery/host-code-files.ts) the task may commit: paths, or
   * folders ending in `/` (the task file's `resources.allowHostCode`). Others are held.
   */
  allowHostCode?: readonly string[];
  /** The task tree's bound (`limits.workspaceMb`, bytes): an overlay whose files are longer in all is not committed (ERR_WORKSPACE_QUOTA). */
  workspaceLimitBytes?: number;
}

export interface CommitResult {
  /** The commit manifest; undefined when the overlay held no change. */
  manifest: SnapshotManifest | undefined;
  /**
   * Symbolic links and special files a program left in the overlay (`path (kind)`): Warden commits
   * regular files and deletions only, so these are left out, never followed or recreated.
   */
  skipped: string[];
  /**
   * Files that would make host tools run code (`path (why)`), not committed: copied to
   * `<stateDir>/held/<taskKey>/` for review instead (recovery/host-code-files.ts).
   */
  held: string[];
  /** Paths replaced or created by this run (an earlier interrupted run may have done others). */
  replaced: string[];
  /** True when the commit had already completed before this call. */
  alreadyCommitted: boolean;
}

/**
 * Makes the overlay's files real: snapshots what they replace, records the manifest, replaces
 * each file atomically, marks the manifest `committed`, then removes the overlay. Safe to call
 * again after a crash at any point, and after it succeeded (a no-op).
 */
export async function commitOverlay(options: CommitOptions): Promise<CommitResult> {
  const { stateDir, taskKey } = options;
  const paths = overlayPathsOf(options.overlayStateDir ?? stateDir, taskKey);
  await attachOverlayVolume(options.overlayStateDir ?? stateDir, taskKey);
  const manifestFile = commitManifestPathOf(stateDir, taskKey);
  const workspace = realRootOf(options.workspace);
  const overlay = await readOverlayManifest(paths.manifest);
  if (overlay !== undefined && overlay.workspace !== workspace) {
    throw new RecoveryError('ERR_OVERLAY_INVALID', `the overlay of ${taskKey} sits on ${overlay.workspace}, not ${workspace}`, {
      details: { taskKey, workspace: overlay.workspace },
    });
  }
  const skipped = await skippedEntries(paths.upper);
  const held = await holdHostCode(options, paths.upper, workspace);
  const heldPaths = new Set(held.map((h) => h.path));
  const heldReport = held.map((h) => `${h.path} (held: ${h.why}; to commit it, name it in resources.allowHostCode)`);
  let manifest = await readManifest(manifestFile);
  if (manifest !== undefined && overlay !== undefined && manifest.overlayId !== undefined && manifest.overlayId !== overlay.overlayId) {
    if ((await walkFiles(paths.upper)).length === 0) {
      // A later run under the same key that wrote nothing: nothing to commit, nothing to refuse.
      await removeOverlayFolder(options.overlayStateDir ?? stateDir, taskKey, paths.dir);
      return { manifest: undefined, replaced: [], alreadyCommitted: false, skipped, held: heldReport };
    }
    throw new RecoveryError(
      'ERR_OVERLAY_INVALID',
      `task key ${taskKey} already has a commit from another run (${manifest.createdAt}); task keys must be unique per task tree`,
      { details: { taskKey } },
    );
  }
  if (manifest !== undefined && manifest.status === 'rolled-back' && overlay !== undefined && manifest.overlayId === overlay.overlayId) {
    throw new RecoveryError('ERR_COMMIT_FAILED', `the commit of ${taskKey} failed and was undone; it is not tried again`, { details: { taskKey } });
  }
  if (manifest !== undefined && manifest.status !== 'committing') {
    await removeOverlayFolder(options.overlayStateDir ?? stateDir, taskKey, paths.dir);
    return { manifest, replaced: [], alreadyCommitted: true, skipped, held: heldReport };
  }
  if (manifest === undefined) {
    manifest = await planCommit(options, paths, workspace, overlay?.overlayId, heldPaths, skipped);
    if (manifest === undefined) {
      await removeOverlayFolder(options.overlayStateDir ?? stateDir, taskKey, paths.dir);
      return { manifest: undefined, replaced: [], alreadyCommitted: false, skipped, held: heldReport };
    }
    await writeManifest(manifestFile, manifest);
    options.onProgress?.({ stage: 'manifest-written', entries: manifest.entries.length });
  }

  const root = realRootOf(manifest.workspace);
  const conflicts: string[] = [];
  const pending: { entry: SnapshotEntry; absolute: string }[] = [];
  for (const entry of manifest.entries) {
    const target = resolveConfined(root, entry.path, 'refuse');
    const state = await fileStateOf(target.absolute);
    if (state === entry.after) continue;
    // A folder where a new file goes: the folder the task replaced (emptied by its deletions).
    if (state === entry.before || (state === 'other:folder' && entry.before === null)) pending.push({ entry, absolute: target.absolute });
    else conflicts.push(entry.path);
  }
  if (conflicts.length > 0) {
    throw new RecoveryError('ERR_COMMIT_CONFLICT', `cannot commit: changed in the workspace while the task ran: ${conflicts.join(', ')}`, {
      details: { taskKey, paths: conflicts },
    });
  }
  const replaced: string[] = [];
  // Deletions first: a file a program replaced by a folder (or a folder by a file) must be gone
  // before its replacement is written.
  pending.sort((a, b) => Number(a.entry.after !== null) - Number(b.entry.after !== null));
  for (const { entry, absolute } of pending) {
    try {
      if (entry.after === null) {
        await fsp.rm(absolute, { force: true });
      } else {
        await replaceFolderChain(root, absolute);
        await fsp.mkdir(dirname(absolute), { recursive: true });
        await writeFileAtomic(absolute, await readObject(stateDir, entry.after));
      }
    } catch (cause) {
      // All or nothing: what this commit replaced goes back, and the commit is refused for good.
      // (A crash, by contrast, leaves the manifest `committing`: running again finishes it.)
      await rollbackTask({ stateDir, taskKey, workspace: root, force: true }).catch(() => undefined);
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new RecoveryError('ERR_COMMIT_FAILED', `cannot commit ${JSON.stringify(entry.path)} (${why}); the workspace is left as it was before the task`, {
        details: { taskKey, path: entry.path },
        cause,
      });
    }
    replaced.push(entry.path);
    options.onProgress?.({ stage: 'file-replaced', path: entry.path });
  }
  const committed: SnapshotManifest = { ...manifest, status: 'committed', committedAt: (options.now?.() ?? new Date()).toISOString() };
  await writeManifest(manifestFile, committed);
  options.onProgress?.({ stage: 'committed' });
  await removeOverlayFolder(options.overlayStateDir ?? stateDir, taskKey, paths.dir);
  return { manifest: committed, replaced, alreadyCommitted: false, skipped, held: heldReport };
}

/** Reads the upper folder and the workspace and builds the `committing` manifest (undefined: nothing changed). */
async function planCommit(
  options: CommitOptions,
  paths: OverlayPaths,
  workspace: string,
  overlayId: string | undefined,
  held: ReadonlySet<string>,
  skipped: string[],
): Promise<SnapshotManifest | undefined> {
  const guard = createProtectedGuard(options.protected ?? { folders: [], files: [] });
  /** Left out (and reported) when the workspace path is one no agent may change. */
  const refused = (path: string, absolute: string): boolean => {
    const refusal = guard.refusalOfPath(absolute, 'write');
    if (refusal !== undefined) skipped.push(`${path} (${refusal.what}: not committed)`);
    return refusal !== undefined;
  };
  const upperExists = await fsp
    .lstat(paths.upper)
    .then((s) => s.isDirectory())
    .catch(() => false);
  if (!upperExists) return undefined;
  const upper = await fsp.realpath(paths.upper);
  // Programs in the OS sandbox write through a kernel overlay: deletions are whiteouts, a
  // replaced folder is opaque (recovery/overlay-layer.ts).
  const layer = readUpperLayer(upper);
  if (options.workspaceLimitBytes !== undefined) {
    // Sparse files cost the overlay nothing, but the workspace and the snapshot store get them whole.
    const total = apparentBytesOf(upper);
    if (total > options.workspaceLimitBytes) {
      const limitMb = Math.round(options.workspaceLimitBytes / 1024 / 1024);
      throw new RecoveryError('ERR_WORKSPACE_QUOTA', `the task's workspace changes are ${Math.ceil(total / 1024 / 1024)} MiB long, more than limits.workspaceMb (${limitMb} MiB): not committed (raise limits.workspaceMb in the task file for more)`, { details: { taskKey: options.taskKey, limitMb, apparentBytes: total } });
    }
  }
  const entries: SnapshotEntry[] = [];
  const createdDirs = new Set<string>();
  const replacedFolders: string[] = [];
  for (const path of layer.files) {
    if (held.has(path)) continue;
    // Never through a link, whatever changes the folder meanwhile (beneath.ts).
    resolveConfined(upper, path, 'refuse');
    const after = await putObject(options.stateDir, await readFileBeneath(upper, path));
    const target = resolveConfined(workspace, path, 'refuse');
    if (refused(path, target.absolute)) continue;
    let before = await storeFileAt(options.stateDir, target.absolute);
    if (before === 'other:folder') {
      // A program replaced a folder by a file (`rm -r build; touch build`): like the kernel
      // overlay, the file hides everything the workspace has under it, which is deleted first.
      replacedFolders.push(path);
      before = null;
    }
    if (before !== null && before.startsWith('other:')) {
      throw new RecoveryError('ERR_COMMIT_CONFLICT', `cannot commit ${JSON.stringify(path)}: the workspace has a ${before.slice(6)} there`, {
        details: { taskKey: options.taskKey, paths: [path] },
      });
    }
    if (before === after) continue;
    if (before === null) for (const folder of await missingFolders(workspace, dirname(target.absolute))) createdDirs.add(folder);
    entries.push({ path, before, after });
  }
  // Deleted: every workspace file at or under a whiteout, and under an opaque folder every
  // workspace file the layer does not have.
  const written = new Set(layer.files);
  const deletions = new Set<string>();
  for (const gone of layer.deleted) for (const file of await workspaceFilesAt(workspace, gone)) deletions.add(file);
  for (const folder of layer.opaque) for (const file of await workspaceFilesAt(workspace, folder)) if (!written.has(file)) deletions.add(file);
  for (const folder of replacedFolders) for (const file of await workspaceFilesAt(workspace, folder)) deletions.add(file);
  for (const path of [...deletions].sort()) {
    const target = resolveConfined(workspace, path, 'refuse');
    if (refused(path, target.absolute)) continue;
    const before = await storeFileAt(options.stateDir, target.absolute);
    if (before === null || before.startsWith('other:')) continue;
    entries.push({ path, before, after: null });
  }
  if (entries.length === 0) return undefined;
  return {
    version: 1,
    taskKey: options.taskKey,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    kind: 'commit',
    status: 'committing',
    workspace,
    entries,
    createdDirs: [...createdDirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1)),
    ...(overlayId === undefined ? {} : { overlayId }),
  };
}

/**
 * The upper folder's files on the host-code list and not allowed by the task: each is copied to
 * `<stateDir>/held/<taskKey>/<path>` (for the user to review) and left out of the commit. A
 * `config` next to a `HEAD` (in the overlay or the workspace) is a bare repository's config.
 */
async function holdHostCode(options: CommitOptions, upper: string, workspace: string): Promise<{ path: string; why: string }[]> {
  const real = await fsp.realpath(upper).catch(() => undefined);
  if (real === undefined) return [];
  const layer = readUpperLayer(real);
  const files = new Set(layer.files);
  const held: { path: string; why: string }[] = [];
  const hooksPath = await configuredHooksPath(workspace);
  for (const path of layer.files) {
    let why = hostCodeReasonOf(path);
    if (why === undefined && hooksPath !== undefined && path.toLowerCase().startsWith(hooksPath)) why = `git runs hooks from core.hooksPath (${hooksPath})`;
    if (why === undefined && /(^|\/)config$/i.test(path)) {
      const head = `${path.slice(0, path.length - 'config'.length)}HEAD`;
      const headInWorkspace = await fsp
        .lstat(resolveConfined(workspace, head, 'refuse').absolute)
        .then(() => true)
        .catch(() => false);
      if (files.has(head) || headInWorkspace) why = BARE_REPOSITORY_CONFIG;
    }
    if (why === undefined || hostCodeAllowed(path, options.allowHostCode)) continue;
    const target = resolveConfined(heldDirOf(options.stateDir, options.taskKey), path, 'refuse');
    await fsp.mkdir(dirname(target.absolute), { recursive: true, mode: 0o700 });
    // Read through folder descriptors: a server of the task may still be changing the folder (beneath.ts).
    resolveConfined(real, path, 'refuse');
    await fsp.writeFile(target.absolute, await readFileBeneath(real, path), { mode: 0o600 });
    held.push({ path, why });
  }
  return held;
}

/**
 * The workspace repository's `core.hooksPath` when it names a folder inside the workspace
 * (`.githooks/`, lower-case, `/`-terminated): git runs the hooks there, so they are host code too.
 */
async function configuredHooksPath(workspace: string): Promise<string | undefined> {
  const config = await fsp.readFile(`${workspace}${sep}.git${sep}config`, 'utf8').catch(() => undefined);
  const value = config === undefined ? undefined : /^\s*hookspath\s*=\s*("?)(.+?)\1\s*$/im.exec(config)?.[2];
  if (value === undefined || value.startsWith('/') || value.startsWith('~')) return undefined;
  const folder = value.replace(/^\.\//, '').replace(/\/+$/, '');
  if (folder === '' || folder.split('/').includes('..')) return undefined;
  return `${folder.toLowerCase()}/`;
}

/** What a commit leaves out of the upper folder (symbolic links, devices other than whiteouts, sockets, FIFOs). */
async function skippedEntries(upper: string): Promise<string[]> {
  const real = await fsp.realpath(upper).catch(() => undefined);
  if (real === undefined) return [];
  return readUpperLayer(real).other.map((o) => `${o.path} (${o.kind})`);
}

/** The workspace's regular files at `relative` (a file) or under it (a folder), `/`-separated, relative to the workspace. */
async function workspaceFilesAt(workspace: string, relative: string): Promise<string[]> {
  const target = resolveConfined(workspace, relative, 'refuse');
  const stat = await fsp.lstat(target.absolute).catch(() => undefined);
  if (stat === undefined) return [];
  if (stat.isFile()) return [relative];
  if (!stat.isDirectory()) return [];
  return (await walkFiles(target.absolute)).map((file) => `${relative}/${file}`);
}

/**
 * Before a file is written at `absolute`: an empty folder there (one the commit's deletions
 * emptied) is removed, and so is a regular file standing where one of its folders goes (a
 * program replaced a file by a folder; the commit deleted it already unless its content was
 * unchanged). A non-empty folder stays, and the write fails (the commit is then undone).
 */
async function replaceFolderChain(root: string, absolute: string): Promise<void> {
  const stat = await fsp.lstat(absolute).catch(() => undefined);
  if (stat?.isDirectory() === true) {
    // Only folders are left under it once the deletions ran; a file there fails the commit.
    let others = 0;
    const files = await walkFiles(absolute, { onOther: () => (others += 1) });
    if (files.length > 0 || others > 0) throw new Error(`${absolute} still holds files`);
    await fsp.rm(absolute, { recursive: true });
  }
  const parts = relative(root, dirname(absolute)).split(sep).filter((p) => p !== '');
  let current = root;
  for (const part of parts) {
    current = `${current}${sep}${part}`;
    const parent = await fsp.lstat(current).catch(() => undefined);
    if (parent === undefined) return;
    if (parent.isFile()) await fsp.rm(current);
    else if (!parent.isDirectory()) return;
  }
}

/** Workspace-relative folders between `root` and `folder` (inclusive) that do not exist yet. */
async function missingFolders(root: string, folder: string): Promise<string[]> {
  const missing: string[] = [];
  let current = folder;
  while (current !== root && current.startsWith(root + sep)) {
    // A file where the task needs a folder (a program replaced it) is replaced too: the folder is the task's.
    const isFolder = await fsp
      .lstat(current)
      .then((stat) => stat.isDirectory())
      .catch(() => false);
    if (isFolder) break;
    missing.push(relative(root, current).split(sep).join('/'));
    current = dirname(current);
  }
  return missing;
}

export interface DiscardResult {
  /** True when there was an overlay to remove. */
  discarded: boolean;
  /**
   * True when a commit of this task was interrupted halfway: the workspace holds part of the
   * task's files. Finish it with `commitOverlay` or undo it with `rollbackTask`.
   */
  interruptedCommit: boolean;
}

/**
 * Throws the overlay away (the workspace is untouched). Idempotent. `overlayStateDir` is the state
 * folder holding the overlay when it is not `stateDir` (where commit manifests live).
 */
export async function discardOverlay(options: { stateDir: string; taskKey: string; overlayStateDir?: string }): Promise<DiscardResult> {
  const paths = overlayPathsOf(options.overlayStateDir ?? options.stateDir, options.taskKey);
  const discarded = await fsp
    .lstat(paths.dir)
    .then(() => true)
    .catch(() => false);
  await removeOverlayFolder(options.overlayStateDir ?? options.stateDir, options.taskKey, paths.dir);
  const manifest = await readManifest(commitManifestPathOf(options.stateDir, options.taskKey));
  return { discarded, interruptedCommit: manifest?.status === 'committing' };
}

/** The overlay files of a task tree not committed yet (workspace-relative paths). */
export async function pendingOverlayFiles(options: { stateDir: string; taskKey: string }): Promise<string[]> {
  await attachOverlayVolume(options.stateDir, options.taskKey);
  return walkFiles(overlayPathsOf(options.stateDir, options.taskKey).upper);
}

/**
 * Removes the overlay folder after unmounting its volume and deleting the image (a mounted folder
 * cannot go), and the task's call leases with it (the task's per-machine state): first, so an
 * attempt still running for the ended task is fenced from then on (recovery/call-lease.ts).
 */
async function removeOverlayFolder(stateDir: string, taskKey: string, dir: string): Promise<void> {
  await removeCallLeases(stateDir, taskKey);
  await releaseOverlayVolume(stateDir, taskKey);
  await fsp.rm(dir, { recursive: true, force: true });
}
