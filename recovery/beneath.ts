/**
 * File operations below a folder that an untrusted process may be changing while they run: the
 * overlay's upper folder, which a stdio MCP server or a program in the OS sandbox writes through
 * the kernel overlay, also between and during Warden's own reads and writes of it.
 *
 * A path operation (`readFile(join(upper, p))`) resolves every folder of `p` again when it runs, so
 * a sandboxed process that swaps a folder for a symbolic link to a host folder (renameat2
 * RENAME_EXCHANGE: the name is never missing) between Warden's check and its use sends the
 * worker's read or write to the host: the worker's user's full power. Here every folder is opened
 * one component at a time through the descriptor of the one before it with O_DIRECTORY |
 * O_NOFOLLOW (Linux's `/proc/self/fd/<fd>/<name>` resolves `name` in that very folder, like
 * `openat`), and the last component is opened, created, renamed or removed there without following
 * a link. Whatever the process swaps, an operation reaches only what is below `root`; a link met on
 * the way is refused (BeneathError ERR_LINK_IN_PATH), never followed.
 *
 * `root` itself is Warden's own path (the state folder's), followed as given. Paths are relative,
 * `/`-separated, without `.`, `..` or empty components (a TypeError otherwise). Linux only (/proc): the
 * OS sandbox that writes such folders is Linux's.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { WardenError } from '../errors';

const PROC_FD = '/proc/self/fd';
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/** An operation below a folder that met a link (or another non-folder) where a folder was: ERR_LINK_IN_PATH. */
export class BeneathError extends WardenError {}

