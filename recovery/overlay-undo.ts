/**
 * Undoes one tool call's writes to the task tree's overlay: each path the call wrote gets back
 * what the upper folder held before the call (its bytes, or nothing, so the workspace file shows
 * through again). The fs capability recorded that before the call's first write to each path
 * (sandbox/capabilities/fs-capability.ts `recordOverlayUndo`). This is how a sub-agent that did
 * not complete leaves no file behind while the rest of the task tree goes on.
 *
 * Idempotent: the records are removed after they are applied; applying them again is harmless.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { writeFileAtomic } from './atomic-file';
import { overlayPathsOf, overlayUndoDirOf } from './recovery-paths';
import { readUpperLayer } from './overlay-layer';
import { BeneathError, lstatBeneath, readFileBeneath, removeBeneath, walkBeneath, writeFileAtomicBeneath } from './beneath';
import { RecoveryError } from '../errors';

const UndoRecordSchema = z.union([
  z.strictObject({ path: z.string(), existed: z.literal(true), content: z.string() }),
  /** The earlier bytes in a file of the records folder (the fs capability's records). */
  z.strictObject({ path: z.string(), existed: z.literal(true), bytesFile: z.string().regex(/^[0-9a-f]{32}\.bytes$/) }),
  z.strictObject({ path: z.string(), existed: z.literal(false) }),
  /**
   * A change no record can take back (an MCP call changed a file whose bytes were not kept:
   * recordUnkeptChanges). Undoing the call then fails closed naming it, and keeps this record.
   */
  z.strictObject({ path: z.string(), unkept: z.literal(true) }),
]);

export interface OverlayUndoResult {
  /** Paths given back their earlier content. */
  restored: string[];
  /** Paths removed from the overlay (the workspace file, if any, shows through again). */
  removed: string[];
}

/** Undoes the overlay writes of `callId`; an empty result when it wrote nothing (or was undone). */
export async function undoOverlayCall(options: { stateDir: string; taskKey: string; callId: string }): Promise<OverlayUndoResult> {
  const dir = overlayUndoDirOf(options.stateDir, options.taskKey, options.callId);
  const result: OverlayUndoResult = { restored: [], removed: [] };
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw error;
  }
  const upper = realRootOf(overlayPathsOf(options.stateDir, options.taskKey).upper);
  const unkept: string[] = [];
  const applied: string[] = [];
  for (const name of names) {
    const record = UndoRecordSchema.parse(JSON.parse(await fsp.readFile(join(dir, name), 'utf8')));
    if ('unkept' in record) {
      unkept.push(record.path);
      continue;
    }
    // The path is confined to the upper folder, and every folder on its way is opened without
    // following a link: a stdio MCP server that still runs may swap one for a link to a host
    // folder while this undo writes (beneath.ts).
    const target = upperRelative(upper, resolveConfined(upper, record.path, 'refuse').absolute);
    if (record.existed) {
      await writeFileAtomicBeneath(upper, target, 'content' in record ? Buffer.from(record.content, 'base64') : await fsp.readFile(join(dir, record.bytesFile)));
      result.restored.push(record.path);
    } else {
      removeBeneath(upper, target, { recursive: false });
      result.removed.push(record.path);
    }
    applied.push(name, ...('bytesFile' in record ? [record.bytesFile] : []));
  }
  if (unkept.length > 0) {
    // Never a silent partial undo: what could be taken back was (and its records go, not to be
    // applied again over what comes after); the rest is named, and its records stay, so undoing
    // the call again (a retry, its compensation) fails the same way.
    await Promise.all(applied.map((name) => fsp.rm(join(dir, name), { force: true })));
    unkept.sort();
    throw unkeptChangesFailure(options.callId, unkept, { details: { unkept, ...result } });
  }
  await fsp.rm(dir, { recursive: true, force: true });
  return result;
}

