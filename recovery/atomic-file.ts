/**
 * Crash-safe file replacement: the new content is written to a temporary file in the same
 * folder, flushed, and renamed over the target, so a reader (or a crash) sees either the old or
 * the new file, never a torn one. The temporary name is derived from the target's name, so a
 * leftover from a crash is overwritten by the next attempt rather than piling up.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The temporary file used while replacing `target` (same folder, so `rename` is atomic). */
export function tempPathFor(target: string): string {
  const tag = createHash('sha256').update(basename(target)).digest('hex').slice(0, 16);
  return join(dirname(target), `.warden-${tag}.tmp`);
}

/**
 * Replaces `target` with `content` atomically. `mode` applies to a new file; an existing file
 * keeps its mode. The final component of `target` is never followed if it is a symlink (the
 * rename replaces the link itself).
 */
export async function writeFileAtomic(target: string, content: Uint8Array | string, options: { mode?: number } = {}): Promise<void> {
  const temp = tempPathFor(target);
  let mode = options.mode ?? 0o644;
  try {
    const existing = await fsp.lstat(target);
    if (existing.isFile()) mode = existing.mode & 0o7777;
  } catch {
    // A new file.
  }
  await fsp.rm(temp, { force: true });
  const handle = await fsp.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(temp, target);
  await fsyncFolder(dirname(target));
}

/** Flushes a folder's entries (a rename or unlink in it) to disk; best effort where unsupported. */
export async function fsyncFolder(folder: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(folder, constants.O_RDONLY);
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a folder; the rename is still atomic.
  } finally {
    await handle?.close();
  }
}

/** Writes `value` as pretty JSON, atomically. */
export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await fsp.mkdir(dirname(target), { recursive: true });
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

/** The file's text, or undefined when it does not exist (any other failure is thrown). */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
