/**
 * File access for tools, confined to one workspace folder.
 *
 * Invariant: every path a tool names resolves to a location inside the workspace root after all
 * symbolic links are followed; anything else is refused with ERR_PATH_OUTSIDE_WORKSPACE before
 * the file system is touched for reading or writing. Paths are resolved component by component:
 * `..` is applied lexically and must stay inside the root, and every existing component that is a
 * symlink must resolve (realpath) inside the root too. The final open uses O_NOFOLLOW, so a link
 * swapped in after the check is not followed. Tools themselves cannot create symlinks.
 *
 * With `grant.overlay` (a copy-on-write upper folder owned by Warden, see recovery/) the workspace
 * is never written: a path is resolved once against the real workspace as above, and that
 * canonical path names the file in the upper folder too. Reads take the upper file when it exists
 * and fall through otherwise, writes land only in the upper folder, listings merge both. Inside the
 * upper folder no symbolic link is followed at all (Warden never creates one there).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CapabilityError } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { coverOf, isWhiteout, markOpaque } from '../../recovery/overlay-layer';
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
  if (grant.overlay !== undefined) return createOverlayFsCapability(grant.root, grant.overlay);
  return {
    read(relativePath) {
      const root = realRootOf(grant.root);
      const target = resolveInsideWorkspace(root, relativePath);
      return withFsErrors(target.display, () => readTextFile(target.absolute));
    },
    write(relativePath, content) {
      const bytes = checkedContentBytes(content);
      const root = realRootOf(grant.root);
      const target = resolveInsideWorkspace(root, relativePath);
      if (target.absolute === root) throw capabilityError('ERR_FS_FAILED', 'fs.write: cannot write the workspace folder itself');
      withFsErrors(target.display, () => {
        makeParentFolders(root, path.dirname(target.absolute));
        writeTextFile(target.absolute, content as string);
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

/**
 * The same operations seen through a copy-on-write overlay: `upperDir` (absolute) holds every file
 * the task wrote, keyed by the canonical workspace-relative path; the workspace is only read.
 */
function createOverlayFsCapability(workspaceRoot: string, upperDir: string): FsCapability {
  /** The canonical path of `relativePath` in the workspace and its location in the upper folder. */
  const locate = (relativePath: unknown, createUpper: boolean) => {
    const root = realRootOf(workspaceRoot);
    const lower = resolveInsideWorkspace(root, relativePath);
    const upperRoot = upperRootOf(upperDir, createUpper);
    const upper = upperRoot === undefined ? undefined : resolveConfined(upperRoot, lower.display, 'refuse');
    return { root, lower, upperRoot, upper };
  };
  return {
    read(relativePath) {
      const { lower, upperRoot } = locate(relativePath, false);
      return withFsErrors(lower.display, () => {
        const cover = upperRoot === undefined ? ({ kind: 'none' } as const) : coverOf(upperRoot, lower.display);
        if (cover.kind === 'deleted') throw Object.assign(new Error('deleted in the overlay'), { code: 'ENOENT' });
        if (cover.kind === 'other') throw Object.assign(new Error('a special file in the overlay'), { code: 'ELOOP' });
        if (cover.kind === 'file' || cover.kind === 'folder') return readTextFile(cover.absolute);
        return readTextFile(lower.absolute);
      });
    },
    write(relativePath, content) {
      const bytes = checkedContentBytes(content);
      const { root, lower, upperRoot, upper } = locate(relativePath, true);
      if (upperRoot === undefined || upper === undefined) throw capabilityError('ERR_FS_FAILED', 'the overlay folder cannot be created');
      if (lower.absolute === root) throw capabilityError('ERR_FS_FAILED', 'fs.write: cannot write the workspace folder itself');
      withFsErrors(lower.display, () => {
        if (coverOf(upperRoot, lower.display).kind === 'deleted') {
          // A program deleted this path (or a folder above it): writing brings back only this file.
          undoDeletion(upperRoot, lower.display);
        } else {
          // What the real folder would refuse, the overlay refuses too, so a commit cannot fail on it.
          assertWritableInWorkspace(root, lower.absolute);
        }
        makeParentFolders(upperRoot, path.dirname(upper.absolute));
        writeTextFile(upper.absolute, content as string);
      });
      return { path: lower.display, bytes };
    },
    list(relativePath = '.') {
      const { lower, upperRoot } = locate(relativePath, false);
      return withFsErrors(lower.display, () => {
        const cover = upperRoot === undefined ? ({ kind: 'none' } as const) : coverOf(upperRoot, lower.display);
        if (cover.kind === 'deleted') throw Object.assign(new Error('deleted in the overlay'), { code: 'ENOENT' });
        if (cover.kind === 'file' || cover.kind === 'other') return listFolder(cover.absolute); // raises ENOTDIR
        const lowerEntries = cover.kind === 'folder' && cover.opaque ? undefined : listIfFolder(lower.absolute);
        const upperEntries = cover.kind === 'folder' ? listFolder(cover.absolute) : undefined;
        if (lowerEntries === undefined && upperEntries === undefined) return listFolder(lower.absolute); // raises ENOENT
        const merged = new Map<string, FsEntry>();
        for (const entry of lowerEntries ?? []) merged.set(entry.name, entry);
        for (const entry of upperEntries ?? []) {
          if (entry.type === 'other' && cover.kind === 'folder' && isWhiteoutAt(path.join(cover.absolute, entry.name))) merged.delete(entry.name);
          else merged.set(entry.name, entry);
        }
        if (merged.size > MAX_LIST_ENTRIES) {
          throw capabilityError('ERR_FS_FAILED', `fs.list: folder has ${merged.size} entries, more than ${MAX_LIST_ENTRIES}`);
        }
        return [...merged.values()].sort(byName);
      });
    },
  };
}

