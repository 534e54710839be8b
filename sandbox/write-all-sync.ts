import * as fs from 'node:fs';

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes every byte of `bytes` to `fd` before it returns, waiting (2 ms at a time) while a
 * non-blocking pipe is full: once it returns, the bytes are in the kernel and outlive this process.
 * Throws any other write error (EPIPE: the reader is gone).
 */
export function writeAllSync(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(PAUSE, 0, 0, 2);
    }
  }
}
