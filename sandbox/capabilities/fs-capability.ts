/**
 * File access for tools, confined to one workspace folder.
 *
 * Invariant: every path a tool names resolves to a location inside the workspace root after all
 * symbolic links are followed; anything else is refused with ERR_PATH_OUTSIDE_WORKSPACE before
 * the file system is touched for reading or writing. Paths are resolved component by component:
 * `..` is applied lexically and must stay inside the root, and every existing component that is a
 * symlink must resolve (realpath) inside the root too. The resolved path (free of links) is then
 * opened one component at a time from the root, each with O_NOFOLLOW (through the descriptor of
 * the folder before it, `/proc/self/fd/<fd>/<name>`), and the opened descriptor's real path must
 * be the resolved one: a folder swapped for a symlink, or moved, by another process while the call
 * runs is refused, never followed. Tools themselves cannot create symlinks.
 *
 * Warden's own state (`grant.protectedPaths`: the state and cache folders) is never served under
 * any path, nor is any of `grant.protectedFiles` (private keys, credential stores) under another
 * name (a hard link): the opened file's device and inode are compared before a byte is read or
 * written.
 *
 * With `grant.overlay` (a copy-on-write upper folder owned by Warden, see recovery/) the workspace
 * is never written: a path is resolved once against the real workspace as above, and that
 * canonical path names the file in the upper folder too. Reads take the upper file when it exists
 * and fall through otherwise, writes land only in the upper folder, listings merge both. Inside the
 * upper folder no symbolic link is followed at all (Warden never creates one there). Deletions
 * programs make through the kernel overlay (whiteouts, opaque folders) are honoured by every
 * operation (recovery/overlay-layer.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CapabilityError } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { coverOf, isWhiteout, markOpaque } from '../../recovery/overlay-layer';
import { volumeRoomBytes } from '../../recovery/overlay-volume';
import { capabilityError } from './capability-error';
import { createProtectedGuard, type Access, type ProtectedGuard, type Refusal } from './protected-guard';

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
export function createFsCapability(grant: FsGrant, hooks: FsCapabilityHooks = {}): FsCapability {
  const guard = guardOf(grant);
  if (grant.overlay !== undefined) return createOverlayFsCapability(grant, grant.overlay, guard, hooks);
  return {
    read(relativePath) {
      const root = realRootOf(grant.root);
      const target = resolveUnprotected(grant, root, relativePath);
      hooks.afterResolve?.(target);
      return withFsErrors(target.display, () => readTextFile(root, target, guard));
    },
    write(relativePath, content) {
      const bytes = checkedContentBytes(content);
      const root = realRootOf(grant.root);
      const target = resolveUnprotected(grant, root, relativePath);
      if (target.absolute === root) throw capabilityError('ERR_FS_FAILED', 'fs.write: cannot write the workspace folder itself');
      hooks.afterResolve?.(target);
      withFsErrors(target.display, () => writeTextFile(root, target, content as string, guard));
      return { path: target.display, bytes };
    },
    list(relativePath = '.') {
      const root = realRootOf(grant.root);
      const target = resolveUnprotected(grant, root, relativePath);
      hooks.afterResolve?.(target);
      return withFsErrors(target.display, () => listConfined(root, target, guard));
    },
  };
}

/** Seams for tests that must act at an exact moment of a call (e.g. swap a folder for a link). */
export interface FsCapabilityHooks {
  /** Called after a path is resolved and before anything is opened. */
  afterResolve?(target: ResolvedPath): void;
}

/** What no call may touch (protected-guard.ts), for one call: identities are looked up once, when first needed. */
type ProtectedFsGuard = ProtectedGuard;

function guardOf(grant: FsGrant): ProtectedFsGuard {
  return createProtectedGuard({ folders: grant.protectedPaths ?? [], files: grant.protectedFiles ?? [], readOnly: grant.readOnlyPaths ?? [] });
}

