/**
 * The shared copy of a task tree's overlay, and the checks that make a commit honest.
 *
 * The overlay's working copy sits in the state folder of the worker holding the task's data
 * plane. After every call that may write files, `syncOverlayCopy` puts each changed file in the
 * blob store and records the overlay's full content (path → SHA-256) in the placement store, and
 * tells the workflow which files the call wrote. A worker taking the task over rebuilds the
 * overlay from that copy (`rebuildOverlay`); a commit first proves that the overlay holds exactly
 * what the task's steps reported writing (`verifyOverlay`).
 *
 * Invariant: a file is never taken from the stat cache when it may have changed within the
 * timestamp granularity (the "racily clean" rule git uses): such files are hashed again.
 */
import { BeneathError, lstatBeneath, readFileBeneath } from '../recovery/beneath';
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DataPlaneError } from '../errors';
import { overlayPathsOf } from '../recovery/recovery-paths';
import { readUpperLayer } from '../recovery/overlay-layer';
import { openOverlay } from '../recovery/workspace-overlay';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import type { FileWrite } from '../task/data-refs';
import { sha256Hex, type BlobStore } from './blob-store';
import { FilePlacementStore, type PlacementStore } from './placement-store';

/** Files modified this recently (ms) are hashed again, whatever the stat cache says. */
const RACY_MS = 2_000;

interface CachedStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

/** Per worker: what each overlay file hashed to, by task key and path. */
const statCache = new Map<string, Map<string, CachedStat>>();

/**
 * The overlay's entries: path → SHA-256 of each regular file (stored in `blobs` when given), or
 * `deleted` for a whiteout and `opaque` for an opaque folder (what programs in the OS sandbox
 * leave through the kernel overlay, recovery/overlay-layer.ts).
 */
async function hashOverlay(stateDir: string, taskKey: string, blobs: BlobStore | undefined): Promise<{ exists: boolean; files: Record<string, string> }> {
  const { upper } = overlayPathsOf(stateDir, taskKey);
  const exists = await fsp
    .lstat(upper)
    .then((s) => s.isDirectory())
    .catch(() => false);
  if (!exists) return { exists, files: {} };
  const cacheKey = `${stateDir}\u0000${taskKey}`;
  const cache = statCache.get(cacheKey) ?? new Map<string, CachedStat>();
  statCache.set(cacheKey, cache);
  const files: Record<string, string> = {};
  const now = Date.now();
  const layer = readUpperLayer(upper);
  for (const path of layer.deleted) files[path] = 'deleted';
  for (const path of layer.opaque) files[path] = 'opaque';
  for (const path of layer.files) {
    // Never through a link: a stdio MCP server may be changing the folder now (recovery/beneath.ts).
    const stat = lstatBeneath(upper, path);
    if (stat === undefined || !stat.isFile()) throw new BeneathError('ERR_LINK_IN_PATH', `${JSON.stringify(path)} in the task's overlay changed into a link or another non-file while the worker read it; links in the overlay are never followed`, { details: { path } });
    const known = cache.get(path);
    const fresh = known !== undefined && known.size === stat.size && known.mtimeMs === stat.mtimeMs && known.ctimeMs === stat.ctimeMs && known.ino === stat.ino;
    if (fresh && now - stat.mtimeMs > RACY_MS) {
      files[path] = known.sha256;
      continue;
    }
    const content = await readFileBeneath(upper, path);
    const sha256 = blobs === undefined ? sha256Hex(content) : (await blobs.put(content)).sha256;
    cache.set(path, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, sha256 });
    files[path] = sha256;
  }
  return { exists, files };
}

/**
 * Records, before a call that may write files first runs, what the overlay holds: the baseline
 * `syncOverlayCopy` measures that call's writes against. A retry of the same call keeps the
 * baseline of its first attempt.
 */
export async function beginOverlayCall(options: { taskKey: string; callId: string; workspace: string; workerId: string; placements: PlacementStore }): Promise<void> {
  const copy = await options.placements.loadOverlayCopy(options.taskKey);
  if (copy?.call?.callId === options.callId) return;
  const files = copy?.files ?? {};
  await options.placements.saveOverlayCopy({
    version: 1,
    taskKey: options.taskKey,
    workspace: copy?.workspace ?? realRootOf(options.workspace),
    files,
    updatedAt: new Date().toISOString(),
    workerId: options.workerId,
    call: { callId: options.callId, before: files },
  });
}