/** `absolute` (inside `upper`) as a `/`-separated path relative to it. */
function upperRelative(upper: string, absolute: string): string {
  return relative(upper, absolute).split(sep).join('/');
}

/**
 * The one ERR_UNDO_FAILED of a call that changed files whose earlier bytes were not kept (over
 * MAX_UPPER_CAPTURE_BYTES, only stamped): what could be undone was, these paths are named. Both
 * the call's own failure path (activities/run-tool.ts) and a later undo of its records
 * (undoOverlayCall) report it in these words, so a retry or compensation fails as the call did.
 * `unkept`: paths relative to the workspace, sorted by the caller.
 */
export function unkeptChangesFailure(callId: string, unkept: readonly string[], options: { details: Record<string, unknown>; cause?: unknown }): RecoveryError {
  return new RecoveryError(
    'ERR_UNDO_FAILED',
    `the overlay writes of call ${callId}, which did not complete, could not all be undone: it changed ${unkept.map((p) => JSON.stringify(p)).join(', ')}, larger than the ${MAX_UPPER_CAPTURE_BYTES} bytes kept before the call`,
    { details: options.details, ...(options.cause === undefined ? {} : { cause: options.cause }) },
  );
}

/**
 * Records paths a call changed whose earlier bytes were not kept (`unkeptChangesOf`), for whoever
 * undoes the call next: a superseded MCP attempt hands them to the newer attempt, which then fails
 * closed naming them (undoOverlayCall) instead of taking the change for the overlay before the call
 * and running the tool over it. A path that already has a record keeps it (the earliest wins).
 */
export async function recordUnkeptChanges(undoDir: string, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const entry = join(undoDir, `${createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 32)}.json`);
    if (await fsp.lstat(entry).then(() => true, () => false)) continue;
    await fsp.mkdir(undoDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(entry, Buffer.from(JSON.stringify({ path, unkept: true })));
  }
}

/**
 * Forgets the undo records of `callId` (a call that completed and need not be undone on its own).
 * Idempotent.
 */
export async function discardOverlayUndo(options: { stateDir: string; taskKey: string; callId: string }): Promise<void> {
  await fsp.rm(overlayUndoDirOf(options.stateDir, options.taskKey, options.callId), { recursive: true, force: true });
}

/** The most a sub-agent's program call keeps of the upper folder to undo it (bytes of files). */
export const MAX_UPPER_CAPTURE_BYTES = 64 * 1024 * 1024;

