/**
 * Undoes one tool call's writes to the task tree's overlay: each path the call wrote gets back
 * what the upper folder held before the call (its bytes, or nothing, so the workspace file shows
 * through again). The fs capability recorded that before the call's first write to each path
 * (sandbox/capabilities/fs-capability.ts `recordOverlayUndo`). This is how a sub-agent that did
 * not complete leaves no file behind while the rest of the task tree goes on.
 *
 * Idempotent: the records are removed after they are applied; applying them again is harmless.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { writeFileAtomic } from './atomic-file';
import { overlayPathsOf, overlayUndoDirOf } from './recovery-paths';
import { readUpperLayer } from './overlay-layer';
import { RecoveryError } from '../errors';

const UndoRecordSchema = z.union([
  z.strictObject({ path: z.string(), existed: z.literal(true), content: z.string() }),
  /** The earlier bytes in a file of the records folder (the fs capability's records). */
  z.strictObject({ path: z.string(), existed: z.literal(true), bytesFile: z.string().regex(/^[0-9a-f]{32}\.bytes$/) }),
  z.strictObject({ path: z.string(), existed: z.literal(false) }),
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
  for (const name of names) {
    const record = UndoRecordSchema.parse(JSON.parse(await fsp.readFile(join(dir, name), 'utf8')));
    // Warden's own folder holds no links; the path is confined to it all the same.
    const target = resolveConfined(upper, record.path, 'refuse').absolute;
    if (record.existed) {
      await fsp.mkdir(dirname(target), { recursive: true });
      await writeFileAtomic(target, 'content' in record ? Buffer.from(record.content, 'base64') : await fsp.readFile(join(dir, record.bytesFile)));
      result.restored.push(record.path);
    } else {
      await fsp.rm(target, { force: true });
      result.removed.push(record.path);
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
  return result;
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

/** The upper folder's files (bytes) and whiteouts before a program call, to undo what it changes. */
export interface UpperCapture {
  files: Map<string, Buffer>;
  deleted: Set<string>;
}

/**
 * Reads the upper folder before a sub-agent's program runs: a program writes through the kernel
 * overlay, which the fs capability does not see, so its changes are found by comparing after.
 * Throws RecoveryError ERR_UNDO_FAILED past MAX_UPPER_CAPTURE_BYTES (the call is refused, not left
 * without undo).
 */
export async function captureUpper(upper: string): Promise<UpperCapture> {
  const layer = readUpperLayer(upper);
  const files = new Map<string, Buffer>();
  let bytes = 0;
  for (const path of layer.files) {
    const content = await fsp.readFile(join(upper, path));
    bytes += content.byteLength;
    if (bytes > MAX_UPPER_CAPTURE_BYTES) {
      throw new RecoveryError('ERR_UNDO_FAILED', `a sub-agent's program cannot run: the task's overlay holds more than ${MAX_UPPER_CAPTURE_BYTES} bytes, too much to keep for undoing it`);
    }
    files.set(path, content);
  }
  return { files, deleted: new Set(layer.deleted) };
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
    const previous = before.files.get(path);
    let same: boolean;
    if (previous !== undefined) {
      const now = after.files.includes(path) ? await fsp.readFile(join(upper, path)).catch(() => undefined) : undefined;
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
