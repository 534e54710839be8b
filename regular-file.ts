/**
 * Reading a file a user named without waiting on it: the path is opened non-blocking and checked
 * on what was opened (fstat), so a FIFO, device, socket or folder is refused at once. A plain
 * `readFile` of a FIFO waits for a writer forever (synchronously: the whole process stops).
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WardenError } from './errors';
import { firstInvalidUtf8Offset } from './task/task-file-limits';

/**
 * The one reader of a file a user names to a command (task file, policy or rules file, history,
 * JSON of attestations or receipts, JWKS, approver key, results file, witness): every command
 * makes the same checks and says the same words, exit 2 (cli/exit-codes.ts). Before, each read
 * its own way: `warden policy compile <fifo>` printed a raw NotRegularFileError with its stack,
 * an approver key or results file that was a FIFO was waited on forever, and a binary file was
 * read as text.
 *
 * Checked, in order: the path names something (`no such file: looked for <absolute path>`); it is
 * a regular file, stat'ed before it is opened and again on what was opened (opened non-blocking:
 * a FIFO or device is never waited on); it is at most `maxBytes`; it is UTF-8 (a byte that is not
 * is named with its line and column); a leading byte-order mark is dropped when `dropBom` asks.
 */
export const MAX_USER_FILE_BYTES = 256 * 1024 * 1024;

/** Why a user's file cannot be read: `problem` is the same words whichever command reads it. */
export type UserFileProblemKind = 'missing' | 'not-regular' | 'too-large' | 'not-utf8' | 'unreadable';

/** `ERR_INPUT_FILE_UNREADABLE` (exit 2): `cannot read <what> <file>: <problem>`. */
export class UserFileError extends WardenError {
  constructor(
    readonly file: string,
    readonly what: string,
    readonly kind: UserFileProblemKind,
    readonly problem: string,
    cause?: unknown,
  ) {
    super('ERR_INPUT_FILE_UNREADABLE', `cannot read ${what} ${file}: ${problem}`, { details: { file, kind }, ...(cause === undefined ? {} : { cause }) });
  }
}

export interface UserFileOptions {
  /** What the file is to the command ("task file", "JWKS", "approver key file"): the message names it. */
  what: string;
  /** Largest file read (default MAX_USER_FILE_BYTES). */
  maxBytes?: number;
  /** Drop a leading byte-order mark (a task file's YAML); otherwise it stays, for the JSON reader to name. */
  dropBom?: boolean;
}

const NOT_REGULAR = 'not a regular file (a file is read only from a plain file, never a folder, FIFO, device or socket)';

function errnoProblem(file: string, what: string, error: unknown): UserFileError {
  if (error instanceof UserFileError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UserFileError(file, what, 'missing', `no such file: looked for ${resolve(file)}`, error);
  if (code === 'ENOTDIR') return new UserFileError(file, what, 'missing', `no such file: a part of ${resolve(file)} is not a folder`, error);
  if (code === 'EACCES' || code === 'EPERM') return new UserFileError(file, what, 'unreadable', 'cannot be read (permission denied)', error);
  return new UserFileError(file, what, 'unreadable', `cannot be read (${code ?? (error as Error).message})`, error);
}

function textOf(file: string, what: string, bytes: Buffer, dropBom: boolean): string {
  const bad = firstInvalidUtf8Offset(bytes);
  if (bad >= 0) {
    const before = bytes.subarray(0, bad).toString('latin1');
    const line = before.split('\n').length;
    const column = bad - (before.lastIndexOf('\n') + 1) + 1;
    throw new UserFileError(file, what, 'not-utf8', `not UTF-8: byte 0x${bytes[bad]!.toString(16).padStart(2, '0')} at line ${line}, column ${column} (byte offset ${bad}) is not part of a valid UTF-8 sequence`);
  }
  const text = bytes.toString('utf8');
  return dropBom && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function tooLarge(file: string, what: string, size: number | string, max: number): UserFileError {
  return new UserFileError(file, what, 'too-large', `the file is ${size} bytes, more than the limit of ${max}`);
}

/** The text of the user's file `file`. @throws UserFileError (ERR_INPUT_FILE_UNREADABLE) saying why not. */
export async function readUserFile(file: string, options: UserFileOptions): Promise<string> {
  const { what } = options;
  const max = options.maxBytes ?? MAX_USER_FILE_BYTES;
  let bytes: Buffer;
  try {
    if (!(await stat(file)).isFile()) throw new UserFileError(file, what, 'not-regular', NOT_REGULAR);
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const opened = await handle.stat();
      if (!opened.isFile()) throw new UserFileError(file, what, 'not-regular', NOT_REGULAR);
      if (opened.size > max) throw tooLarge(file, what, opened.size, max);
      // One byte past the limit: a file that grew after fstat is still caught.
      const buffer = Buffer.alloc(Math.min(max, opened.size + 64 * 1024) + 1);
      let length = 0;
      for (;;) {
        if (length === buffer.length) break;
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > max) throw tooLarge(file, what, `more than ${max}`, max);
      bytes = buffer.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw errnoProblem(file, what, error);
  }
  return textOf(file, what, bytes, options.dropBom === true);
}

/** {@link readUserFile}, synchronously (a command whose reading is synchronous: policy packs, witnesses). */
export function readUserFileSync(file: string, options: UserFileOptions): string {
  const { what } = options;
  const max = options.maxBytes ?? MAX_USER_FILE_BYTES;
  let bytes: Buffer;
  try {
    if (!statSync(file).isFile()) throw new UserFileError(file, what, 'not-regular', NOT_REGULAR);
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const opened = fstatSync(fd);
      if (!opened.isFile()) throw new UserFileError(file, what, 'not-regular', NOT_REGULAR);
      if (opened.size > max) throw tooLarge(file, what, opened.size, max);
      const buffer = Buffer.alloc(Math.min(max, opened.size + 64 * 1024) + 1);
      let length = 0;
      for (;;) {
        if (length === buffer.length) break;
        const bytesRead = readSync(fd, buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > max) throw tooLarge(file, what, `more than ${max}`, max);
      bytes = buffer.subarray(0, length);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw errnoProblem(file, what, error);
  }
  return textOf(file, what, bytes, options.dropBom === true);
}
