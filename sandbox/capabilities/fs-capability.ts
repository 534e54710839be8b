/**
 * File access for tools, confined to one workspace folder.
 *
 * Invariant: every path a tool names resolves to a location inside the workspace root after all
 * symbolic links are followed; anything else is refused with ERR_PATH_OUTSIDE_WORKSPACE before
 * the file system is touched for reading or writing. Paths are resolved component by component:
 * `..` is applied lexically and must stay inside the root, and every existing component that is a
 * symlink must resolve (realpath) inside the root too. The final open uses O_NOFOLLOW, so a link
 * swapped in after the check is not followed. Tools themselves cannot create symlinks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CapabilityError } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { capabilityError } from './capability-error';

/** Largest file `fs.read` returns and `fs.write` accepts. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** Most entries `fs.list` returns. */
export const MAX_LIST_ENTRIES = 10_000;

export type FsGrant = NonNullable<CapabilityGrant['fs']>;

/** One entry of a folder listing. */
export interface FsEntry {
  name: string;
  type: 'file' | 'dir' | 'other';
  size: number;
}

/** The file operations one tool call may perform, all relative to the workspace root. */
export interface FsCapability {
  /** The whole file as UTF-8 text. */
  read(relativePath: unknown): string;
  /** Creates or replaces the file (and its missing parent folders) with `content`. */
  write(relativePath: unknown, content: unknown): { path: string; bytes: number };
  /** The entries of a folder, sorted by name; symlinks are reported as `other`. */
  list(relativePath?: unknown): FsEntry[];
}

/** The workspace-confined file operations for `grant.root`. Whether each is granted is the caller's business. */
export function createFsCapability(grant: FsGrant): FsCapability {
  return {
    read(relativePath) {
      const root = realRootOf(grant.root);
      const target = resolveInsideWorkspace(root, relativePath);
      return withFsErrors(target.display, () => readTextFile(target.absolute));
    },
    write(relativePath, content) {
      if (typeof content !== 'string') throw capabilityError('ERR_FS_FAILED', 'fs.write: content must be a string');
      const bytes = Buffer.byteLength(content, 'utf8');
      if (bytes > MAX_FILE_BYTES) throw capabilityError('ERR_FS_FAILED', `fs.write: content is ${bytes} bytes, more than ${MAX_FILE_BYTES}`);
      const root = realRootOf(grant.root);
      const target = resolveInsideWorkspace(root, relativePath);
      if (target.absolute === root) throw capabilityError('ERR_FS_FAILED', 'fs.write: cannot write the workspace folder itself');
      withFsErrors(target.display, () => {
        makeParentFolders(root, path.dirname(target.absolute));
        writeTextFile(target.absolute, content);
      });
      return { path: target.display, bytes };
    },
    list(relativePath = '.') {
      const root = realRootOf(grant.root);
      const target = resolveInsideWorkspace(root, relativePath);
      return withFsErrors(target.display, () => listFolder(target.absolute));
    },
  };
}

interface ResolvedPath {
  /** Real absolute path, free of symlinks, inside the root. */
  absolute: string;
  /** The path relative to the root, with `/` separators ("." for the root). */
  display: string;
}

