/**
 * Reading a file a user named without waiting on it: the path is opened non-blocking and checked
 * on what was opened (fstat), so a FIFO, device, socket or folder is refused at once. A plain
 * `readFile` of a FIFO waits for a writer forever (synchronously: the whole process stops).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** The path names something that is not a regular file; `message` says so, naming the path. */
export class NotRegularFileError extends Error {
  constructor(readonly file: string) {
    super(`${file} is not a regular file`);
    this.name = 'NotRegularFileError';
  }
}

/** The UTF-8 text of regular file `file`. Throws NotRegularFileError, or the fs error (ENOENT...). */
export function readRegularFileSync(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new NotRegularFileError(file);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** The UTF-8 text of regular file `file`. Rejects with NotRegularFileError, or the fs error. */
export async function readRegularFile(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw new NotRegularFileError(file);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