function isWhiteoutAt(absolute: string): boolean {
  const stat = lstatOrUndefined(absolute);
  return stat !== undefined && isWhiteout(stat);
}

/**
 * Makes `display` writable again in an upper layer where it, or a folder above it, is deleted:
 * a whiteout on the path is removed; a whiteout folder above it becomes an opaque folder (the
 * workspace's old contents stay deleted, as the kernel does it).
 */
function undoDeletion(upperRoot: string, display: string): void {
  const parts = display.split('/');
  let current = upperRoot;
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    const stat = lstatOrUndefined(current);
    if (stat === undefined) return;
    if (!isWhiteout(stat)) continue;
    fs.unlinkSync(current);
    if (index < parts.length - 1) {
      fs.mkdirSync(current);
      markOpaque(current);
    }
    return;
  }
}

function checkedContentBytes(content: unknown): number {
  if (typeof content !== 'string') throw capabilityError('ERR_FS_FAILED', 'fs.write: content must be a string');
  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes > MAX_FILE_BYTES) throw capabilityError('ERR_FS_FAILED', `fs.write: content is ${bytes} bytes, more than ${MAX_FILE_BYTES}`);
  return bytes;
}

/** The real path of the overlay's upper folder; undefined when it does not exist and `create` is false. */
function upperRootOf(upperDir: string, create: boolean): string | undefined {
  if (!path.isAbsolute(upperDir)) throw capabilityError('ERR_FS_FAILED', 'the overlay folder is not an absolute path');
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(upperDir);
  } catch (error) {
    if (!isNodeError(error) || error.code !== 'ENOENT') throw capabilityError('ERR_FS_FAILED', 'the overlay folder cannot be inspected');
  }
  if (stat === undefined) {
    if (!create) return undefined;
    try {
      fs.mkdirSync(upperDir, { recursive: true, mode: 0o700 });
    } catch {
      throw capabilityError('ERR_FS_FAILED', 'the overlay folder cannot be created');
    }
  } else if (!stat.isDirectory()) {
    throw capabilityError('ERR_FS_FAILED', 'the overlay folder is not a folder');
  }
  return fs.realpathSync(upperDir);
}

/** Refuses a write the real workspace would refuse: the target is a folder, or a parent is not one. */
function assertWritableInWorkspace(root: string, absolute: string): void {
  const stat = lstatOrUndefined(absolute);
  if (stat?.isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
  let current = root;
  for (const component of path.relative(root, path.dirname(absolute)).split(path.sep).filter((c) => c !== '')) {
    current = path.join(current, component);
    const parent = lstatOrUndefined(current);
    if (parent === undefined) return;
    if (!parent.isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
  }
}

function lstatOrUndefined(absolute: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(absolute);
  } catch (error) {
    if (isNodeError(error) && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) return undefined;
    throw error;
  }
}

function existsNoFollow(absolute: string): boolean {
  return lstatOrUndefined(absolute) !== undefined;
}

/** The listing of `absolute`, or undefined when nothing is there (a file there is an error). */
function listIfFolder(absolute: string): FsEntry[] | undefined {
  if (!existsNoFollow(absolute)) return undefined;
  return listFolder(absolute);
}

function byName(a: FsEntry, b: FsEntry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export interface ResolvedPath {
  /** Real absolute path, free of symlinks, inside the root. */
  absolute: string;
  /** The path relative to the root, with `/` separators ("." for the root). */
  display: string;
}

/** The real path of a workspace root, or ERR_PATH_NOT_FOUND. */
export function realRootOf(root: string): string {
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
  return resolveConfined(root, relativePath, 'follow-inside');
}

/**
 * What to do with a symbolic link met while resolving: `follow-inside` follows it when its real
 * target stays inside the root (the workspace); `refuse` refuses any link (folders Warden owns,
 * such as an overlay's upper folder or a commit target, never contain one).
 */
export type SymlinkPolicy = 'follow-inside' | 'refuse';

/**
 * The one confinement check every file path goes through (workspace, overlay, commit, rollback):
 * `relativePath` must be a string without NUL bytes, not absolute, must not climb out of `root`
 * lexically, and every existing component is inspected with lstat and handled per `symlinks`.
 * `root` must already be a real path.
 */
export function resolveConfined(root: string, relativePath: unknown, symlinks: SymlinkPolicy): ResolvedPath {
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
      if (isNodeError(error) && error.code === 'ENAMETOOLONG') throw capabilityError('ERR_FS_FAILED', 'the path is too long');
      throw capabilityError('ERR_FS_FAILED', `cannot inspect ${JSON.stringify(relativePath)}`);
    }
    if (stat.isSymbolicLink()) {
      if (symlinks === 'refuse') throw outside(relativePath, 'it goes through a symbolic link');
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

export function listFolder(absolute: string): FsEntry[] {
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
    .sort(byName);
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

export function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}