/** The components of a relative path; throws TypeError for one that could leave the folder (Warden's own walks never make one). */
export function pathParts(relative: string): string[] {
  const parts = relative.split('/');
  if (relative === '' || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
    throw new TypeError(`not a path below the folder: ${JSON.stringify(relative)}`);
  }
  return parts;
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** `/proc/self/fd/<fd>` or `/proc/self/fd/<fd>/<name>`: `name` resolved in the folder `fd` holds. */
export function inFolder(fd: number, name?: string): string {
  return name === undefined ? `${PROC_FD}/${fd}` : `${PROC_FD}/${fd}/${name}`;
}

function linkOnTheWay(relative: string): BeneathError {
  return new BeneathError('ERR_LINK_IN_PATH', `${JSON.stringify(relative)}: a folder on its way is a symbolic link or not a folder (changed while Warden read it?); not followed`, { details: { path: relative } });
}

/** Opens the folder `name` of the folder `parent` holds, never through a link. */
function openChildFolder(parent: number, name: string, relative: string): number {
  try {
    return fs.openSync(inFolder(parent, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (error) {
    // Linux says ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW, ELOOP on some paths.
    if (isErrno(error, 'ENOTDIR', 'ELOOP')) throw linkOnTheWay(relative);
    throw error;
  }
}

/**
 * The descriptor of the folder `parts` names below `root` (the root itself for no parts), opened
 * without following links; with `create`, missing folders are made (mode 0o755 before umask).
 * Throws BeneathError ERR_LINK_IN_PATH for a link or file on the way, ENOENT for a missing folder
 * without `create`. The caller closes it.
 */
export function openFolderBeneath(root: string, parts: readonly string[], create = false): number {
  let fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  try {
    for (const [i, name] of parts.entries()) {
      const relative = parts.slice(0, i + 1).join('/');
      let next: number;
      try {
        next = openChildFolder(fd, name, relative);
      } catch (error) {
        if (!create || !isErrno(error, 'ENOENT')) throw error;
        try {
          fs.mkdirSync(inFolder(fd, name), 0o755);
        } catch (mkdirError) {
          if (!isErrno(mkdirError, 'EEXIST')) throw mkdirError;
        }
        next = openChildFolder(fd, name, relative);
      }
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

/** Runs `use` with the folder holding `relative`'s last component and that component's name. */
function inParent<T>(root: string, relative: string, create: boolean, use: (folder: number, name: string) => T): T {
  const parts = pathParts(relative);
  const folder = openFolderBeneath(root, parts.slice(0, -1), create);
  let result: T;
  try {
    result = use(folder, parts[parts.length - 1]!);
  } catch (error) {
    fs.closeSync(folder);
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => fs.closeSync(folder)) as T;
  fs.closeSync(folder);
  return result;
}

/** lstat of `relative` below `root` (the last component is not followed); undefined when it or a folder on the way is missing. */
export function lstatBeneath(root: string, relative: string): fs.Stats | undefined;
export function lstatBeneath(root: string, relative: string, options: { bigint: true }): fs.BigIntStats | undefined;
export function lstatBeneath(root: string, relative: string, options?: { bigint: true }): fs.Stats | fs.BigIntStats | undefined {
  try {
    return inParent(root, relative, false, (folder, name) => (options?.bigint === true ? fs.lstatSync(inFolder(folder, name), { bigint: true }) : fs.lstatSync(inFolder(folder, name))));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/**
 * The bytes of the regular file `relative` below `root`. Throws BeneathError ERR_LINK_IN_PATH for a
 * link at or on the way to it, ENOENT when missing, EINVAL (as Node reports it) for a file that is
 * not regular (a FIFO is opened without blocking and refused).
 */
export async function readFileBeneath(root: string, relative: string): Promise<Buffer> {
  return inParent(root, relative, false, async (folder, name) => {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(inFolder(folder, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if (isErrno(error, 'ELOOP')) throw linkOnTheWay(relative);
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) throw Object.assign(new Error(`${JSON.stringify(relative)} is not a regular file`), { code: 'EINVAL' });
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  });
}

/**
 * Replaces (or creates) the file `relative` below `root` with `content`, atomically: a new file
 * beside it (O_EXCL | O_NOFOLLOW), flushed, renamed over it in the same folder descriptor (a link
 * at the name is replaced, not followed), the folder flushed. Missing folders are made. `mode` for
 * a new file; an existing regular file keeps its mode.
 */
export async function writeFileAtomicBeneath(root: string, relative: string, content: Uint8Array, mode = 0o644): Promise<void> {
  await inParent(root, relative, true, async (folder, name) => {
    const existing = lstatOr(inFolder(folder, name));
    const fileMode = existing?.isFile() === true ? existing.mode & 0o7777 : mode;
    const temp = `.warden-${process.pid}-${Math.random().toString(16).slice(2)}.tmp`;
    const handle = await fsp.open(inFolder(folder, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, fileMode);
    try {
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.rename(inFolder(folder, temp), inFolder(folder, name));
    } catch (error) {
      await fsp.rm(inFolder(folder, temp), { force: true });
      throw error;
    }
    try {
      fs.fsyncSync(folder);
    } catch {
      // Some file systems cannot flush a folder; the rename is still atomic.
    }
  });
}

function lstatOr(at: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(at);
  } catch {
    return undefined;
  }
}

/**
 * Removes `relative` below `root` and, for a folder, everything under it, never following a link
 * (a link is removed itself). Nothing to do when it or a folder on the way is missing. Without
 * `recursive`, a folder is refused (an Error with code EISDIR).
 */
export function removeBeneath(root: string, relative: string, options: { recursive: boolean } = { recursive: true }): void {
  try {
    inParent(root, relative, false, (folder, name) => {
      if (!options.recursive && lstatOr(inFolder(folder, name))?.isDirectory() === true) {
        throw Object.assign(new Error(`${JSON.stringify(relative)} is a folder`), { code: 'EISDIR' });
      }
      removeEntry(folder, name, relative);
    });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
}

function removeEntry(folder: number, name: string, relative: string): void {
  const stat = lstatOr(inFolder(folder, name));
  if (stat === undefined) return;
  if (!stat.isDirectory()) {
    fs.rmSync(inFolder(folder, name), { force: true });
    return;
  }
  let child: number;
  try {
    child = openChildFolder(folder, name, relative);
  } catch (error) {
    // Swapped for a link since the lstat: the link itself goes.
    if (error instanceof BeneathError) {
      fs.rmSync(inFolder(folder, name), { force: true });
      return;
    }
    throw error;
  }
  try {
    for (const entry of fs.readdirSync(inFolder(child))) removeEntry(child, entry, `${relative}/${entry}`);
  } finally {
    fs.closeSync(child);
  }
  fs.rmdirSync(inFolder(folder, name));
}

/** One entry of a folder walked by {@link walkBeneath}. */
export interface BeneathEntry {
  /** Relative to the walk's root, `/`-separated. */
  path: string;
  /** What lstat said, through the folder's descriptor. */
  stat: fs.Stats;
  /** For a folder: `/proc/self/fd/<fd>/.`, the folder itself while `visit` runs (for an xattr read); else undefined. */
  folder?: string;
}

/**
 * Walks the tree below `root` without following links: `visit` gets every entry (folders before
 * what is under them) and returns false to skip a folder's contents; `beforeFolder` runs before a
 * folder (relative path, '' for the root) is read (a bound check); `onUnreadable` gets a folder that
 * cannot be listed (it throws, or returns to skip it; without it the error is thrown). A folder that became a link
 * between its listing and its opening is given to `visit` as the link it now is. A missing root walks nothing.
 */
export function walkBeneath(root: string, visit: (entry: BeneathEntry) => boolean | void, beforeFolder?: (relative: string) => void, onUnreadable?: (relative: string, error: unknown) => void): void {
  let rootFd: number;
  try {
    rootFd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const walk = (fd: number, relative: string) => {
    beforeFolder?.(relative);
    let names: string[];
    try {
      names = fs.readdirSync(inFolder(fd));
    } catch (error) {
      if (onUnreadable === undefined) throw error;
      // Skipped when the handler returns.
      onUnreadable(relative, error);
      return;
    }
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const stat = lstatOr(inFolder(fd, name));
      if (stat === undefined) continue;
      if (!stat.isDirectory()) {
        visit({ path, stat });
        continue;
      }
      let child: number;
      try {
        child = openChildFolder(fd, name, path);
      } catch (error) {
        if (!(error instanceof BeneathError)) throw error;
        const now = lstatOr(inFolder(fd, name));
        if (now !== undefined) visit({ path, stat: now });
        continue;
      }
      try {
        // `/.`: the folder itself even for calls that do not follow a final link (lgetxattr).
        if (visit({ path, stat, folder: `${inFolder(child)}/.` }) !== false) walk(child, path);
      } finally {
        fs.closeSync(child);
      }
    }
  };
  try {
    walk(rootFd, '');
  } finally {
    fs.closeSync(rootFd);
  }
}