function protectedRefusal(display: string, refusal?: Refusal): CapabilityError {
  if (refusal?.what.startsWith('the task') === true) return outside(display, `it is ${refusal.what}, which the agent may read but not change`);
  return outside(display, refusal?.what.startsWith('a kernel') === true ? `it is on ${refusal.what}` : "it is part of Warden's own state");
}

/** resolveInsideWorkspace, refusing anything at or under a protected folder (for when the state folder sits in the workspace). */
function resolveUnprotected(grant: FsGrant, root: string, relativePath: unknown): ResolvedPath {
  const target = resolveConfined(root, relativePath, grant.symlinks ?? 'follow-inside');
  if ((grant.protectedPaths ?? []).some((p) => isInside(p, target.absolute))) throw protectedRefusal(target.display);
  return target;
}

/**
 * Refuses an open descriptor that is (or, in the workspace, lies under) something protected for
 * `access`, under whatever name it was reached. In the overlay's upper folder (which lies in the
 * state folder by design, and holds only files Warden made) only the file's own identity counts.
 */
function assertNotProtected(fd: number, display: string, guard: ProtectedFsGuard, access: Access, layer: 'workspace' | 'upper'): fs.Stats {
  const stat = fs.fstatSync(fd);
  const refusal = layer === 'workspace' ? guard.refusalOfDescriptor(fd, access) : guard.refusalOfFileIdentity(fd, access);
  if (refusal !== undefined) throw protectedRefusal(display, refusal);
  return stat;
}

/**
 * The same operations seen through a copy-on-write overlay: `upperDir` (absolute) holds every file
 * the task wrote, keyed by the canonical workspace-relative path; the workspace is only read.
 */
