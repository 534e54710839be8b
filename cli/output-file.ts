/**
 * Every file a CLI command writes because the user named it (`warden replay --export`,
 * `warden receipt --out`, `warden approvers add --out`) goes through here: the path is checked
 * before the command does its work, and the file is written whole or not at all.
 *
 * Before: a folder, or a path whose folder is missing, reached `writeFile` after the work was done
 * and Node's EISDIR / ENOENT escaped with its stack (exit 1); a write that failed half-way (disk
 * full) left a truncated file where the old one was.
 *
 * Checked: the path names no folder and nothing but a regular file (a FIFO or device is refused:
 * the rename below would replace it); its folder exists, is a folder and is writable. Written: to
 * a temporary file in the same folder (so the rename stays on one file system), flushed to disk,
 * then renamed over the path (or, when the file must not be overwritten, linked to it: fails if
 * it exists). A failure removes the temporary file: what was at the path before is still there.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { WardenError } from '../errors';

/** `ERR_OUTPUT_FILE_INVALID` (exit 2): the file named by `option` cannot be written at `file`. */
export class OutputFileError extends WardenError {
  constructor(option: string, file: string, problem: string, cause?: unknown) {
    super('ERR_OUTPUT_FILE_INVALID', `cannot write ${option} ${file}: ${problem}`, { details: { option, file }, ...(cause === undefined ? {} : { cause }) });
  }
}

/** Node's error code as words a user reads. */
function errnoText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EISDIR':
      return 'it is a folder';
    case 'ENOENT':
      return 'its folder does not exist';
    case 'ENOTDIR':
      return 'a part of its path is not a folder';
    case 'EEXIST':
      return 'it exists (this file is never overwritten)';
    default:
      return code ?? (error as Error).message;
  }
}

export interface OutputFileOptions {
  /** The option that named the file, as the user typed it (`--out`): the message names it. */
  option: string;
  /** Permission bits of a new file (default 0o644). */
  mode?: number;
  /** Refuse a path that exists instead of replacing it (an approver key file is never overwritten). */
  exclusive?: boolean;
}

/**
 * Why `file` cannot be written, or undefined when it can. Run before the command's work, so a bad
 * path costs nothing; {@link writeOutputFile} checks again (the path may change in between).
 * @throws OutputFileError naming the option, the path and what is wrong.
 */
export async function checkOutputFile(file: string, options: OutputFileOptions): Promise<string> {
  const path = resolve(file);
  const fail = (problem: string, cause?: unknown) => new OutputFileError(options.option, file, problem, cause);
  if (file === '') throw fail('the path is empty');
  const existing = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw fail(errnoText(error), error);
  });
  if (existing !== undefined) {
    if (existing.isDirectory()) throw fail('it is a folder (name a file in it)');
    if (!existing.isFile()) throw fail('it exists and is not a regular file (a FIFO, device or socket is never written)');
    if (options.exclusive === true) throw fail('it exists (this file is never overwritten; choose another path)');
  }
  const folder = dirname(path);
  const parent = await stat(folder).catch((error: NodeJS.ErrnoException) => {
    throw fail(error.code === 'ENOENT' ? `its folder ${folder} does not exist` : error.code === 'ENOTDIR' ? `a part of ${folder} is not a folder` : `its folder ${folder}: ${errnoText(error)}`, error);
  });
  if (!parent.isDirectory()) throw fail(`${folder} is not a folder`);
  await access(folder, constants.W_OK | constants.X_OK).catch((error: unknown) => {
    throw fail(`its folder ${folder} is not writable`, error);
  });
  return path;
}

/**
 * Writes `text` to `file` atomically (a temporary file in the same folder, renamed over it), after
 * {@link checkOutputFile}. A failed write leaves the path as it was.
 * @throws OutputFileError naming the option, the path and what is wrong.
 */
export async function writeOutputFile(file: string, text: string, options: OutputFileOptions): Promise<void> {
  const path = await checkOutputFile(file, options);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fail = (error: unknown) => new OutputFileError(options.option, file, errnoText(error), error);
  try {
    const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, options.mode ?? 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    // A link fails when the path exists (never overwritten); a rename replaces it in one step.
    if (options.exclusive === true) await link(temporary, path);
    else await rename(temporary, path);
  } catch (error) {
    throw error instanceof OutputFileError ? error : fail(error);
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}