function realRootOf(root: string): string {
  if (!path.isAbsolute(root)) throw capabilityError('ERR_FS_FAILED', 'the workspace root is not an absolute path');
  try {
    return fs.realpathSync(root);
  } catch {
    throw capabilityError('ERR_PATH_NOT_FOUND', 'the workspace folder does not exist');
  }
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function outside(relativePath: string, why: string): CapabilityError {
  return capabilityError('ERR_PATH_OUTSIDE_WORKSPACE', `path ${JSON.stringify(relativePath)} is outside the workspace: ${why}`, {
    path: relativePath,
  });
}

/**
 * The real location of `relativePath` inside `root`, or ERR_PATH_OUTSIDE_WORKSPACE. Components
 * that do not exist yet are fine (for writes); existing symlinks are followed and must stay inside.
 */
export function resolveInsideWorkspace(root: string, relativePath: unknown): ResolvedPath {
  if (typeof relativePath !== 'string') throw capabilityError('ERR_FS_FAILED', 'a path must be a string');
  if (relativePath.includes('\u0000')) throw outside(relativePath, 'it contains a NUL byte');
  if (path.isAbsolute(relativePath)) throw outside(relativePath, 'absolute paths are not allowed');
  const lexical = path.resolve(root, relativePath === '' ? '.' : relativePath);
  if (!isInside(root, lexical)) throw outside(relativePath, 'it climbs out of the workspace with ".."');

  const components = path.relative(root, lexical).split(path.sep).filter((c) => c !== '');
  let current = root;
  for (const [index, component] of components.entries()) {
    const next = path.join(current, component);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(next);
    } catch (error) {
      if (isNodeError(error) && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) {
        // Nothing exists from here on, so nothing further can be a link.
        current = path.join(current, ...components.slice(index));
        break;
      }
      throw capabilityError('ERR_FS_FAILED', `cannot inspect ${JSON.stringify(relativePath)}`);
    }
    if (stat.isSymbolicLink()) {
      let target: string;
      try {
        target = fs.realpathSync(next);
      } catch {
        throw outside(relativePath, 'it goes through a symbolic link that cannot be resolved');
      }
      if (!isInside(root, target)) throw outside(relativePath, 'it goes through a symbolic link that points outside');
      current = target;
    } else {
      current = next;
    }
  }
  const display = path.relative(root, current).split(path.sep).join('/');
  return { absolute: current, display: display === '' ? '.' : display };
}

function readTextFile(absolute: string): string {
  const fd = fs.openSync(absolute, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw capabilityError('ERR_FS_FAILED', 'fs.read: not a regular file');
    if (stat.size > MAX_FILE_BYTES) throw capabilityError('ERR_FS_FAILED', `fs.read: file is ${stat.size} bytes, more than ${MAX_FILE_BYTES}`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function writeTextFile(absolute: string, content: string): void {
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW;
  const fd = fs.openSync(absolute, flags, 0o644);
  try {
    fs.writeFileSync(fd, content, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** mkdir -p for a folder already proven (by resolution) to be inside the root. */
function makeParentFolders(root: string, folder: string): void {
  if (!isInside(root, folder)) throw capabilityError('ERR_PATH_OUTSIDE_WORKSPACE', 'parent folder is outside the workspace');
  fs.mkdirSync(folder, { recursive: true });
}

function listFolder(absolute: string): FsEntry[] {
  const entries = fs.readdirSync(absolute, { withFileTypes: true });
  if (entries.length > MAX_LIST_ENTRIES) {
    throw capabilityError('ERR_FS_FAILED', `fs.list: folder has ${entries.length} entries, more than ${MAX_LIST_ENTRIES}`);
  }
  return entries
    .map((entry): FsEntry => {
      const type = entry.isFile() ? 'file' : entry.isDirectory() ? 'dir' : 'other';
      let size = 0;
      try {
        size = type === 'file' ? fs.lstatSync(path.join(absolute, entry.name)).size : 0;
      } catch {
        // Vanished between readdir and lstat: report it with size 0.
      }
      return { name: entry.name, type, size };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Runs `operation`, turning Node's fs errors into capability errors about `displayPath`. */
function withFsErrors<T>(displayPath: string, operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    if (error instanceof CapabilityError || !isNodeError(error)) throw error;
    const name = JSON.stringify(displayPath);
    switch (error.code) {
      case 'ENOENT':
        throw capabilityError('ERR_PATH_NOT_FOUND', `no such file or folder: ${name}`, { path: displayPath });
      case 'ELOOP':
        throw outside(displayPath, 'it is a symbolic link');
      case 'EISDIR':
        throw capabilityError('ERR_FS_FAILED', `${name} is a folder`, { path: displayPath });
      case 'ENOTDIR':
        throw capabilityError('ERR_FS_FAILED', `${name}: a component is not a folder`, { path: displayPath });
      default:
        throw capabilityError('ERR_FS_FAILED', `file system error ${error.code ?? 'unknown'} on ${name}`, { path: displayPath });
    }
  }
}

function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}