function createOverlayFsCapability(grant: FsGrant, upperDir: string, guard: ProtectedFsGuard, hooks: FsCapabilityHooks): FsCapability {
  /** The canonical path of `relativePath` in the workspace and its location in the upper folder. */
  const locate = (relativePath: unknown, createUpper: boolean) => {
    const root = realRootOf(grant.root);
    const lower = resolveUnprotected(grant, root, relativePath);
    const upperRoot = upperRootOf(upperDir, createUpper);
    const upper = upperRoot === undefined ? undefined : resolveConfined(upperRoot, lower.display, 'refuse');
    hooks.afterResolve?.(lower);
    return { root, lower, upperRoot, upper };
  };
  return {
    read(relativePath) {
      const { root, lower, upperRoot, upper } = locate(relativePath, false);
      return withFsErrors(lower.display, () => {
        // Programs in the OS sandbox delete through the kernel overlay: whiteouts and opaque folders.
        const cover = upperRoot === undefined ? NO_COVER : coverOf(upperRoot, lower.display);
        if (cover.kind === 'deleted') throw Object.assign(new Error('deleted in the overlay'), { code: 'ENOENT' });
        if (cover.kind === 'other') throw Object.assign(new Error('a special file in the overlay'), { code: 'ELOOP' });
        if (upperRoot !== undefined && upper !== undefined && cover.kind !== 'none') return readTextFile(upperRoot, upper, guard, lower.display);
        return readTextFile(root, lower, guard);
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
        // The commit writes the workspace path: a protected or read-only one is refused here, not there.
        const refusal = guard.refusalOfPath(lower.absolute, 'write');
        if (refusal !== undefined) throw protectedRefusal(lower.display, refusal);
        // A write past the tree's bound is refused before the file changes (nothing half-written).
        if (grant.workspaceBytes !== undefined) assertRoomFor(upperRoot, upper.absolute, bytes, grant.workspaceBytes, lower.display);
        if (grant.undo !== undefined) recordOverlayUndo(grant.undo, upperRoot, upper, lower.display);
        writeTextFile(upperRoot, upper, content as string, guard, lower.display);
      });
      return { path: lower.display, bytes };
    },
    list(relativePath = '.') {
      const { root, lower, upperRoot, upper } = locate(relativePath, false);
      return withFsErrors(lower.display, () => {
        const cover = upperRoot === undefined ? NO_COVER : coverOf(upperRoot, lower.display);
        if (cover.kind === 'deleted') throw Object.assign(new Error('deleted in the overlay'), { code: 'ENOENT' });
        if (cover.kind === 'other') throw Object.assign(new Error('a special file in the overlay'), { code: 'ELOOP' });
        if (cover.kind === 'file') return listConfined(upperRoot!, upper!, guard, lower.display); // raises ENOTDIR
        // An opaque folder hides the workspace's folder of that name.
        const lowerEntries = cover.kind === 'folder' && cover.opaque ? undefined : existsNoFollow(lower.absolute) ? listConfined(root, lower, guard) : undefined;
        const upperEntries = cover.kind === 'folder' && upperRoot !== undefined && upper !== undefined ? listConfined(upperRoot, upper, guard, lower.display) : undefined;
        if (lowerEntries === undefined && upperEntries === undefined) return listConfined(root, lower, guard); // raises ENOENT
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

const NO_COVER = { kind: 'none' } as const;

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

/**
 * Before the first write of a call to an overlay path, keeps what the upper folder held there
 * (the file's bytes, or that there was none) under `undoDir`, one JSON file per path named by a
 * digest of it (the bytes beside it, `<digest>.bytes`, as they were), so the call's writes can be
 * undone (recovery/overlay-undo.ts). Later writes of the same call keep the first record: undo
 * returns to the state before the call. The old file is opened as every upper file is (no link
 * followed), so what is kept is never another file's bytes.
 */
function recordOverlayUndo(undoDir: string, upperRoot: string, upper: ResolvedPath, display: string): void {
  if (!path.isAbsolute(undoDir)) throw capabilityError('ERR_FS_FAILED', 'the undo folder is not an absolute path');
  const name = createHash('sha256').update(display, 'utf8').digest('hex').slice(0, 32);
  const entry = path.join(undoDir, `${name}.json`);
  if (existsNoFollow(entry)) return;
  fs.mkdirSync(undoDir, { recursive: true, mode: 0o700 });
  let record: { path: string; existed: boolean; bytesFile?: string } = { path: display, existed: false };
  if (lstatOrUndefined(upper.absolute)?.isFile() === true) {
    const fd = openConfined(upperRoot, upper, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, { display });
    try {
      if (fs.fstatSync(fd).isFile()) {
        const kept = path.join(undoDir, `${name}.bytes`);
        // Through the open descriptor (the kernel copies, copy_file_range); without /proc, read and write.
        if (HAS_PROC_FD) fs.copyFileSync(`${PROC_FD}/${fd}`, kept);
        else fs.writeFileSync(kept, fs.readFileSync(fd), { mode: 0o600 });
        record = { path: display, existed: true, bytesFile: `${name}.bytes` };
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  const temporary = `${entry}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(record), { mode: 0o600 });
  fs.renameSync(temporary, entry);
}

/** Room a write needs beyond its bytes: new folders, the file's inode, block rounding, its undo record. */
const WRITE_SLACK_BYTES = 64 * 1024;

/**
 * Throws ERR_WORKSPACE_QUOTA when writing `bytes` to `target` (in the upper folder `upperRoot`)
 * would take the task tree's overlay past `limitBytes`. On a volume (recovery/overlay-volume.ts)
 * the file system's free space is the bound; a plain folder (a tree that runs no program: only
 * Warden writes it) is measured, the file being replaced counted out.
 */
function assertRoomFor(upperRoot: string, target: string, bytes: number, limitBytes: number, display: string): void {
  const limitMb = Math.round(limitBytes / 1024 / 1024);
  const refuse = (what: string) =>
    capabilityError('ERR_WORKSPACE_QUOTA', `fs.write: no room for ${bytes} bytes in ${JSON.stringify(display)}: ${what} (limits.workspaceMb: ${limitMb} MiB; raise limits.workspaceMb in the task file for more)`, { path: display, limitMb });
  const overlayDir = path.dirname(upperRoot);
  if (fs.statSync(overlayDir).dev !== fs.statSync(path.dirname(overlayDir)).dev) {
    // The rule of a call's end (recovery/overlay-volume.ts assertWithinWorkspaceQuota), before the write.
    const room = volumeRoomBytes(fs.statfsSync(overlayDir), limitBytes);
    if (bytes + WRITE_SLACK_BYTES > room) throw refuse(`the task tree's workspace has ${room} bytes left`);
    return;
  }
  const replaced = lstatOrUndefined(target);
  const used = allocatedBytes(upperRoot) - (replaced?.isFile() === true ? replaced.blocks * 512 : 0);
  if (used + bytes > limitBytes) throw refuse(`the task tree's workspace holds ${used} bytes`);
}

/** Bytes allocated on disk under `folder` (st_blocks, symbolic links not followed). */
function allocatedBytes(folder: string): number {
  let total = 0;
  const pending = [folder];
  while (pending.length > 0) {
    const current = pending.pop()!;
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      const stat = fs.lstatSync(full);
      total += stat.blocks * 512;
      if (entry.isDirectory()) pending.push(full);
    }
  }
  return total;
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
    if (parent.isSymbolicLink()) throw changedDuringCall(path.relative(root, absolute).split(path.sep).join('/'));
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
/**
 * The refusal any fs operation under `grant` would throw for `relativePath` before it opens
 * anything: not a string, absolute, climbing out of the workspace, a link leading out, a protected
 * folder or file (Warden's state and keys; for a write, the task's own controls), or no workspace folder. Undefined when the path is inside what the grant
 * covers (the file need not exist). Read by sandbox/capabilities/grant-refusal.ts before any rule
 * may hold the call for a human who could only approve what this refuses.
 */
export function fsPathRefusal(grant: FsGrant, relativePath: unknown, access: 'read' | 'write' | 'list'): CapabilityError | undefined {
  try {
    const target = resolveUnprotected(grant, realRootOf(grant.root), relativePath);
    // A protected or read-only file (a key file, the task's own controls) by what the path leads to now.
    const refusal = access === 'list' ? undefined : guardOf(grant).refusalOfPath(target.absolute, access);
    if (refusal !== undefined) return protectedRefusal(target.display, refusal);
    return undefined;
  } catch (error) {
    if (error instanceof CapabilityError) return error;
    // Anything else (a component that cannot be inspected) is the operation's own failure, not the grant's.
    return undefined;
  }
}

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
      // The errno stays in the details: a reader tells "permission denied" from anything else (attestation/verify-attestation.ts).
      const errno = isNodeError(error) ? error.code : undefined;
      if (errno === 'EACCES' || errno === 'EPERM') throw capabilityError('ERR_FS_FAILED', `cannot inspect ${JSON.stringify(relativePath)}: permission denied`, { path: relativePath, errno });
      throw capabilityError('ERR_FS_FAILED', `cannot inspect ${JSON.stringify(relativePath)}`, errno === undefined ? undefined : { errno });
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

/** Where the kernel shows each open descriptor as a link to its file (Linux). */
const PROC_FD = '/proc/self/fd';
const HAS_PROC_FD = fs.existsSync(PROC_FD);

function changedDuringCall(display: string): CapabilityError {
  return outside(display, 'a folder on its way was replaced by a symbolic link or moved while the call ran');
}

/**
 * Opens `target` (a real path inside the real folder `root`, as resolveConfined returns it) one
 * component at a time: every folder through the descriptor of the one before it with
 * O_DIRECTORY | O_NOFOLLOW, then the last component with `flags` | O_NOFOLLOW. A link met on the
 * way means the tree changed since resolution. With `createFolders`, missing folders are made
 * (mkdir never follows a link in the last component). Finally the descriptor's real path must
 * still be `target.absolute`. Without /proc (not Linux) the path is opened directly and its real
 * path compared afterwards.
 */
function openConfined(root: string, target: ResolvedPath, flags: number, options: { mode?: number; createFolders?: boolean; display?: string } = {}): number {
  const display = options.display ?? target.display;
  const components = path.relative(root, target.absolute).split(path.sep).filter((c) => c !== '');
  if (!HAS_PROC_FD) {
    if (options.createFolders === true) fs.mkdirSync(path.dirname(target.absolute), { recursive: true });
    const fd = fs.openSync(target.absolute, flags | fs.constants.O_NOFOLLOW, options.mode);
    if (fs.realpathSync(target.absolute) !== target.absolute) {
      fs.closeSync(fd);
      throw changedDuringCall(display);
    }
    return fd;
  }
  const openFolder = (at: string): number => {
    try {
      return fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (error) {
      // Linux says ENOTDIR (not ELOOP) for a link opened with O_DIRECTORY | O_NOFOLLOW.
      if (isNodeError(error) && (error.code === 'ELOOP' || (error.code === 'ENOTDIR' && lstatOrUndefined(at)?.isSymbolicLink() === true))) {
        throw changedDuringCall(display);
      }
      throw error;
    }
  };
  let dirFd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    if (components.length === 0) {
      // The root itself (a listing): reopened through its own descriptor.
      return checkedDescriptor(fs.openSync(`${PROC_FD}/${dirFd}`, flags), target.absolute, display);
    }
    for (const component of components.slice(0, -1)) {
      const at = `${PROC_FD}/${dirFd}/${component}`;
      let next: number;
      try {
        next = openFolder(at);
      } catch (error) {
        if (!(isNodeError(error) && error.code === 'ENOENT' && options.createFolders === true)) throw error;
        try {
          fs.mkdirSync(at);
        } catch (mkdirError) {
          if (!isNodeError(mkdirError) || mkdirError.code !== 'EEXIST') throw mkdirError;
        }
        next = openFolder(at);
      }
      fs.closeSync(dirFd);
      dirFd = next;
    }
    const last = `${PROC_FD}/${dirFd}/${components[components.length - 1]!}`;
    let fd: number;
    try {
      fd = fs.openSync(last, flags | fs.constants.O_NOFOLLOW, options.mode);
    } catch (error) {
      // The resolved path has no link in it: a link here was put there after resolution.
      if (isNodeError(error) && (error.code === 'ELOOP' || error.code === 'ENOTDIR') && lstatOrUndefined(last)?.isSymbolicLink() === true) {
        throw changedDuringCall(display);
      }
      throw error;
    }
    return checkedDescriptor(fd, target.absolute, display);
  } finally {
    fs.closeSync(dirFd);
  }
}

/** Keeps `fd` only when the kernel says it is the file at `absolute` (else closes it and refuses). */
function checkedDescriptor(fd: number, absolute: string, display: string): number {
  let real: string;
  try {
    real = fs.readlinkSync(`${PROC_FD}/${fd}`);
  } catch {
    real = '';
  }
  if (real !== absolute) {
    fs.closeSync(fd);
    throw changedDuringCall(display);
  }
  return fd;
}

/** Which tree a file is opened in: the task's workspace, or the overlay's upper folder (Warden's own, in the state folder). */
type Layer = 'workspace' | 'upper';

function readTextFile(root: string, target: ResolvedPath, guard: ProtectedFsGuard, display?: string, layer: Layer = display === undefined ? 'workspace' : 'upper'): string {
  // O_NONBLOCK: a FIFO planted in the workspace must not hang the call; regular files ignore it.
  const fd = openConfined(root, target, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, display === undefined ? {} : { display });
  try {
    const stat = assertNotProtected(fd, display ?? target.display, guard, 'read', layer);
    if (!stat.isFile()) throw capabilityError('ERR_FS_FAILED', 'fs.read: not a regular file');
    if (stat.size > MAX_FILE_BYTES) throw capabilityError('ERR_FS_FAILED', `fs.read: file is ${stat.size} bytes, more than ${MAX_FILE_BYTES}`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The bytes of one workspace file, opened as `fs.read` opens it (confined, no link out, never a
 * protected file, a FIFO refused), for Warden's own checks of committed files (attestation).
 * Reads the workspace itself: `grant.overlay` must be absent. At most `maxBytes`
 * (ERR_FS_FAILED beyond). @throws CapabilityError as `read` does.
 */
export function readConfinedFileBytes(grant: FsGrant, relativePath: unknown, maxBytes: number = MAX_FILE_BYTES): Buffer {
  if (grant.overlay !== undefined) throw capabilityError('ERR_FS_FAILED', 'readConfinedFileBytes reads the workspace itself, not an overlay');
  const guard = guardOf(grant);
  const root = realRootOf(grant.root);
  const target = resolveUnprotected(grant, root, relativePath);
  return withFsErrors(target.display, () => {
    const fd = openConfined(root, target, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const stat = assertNotProtected(fd, target.display, guard, 'read', 'workspace');
      if (!stat.isFile()) throw capabilityError('ERR_FS_FAILED', `${JSON.stringify(target.display)} is not a regular file`, { path: target.display });
      if (stat.size > maxBytes) throw capabilityError('ERR_FS_FAILED', `${JSON.stringify(target.display)} is ${stat.size} bytes, more than ${maxBytes}`, { path: target.display });
      return fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
}

function writeTextFile(root: string, target: ResolvedPath, content: string, guard: ProtectedFsGuard, display?: string, layer: Layer = display === undefined ? 'workspace' : 'upper'): void {
  if (layer === 'workspace') {
    // Before anything is created: a new file under a protected or read-only folder is never made.
    const refusal = guard.refusalOfPath(target.absolute, 'write');
    if (refusal !== undefined) throw protectedRefusal(target.display, refusal);
  }
  // No O_TRUNC at open: a protected file reached under another name must be refused before it changes.
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NONBLOCK;
  const fd = openConfined(root, target, flags, { mode: 0o644, createFolders: true, ...(display === undefined ? {} : { display }) });
  try {
    const stat = assertNotProtected(fd, display ?? target.display, guard, 'write', layer);
    if (!stat.isFile()) throw capabilityError('ERR_FS_FAILED', 'fs.write: not a regular file');
    fs.ftruncateSync(fd, 0);
    fs.writeFileSync(fd, content, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** The listing of the folder `target`, read through a descriptor opened by openConfined; protected entries are left out. */
function listConfined(root: string, target: ResolvedPath, guard: ProtectedFsGuard, display?: string, layer: Layer = display === undefined ? 'workspace' : 'upper'): FsEntry[] {
  const fd = openConfined(root, target, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, display === undefined ? {} : { display });
  try {
    assertNotProtected(fd, display ?? target.display, guard, 'read', layer);
    const folder = HAS_PROC_FD ? `${PROC_FD}/${fd}` : target.absolute;
    return listFolder(folder).filter((entry) => !guard.hidesPath(path.join(target.absolute, entry.name)));
  } finally {
    fs.closeSync(fd);
  }
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
        throw capabilityError('ERR_FS_FAILED', `${name}: a component is not a folder`, { path: displayPath, errno: error.code });
      case 'EACCES':
      case 'EPERM':
        throw capabilityError('ERR_FS_FAILED', `permission denied on ${name}`, { path: displayPath, errno: error.code });
      case 'ENOSPC':
      case 'EDQUOT':
        throw capabilityError('ERR_WORKSPACE_QUOTA', `no room left for ${name}: the task tree's workspace is full (raise limits.workspaceMb in the task file for more)`, { path: displayPath });
      default:
        throw capabilityError('ERR_FS_FAILED', `file system error ${error.code ?? 'unknown'} on ${name}`, { path: displayPath, errno: error.code });
    }
  }
}

export function isNodeError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}