/**
 * Brings the shared copy of the overlay up to date after call `callId` ran (or failed) and
 * returns the files whose content differs from the call's baseline (see `beginOverlayCall`):
 * what the call wrote, the same for every attempt of it. With a store only this worker writes
 * (and no `blobs`), it is the worker's own record of its overlay: what the ordinary loop uses.
 */
export async function syncOverlayCopy(options: {
  stateDir: string;
  taskKey: string;
  callId: string;
  workspace: string;
  workerId: string;
  /** Where changed files are kept for a rebuild elsewhere; without it they are only hashed. */
  blobs?: BlobStore;
  placements: PlacementStore;
}): Promise<FileWrite[]> {
  const { taskKey } = options;
  const { files } = await hashOverlay(options.stateDir, taskKey, options.blobs);
  const copy = await options.placements.loadOverlayCopy(taskKey);
  const before = copy?.call?.callId === options.callId ? copy.call.before : (copy?.files ?? {});
  const writes: FileWrite[] = Object.entries(files)
    .filter(([path, sha256]) => before[path] !== sha256)
    .map(([path, sha256]) => ({ path, sha256 }));
  const previous = copy?.files ?? {};
  const changed = Object.keys(files).length !== Object.keys(previous).length || Object.entries(files).some(([path, sha]) => previous[path] !== sha);
  if (changed) {
    await options.placements.saveOverlayCopy({
      version: 1,
      taskKey,
      workspace: realRootOf(options.workspace),
      files,
      updatedAt: new Date().toISOString(),
      workerId: options.workerId,
      call: { callId: options.callId, before },
    });
  }
  return writes;
}

/**
 * This worker's own record of the task overlays in its state folder (`<stateDir>/overlay-records/`):
 * the ordinary loop's call baselines. Only calls and undos on this worker change that overlay, so
 * a baseline from a shared record (another worker's overlay) would report files this worker's
 * overlay holds from earlier as written again, and could make an older content the expected one.
 */
export function localOverlayRecords(stateDir: string): PlacementStore {
  return new FilePlacementStore(join(stateDir, 'overlay-records'));
}

/** The latest content hash of each path, from writes in the order they happened. */
export function expectedFiles(writes: readonly FileWrite[]): Map<string, string> {
  const expected = new Map<string, string>();
  for (const write of writes) expected.set(write.path, write.sha256);
  return expected;
}

/**
 * Proves that the overlay holds exactly the files the task's steps reported writing, with that
 * content: nothing missing, nothing changed, nothing extra.
 * @throws DataPlaneError ERR_OVERLAY_MISSING (the overlay or some of its files are gone),
 *   ERR_COMMIT_MISMATCH (a file differs, or a file no step reported is there)
 */
export async function verifyOverlay(options: { stateDir: string; taskKey: string; expected: readonly FileWrite[]; workerId: string }): Promise<void> {
  const expected = expectedFiles(options.expected);
  const { exists, files } = await hashOverlay(options.stateDir, options.taskKey, undefined);
  if (!exists && expected.size > 0) {
    throw new DataPlaneError(
      'ERR_OVERLAY_MISSING',
      `the overlay of task ${options.taskKey} is missing on worker ${options.workerId}, but its steps wrote ${expected.size} file${expected.size === 1 ? '' : 's'} (${[...expected.keys()].slice(0, 5).join(', ')}); nothing is committed`,
      { details: { taskKey: options.taskKey, paths: [...expected.keys()] } },
    );
  }
  const missing = [...expected.keys()].filter((path) => files[path] === undefined);
  if (missing.length > 0) {
    throw new DataPlaneError('ERR_OVERLAY_MISSING', `the overlay of task ${options.taskKey} lacks files its steps wrote: ${missing.slice(0, 5).join(', ')}; nothing is committed`, {
      details: { taskKey: options.taskKey, paths: missing },
    });
  }
  const changed = [...expected].filter(([path, sha]) => files[path] !== sha).map(([path]) => path);
  const extra = Object.keys(files).filter((path) => !expected.has(path));
  if (changed.length > 0 || extra.length > 0) {
    throw new DataPlaneError(
      'ERR_COMMIT_MISMATCH',
      `the overlay of task ${options.taskKey} is not what its steps wrote${changed.length > 0 ? `; changed since written: ${changed.slice(0, 5).join(', ')}` : ''}${extra.length > 0 ? `; written by no step: ${extra.slice(0, 5).join(', ')}` : ''}; nothing is committed`,
      { details: { taskKey: options.taskKey, changed, extra } },
    );
  }
}