/** What identifies one version of a file without reading it (lstat): inode, size, mtime and ctime (ns). */
interface FileStamp {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * The upper folder's files and whiteouts before a program or MCP call, to undo what it changes:
 * the bytes of the files that fit in MAX_UPPER_CAPTURE_BYTES, and of the others only their stamp
 * (`stamped`): a call that changes one of those cannot be undone (unkeptChangesOf).
 */
export interface UpperCapture {
  files: Map<string, Buffer>;
  deleted: Set<string>;
  stamped: Map<string, FileStamp>;
}

/** The stamp of `path` in the upper folder, read without following a link (beneath.ts); undefined when missing or on the way through a link. */
async function stampOf(upper: string, path: string): Promise<FileStamp | undefined> {
  let s: BigIntStats | undefined;
  try {
    s = lstatBeneath(upper, path, { bigint: true });
  } catch (error) {
    if (error instanceof BeneathError) return undefined;
    throw error;
  }
  return s === undefined ? undefined : { ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

/**
 * Reads the upper folder before a call that writes through the kernel overlay (a sub-agent's
 * program, a stdio MCP server), which the fs capability does not see, so its changes are found by
 * comparing after. Sizes are taken by lstat first (a sparse file counts by its size, and is not read).
 * Past MAX_UPPER_CAPTURE_BYTES: `overBound: 'refuse'` (a sub-agent's program) throws RecoveryError
 * ERR_UNDO_FAILED, the call is refused; `'stamp'` (an MCP call) keeps only the stamps of the files
 * that do not fit, largest files first, so a failed call that changes one is reported, never left
 * silently without undo.
 */
export async function captureUpper(upper: string, options: { overBound: 'refuse' | 'stamp' } = { overBound: 'refuse' }): Promise<UpperCapture> {
  const layer = readUpperLayer(upper);
  const files = new Map<string, Buffer>();
  const stamped = new Map<string, FileStamp>();
  const sized: { path: string; size: number }[] = [];
  // Every read below goes through folder descriptors, never a link: the MCP server whose call this
  // is runs while the worker reads, and may swap a folder for a link to a host folder (beneath.ts).
  for (const path of layer.files) {
    const stat = lstatBeneath(upper, path);
    if (stat === undefined || !stat.isFile()) throw changedWhileCaptured(path);
    sized.push({ path, size: stat.size });
  }
  // Smallest first: the most files fit in the bound, the large ones are stamped.
  sized.sort((a, b) => a.size - b.size || (a.path < b.path ? -1 : 1));
  let bytes = 0;
  for (const { path, size } of sized) {
    if (bytes + size > MAX_UPPER_CAPTURE_BYTES) {
      if (options.overBound === 'refuse') {
        throw new RecoveryError('ERR_UNDO_FAILED', `a sub-agent's program cannot run: the task's overlay holds more than ${MAX_UPPER_CAPTURE_BYTES} bytes, too much to keep for undoing it`);
      }
      const stamp = await stampOf(upper, path);
      if (stamp !== undefined) stamped.set(path, stamp);
      continue;
    }
    const content = await readFileBeneath(upper, path).catch((error: unknown) => {
      throw error instanceof BeneathError || (error as NodeJS.ErrnoException).code === 'EINVAL' ? changedWhileCaptured(path) : error;
    });
    bytes += content.byteLength;
    files.set(path, content);
  }
  if (stamped.size > 0) await settleStamps(upper, stamped);
  return { files, deleted: new Set(layer.deleted), stamped };
}

/** A file of the upper folder that became a link (or another non-file) while the worker read it before a call: the call is refused. */
function changedWhileCaptured(path: string): RecoveryError {
  return new RecoveryError('ERR_UNDO_FAILED', `the call cannot run: ${JSON.stringify(path)} in the task's overlay changed into a link or another non-file while the worker read the overlay to be able to undo the call; links in the overlay are never followed`, { details: { path } });
}

/**
 * Makes the stamps safe against the file system's coarse clock: a write in the same clock tick as
 * a file's last change could leave its ctime as it was. Waits (on the file system's own clock, a
 * probe file beside the upper folder) until the clock is past every stamped ctime, then stamps
 * again: equal stamps are final (any later change gets a later ctime); changed ones (a process
 * still writing) are taken again, a few times, then the call is refused ERR_UNDO_FAILED.
 */
async function settleStamps(upper: string, stamped: Map<string, FileStamp>): Promise<void> {
  // Unique: calls of one task tree may measure at once.
  const probe = join(dirname(upper), `.stamp-probe-${randomUUID()}`);
  for (let round = 0; round < 10; round++) {
    let newest = 0n;
    for (const stamp of stamped.values()) if (stamp.ctimeNs > newest) newest = stamp.ctimeNs;
    for (;;) {
      let now: bigint;
      try {
        await fsp.writeFile(probe, '');
        now = (await fsp.lstat(probe, { bigint: true })).ctimeNs;
      } finally {
        await fsp.rm(probe, { force: true });
      }
      if (now > newest) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    let settled = true;
    for (const [path, was] of stamped) {
      const now = await stampOf(upper, path);
      if (now === undefined || now.ino !== was.ino || now.size !== was.size || now.mtimeNs !== was.mtimeNs || now.ctimeNs !== was.ctimeNs) {
        settled = false;
        if (now === undefined) stamped.delete(path);
        else stamped.set(path, now);
      }
    }
    if (settled) return;
  }
  throw new RecoveryError('ERR_UNDO_FAILED', `the call cannot run: files of the task's overlay over ${MAX_UPPER_CAPTURE_BYTES} bytes kept changing while the worker measured them for undoing it: ${[...stamped.keys()].map((p) => JSON.stringify(p)).join(', ')}`);
}

/**
 * The stamped files of `before` (too large to keep) that a call changed, removed or replaced:
 * their earlier bytes are not kept, so the call cannot be undone. Sorted.
 */
export async function unkeptChangesOf(upper: string, before: UpperCapture): Promise<string[]> {
  const lost: string[] = [];
  for (const [path, was] of before.stamped) {
    const now = await stampOf(upper, path);
    const same = now !== undefined && now.ino === was.ino && now.size === was.size && now.mtimeNs === was.mtimeNs && now.ctimeNs === was.ctimeNs;
    if (!same) lost.push(path);
  }
  return lost.sort();
}

/**
 * After a program call: for each upper path it changed, records (in `undoDir`, the format of the
 * fs capability's records) what the path held before, so `undoOverlayCall` takes the changes back.
 * A path that was a whiteout before is recorded as absent (undo shows the workspace file again).
 * Returns the changed paths.
 */
export async function recordUpperChanges(upper: string, undoDir: string, before: UpperCapture): Promise<string[]> {
  const after = readUpperLayer(upper);
  const afterDeleted = new Set(after.deleted);
  const changed: string[] = [];
  const paths = new Set([...before.files.keys(), ...before.deleted, ...after.files, ...after.deleted]);
  for (const path of [...paths].sort()) {
    // A stamped file's earlier bytes are not kept: unkeptChangesOf reports it, no record would restore it.
    if (before.stamped.has(path)) continue;
    const previous = before.files.get(path);
    let same: boolean;
    if (previous !== undefined) {
      const now = after.files.includes(path) ? await readFileBeneath(upper, path).catch(() => undefined) : undefined;
      same = now !== undefined && now.equals(previous);
    } else {
      same = before.deleted.has(path) ? afterDeleted.has(path) : !after.files.includes(path) && !afterDeleted.has(path);
    }
    if (same) continue;
    changed.push(path);
    const entry = join(undoDir, `${createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 32)}.json`);
    if (await fsp.lstat(entry).then(() => true, () => false)) continue;
    await fsp.mkdir(undoDir, { recursive: true, mode: 0o700 });
    const record = previous !== undefined ? { path, existed: true, content: previous.toString('base64') } : { path, existed: false };
    await writeFileAtomic(entry, Buffer.from(JSON.stringify(record)));
  }
  return changed;
}

/**
 * The paths in the upper folder (files, whiteouts, links and folders, relative, `/`-separated)
 * before a root task's program call: a root program's call keeps no bytes for undo (its exit is
 * its output), but one that runs into the workspace bound fails, and what it added is taken back
 * out (removeAddedPaths). A missing folder lists empty.
 */
export function listUpper(upper: string): Set<string> {
  const paths = new Set<string>();
  // Never through a link (beneath.ts); a folder that cannot be read lists nothing under it.
  walkBeneath(
    upper,
    ({ path }) => {
      paths.add(path);
    },
    undefined,
    () => undefined,
  );
  return paths;
}

/**
 * Removes from the upper folder every path not in `before` (with what is under it), so the
 * workspace shows what it showed before the call where the call only added files, folders or
 * whiteouts. Files that were there before keep their new bytes (theirs were not kept). Returns the
 * removed paths, sorted.
 */
export async function removeAddedPaths(upper: string, before: Set<string>): Promise<string[]> {
  const removed = new Set<string>();
  const underRemoved = (path: string) => path.split('/').some((_, i, parts) => i > 0 && removed.has(parts.slice(0, i).join('/')));
  for (const path of [...listUpper(upper)].sort()) {
    if (before.has(path) || underRemoved(path)) continue;
    removeBeneath(upper, path);
    removed.add(path);
  }
  return [...removed];
}
