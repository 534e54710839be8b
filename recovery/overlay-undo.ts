/**
 * Undoes one tool call's writes to the task tree's overlay: each path the call wrote gets back
 * what the upper folder held before the call (its bytes, or nothing, so the workspace file shows
 * through again). The fs capability recorded that before the call's first write to each path
 * (sandbox/capabilities/fs-capability.ts `recordOverlayUndo`). This is how a sub-agent that did
 * not complete leaves no file behind while the rest of the task tree goes on.
 *
 * Idempotent: the records are removed after they are applied; applying them again is harmless.
 */
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { writeFileAtomic } from './atomic-file';
import { overlayPathsOf, overlayUndoDirOf } from './recovery-paths';

const UndoRecordSchema = z.union([
  z.strictObject({ path: z.string(), existed: z.literal(true), content: z.string() }),
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
      await writeFileAtomic(target, Buffer.from(record.content, 'base64'));
      result.restored.push(record.path);
    } else {
      await fsp.rm(target, { force: true });
      result.removed.push(record.path);
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
  return result;
}