/**
 * Puts the overlay of `taskKey` in this worker's state folder back from its shared copy, after
 * checking that the copy holds every file the task's steps wrote. Files the copy does not hold
 * are removed from a local overlay left over from earlier. Returns how many files were restored.
 * @throws DataPlaneError ERR_OVERLAY_MISSING (no copy, or the copy lacks a write),
 *   ERR_SHARED_STORAGE (the copy was made on a workspace at another path)
 */
export async function rebuildOverlay(options: {
  stateDir: string;
  taskKey: string;
  workspace: string;
  expected: readonly FileWrite[];
  blobs: BlobStore;
  placements: PlacementStore;
}): Promise<{ restored: number }> {
  const { taskKey } = options;
  const expected = expectedFiles(options.expected);
  const copy = await options.placements.loadOverlayCopy(taskKey);
  if (copy === undefined) {
    if (expected.size === 0) return { restored: 0 };
    throw new DataPlaneError('ERR_OVERLAY_MISSING', `no shared copy of the overlay of task ${taskKey} is visible here, but its steps wrote ${expected.size} file(s): the shared folder is not shared, or the copy was lost`, {
      details: { taskKey },
    });
  }
  const workspace = realRootOf(options.workspace);
  if (copy.workspace !== workspace) {
    throw new DataPlaneError('ERR_SHARED_STORAGE', `the overlay of task ${taskKey} was made on workspace ${copy.workspace}, which is ${workspace} on this worker: every worker must mount it at the same path`, {
      details: { taskKey, workspace: copy.workspace },
    });
  }
  const lacking = [...expected].filter(([path, sha]) => copy.files[path] !== sha).map(([path]) => path);
  if (lacking.length > 0) {
    throw new DataPlaneError('ERR_OVERLAY_MISSING', `the shared copy of the overlay of task ${taskKey} lacks what its steps wrote to ${lacking.slice(0, 5).join(', ')}`, {
      details: { taskKey, paths: lacking },
    });
  }
  const unbuildable = Object.entries(copy.files).filter(([, sha]) => sha === 'deleted' || sha === 'opaque').map(([path]) => path);
  if (unbuildable.length > 0) {
    // Whiteouts are device files only the kernel overlay (or a privileged process) makes.
    throw new DataPlaneError('ERR_OVERLAY_MISSING', `the overlay of task ${taskKey} holds deletions made by programs (${unbuildable.slice(0, 5).join(', ')}), which cannot be rebuilt on another worker`, {
      details: { taskKey, paths: unbuildable },
    });
  }
  const opened = await openOverlay({ stateDir: options.stateDir, taskKey, workspace });
  const upper = await fsp.realpath(opened.upper);
  const { files: local } = await hashOverlay(options.stateDir, taskKey, undefined);
  let restored = 0;
  for (const [path, sha256] of Object.entries(copy.files)) {
    if (local[path] === sha256) continue;
    const target = resolveConfined(upper, path, 'refuse');
    await fsp.mkdir(dirname(target.absolute), { recursive: true, mode: 0o700 });
    const content = await options.blobs.get(sha256);
    // Written beside the upper folder, never inside it: a crash must not leave a stray file there.
    const temp = join(opened.dir, `.rebuild-${randomUUID()}`);
    await fsp.writeFile(temp, content, { mode: 0o600 });
    await fsp.rename(temp, target.absolute);
    restored += 1;
  }
  for (const path of Object.keys(local)) {
    if (copy.files[path] === undefined) await fsp.rm(resolveConfined(upper, path, 'refuse').absolute, { force: true });
  }
  return { restored };
}

/** Forgets a task's overlay copy and this worker's caches of it (after a commit or a discard). */
export async function dropOverlayCopy(options: { stateDir: string; taskKey: string; placements: PlacementStore }): Promise<void> {
  statCache.delete(`${options.stateDir}\u0000${options.taskKey}`);
  await options.placements.dropOverlayCopy(options.taskKey);
}
