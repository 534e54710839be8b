/**
 * The overlay's upper folder read as a layer of the kernel's overlay file system, which is what
 * programs and stdio MCP servers in the OS sandbox write through (sandbox/os/): besides files
 * and folders it can hold
 * - **whiteouts**: a character device 0/0 at a path means "deleted" (the program removed a
 *   workspace file or folder, or renamed it away);
 * - **opaque folders**: a folder with the xattr `trusted.overlay.opaque` (or `user.overlay.opaque`
 *   when the overlay was mounted without root) = "y" hides everything the workspace has under it
 *   (the program removed a workspace folder and made a new one of the same name).
 *
 * Invariant: the fs capability, commits and listings read the upper folder through this module
 * only, so a file a program deleted is gone for every later reader, and a commit deletes it in
 * the workspace too. Symbolic links and other special files in the upper folder are reported, not
 * followed; a commit refuses them (Warden commits regular files only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { ToolError } from '../errors';
import { cutText } from '../cut-text';
import { walkBeneath } from './beneath';

/**
 * The deepest and the longest workspace-relative path Warden walks in an overlay (levels below the
 * workspace root; bytes of UTF-8). A program may nest folders past Linux's PATH_MAX (4096 bytes)
 * with relative paths; Warden reads the upper folder by full path (state folder in front), so a
 * tree past these bounds cannot be measured, undone or committed, and is refused instead
 * (workspaceWalkError), never skipped.
 */
export const WORKSPACE_DEPTH_MAX = 128;
export const WORKSPACE_PATH_MAX_BYTES = 2048;

/**
 * Throws ToolError ERR_WORKSPACE_QUOTA when the workspace-relative `relative` is deeper or longer
 * than Warden walks. Walks call it before opening a folder.
 */
export function assertWalkable(relative: string): void {
  const depth = relative === '' ? 0 : relative.split('/').length;
  const bytes = Buffer.byteLength(relative, 'utf8');
  if (depth > WORKSPACE_DEPTH_MAX || bytes > WORKSPACE_PATH_MAX_BYTES) {
    throw new ToolError(
      'ERR_WORKSPACE_QUOTA',
      `the workspace holds a path ${depth} folders and ${bytes} bytes deep (${JSON.stringify(`${cutText(relative, 120)}...`)}), past the ${WORKSPACE_DEPTH_MAX} folders and ${WORKSPACE_PATH_MAX_BYTES} bytes Warden measures, undoes and commits`,
      { details: { depth, bytes, depthMax: WORKSPACE_DEPTH_MAX, pathMaxBytes: WORKSPACE_PATH_MAX_BYTES } },
    );
  }
}

/**
 * The typed failure for a workspace folder a walk cannot read (fails closed: an unread folder
 * would go unmeasured and uncommitted). Names the workspace-relative path only, never the state
 * folder the overlay lives in.
 */
export function workspaceWalkError(relative: string, error: unknown): ToolError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new ToolError('ERR_WORKSPACE_QUOTA', `the workspace folder ${JSON.stringify(relative === '' ? '.' : relative)} cannot be read (${code}), so the workspace cannot be measured or committed`, {
    details: { path: relative === '' ? '.' : relative, cause: code },
  });
}

/** The xattr names the kernel uses for opaque folders (mounted by root / in a user namespace). */
export const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'] as const;

/** A whiteout: a character device with device number 0/0. */
export function isWhiteout(stat: fs.Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}

/** Whether the folder at `absolute` is marked opaque. */
export function isOpaqueFolder(absolute: string): boolean {
  for (const name of OPAQUE_XATTRS) {
    try {
      const value = getAttributeSync(absolute, name);
      if (value !== null && value.toString('utf8') === 'y') return true;
    } catch {
      // attribute absent, or not readable without privileges
    }
  }
  return false;
}

/** Marks a folder of the upper layer opaque, as the kernel would (Warden replacing a whiteout with a folder). */
export function markOpaque(absolute: string): void {
  setAttributeSync(absolute, process.getuid?.() === 0 ? 'trusted.overlay.opaque' : 'user.overlay.opaque', 'y');
}

/** How the upper layer covers one workspace path. */
export type UpperCover =
  /** The upper layer has a regular file there. */
  | { kind: 'file'; absolute: string }
  /** The upper layer has a folder there; `opaque`: the workspace's folder is hidden. */
  | { kind: 'folder'; absolute: string; opaque: boolean }
  /** Deleted: a whiteout at the path or one of its folders, or an opaque folder above it without it. */
  | { kind: 'deleted' }
  /** A symbolic link or device other than a whiteout: refused by every reader. */
  | { kind: 'other'; absolute: string }
  /** The upper layer says nothing: the workspace shows through. */
  | { kind: 'none' };

/**
 * How `upperRoot` covers the workspace-relative `relative` (already confined and canonical,
 * `/`-separated, "." for the root). Walks from the root so a whiteout or opaque folder on the way
 * is seen.
 */
export function coverOf(upperRoot: string, relative: string): UpperCover {
  const parts = relative === '.' ? [] : relative.split('/');
  let current = upperRoot;
  let hiddenAbove = false;
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch {
      // Absent in the upper layer: the workspace shows through unless an opaque folder hides it.
      return hiddenAbove ? { kind: 'deleted' } : { kind: 'none' };
    }
    const last = index === parts.length - 1;
    if (isWhiteout(stat)) return { kind: 'deleted' };
    if (stat.isDirectory()) {
      const opaque = isOpaqueFolder(current);
      if (last) return { kind: 'folder', absolute: current, opaque: opaque || hiddenAbove };
      hiddenAbove = hiddenAbove || opaque;
      continue;
    }
    if (!last) return stat.isFile() ? { kind: 'deleted' } : { kind: 'other', absolute: current };
    return stat.isFile() ? { kind: 'file', absolute: current } : { kind: 'other', absolute: current };
  }
  return { kind: 'folder', absolute: upperRoot, opaque: hiddenAbove };
}

/** Everything an upper layer records, as workspace-relative `/`-separated paths, sorted. */
export interface UpperLayer {
  /** Regular files written. */
  files: string[];
  /** Paths deleted (whiteouts): files or whole folders. */
  deleted: string[];
  /** Folders that hide the workspace's folder of the same path. */
  opaque: string[];
  /** Symbolic links and special files other than whiteouts. */
  other: { path: string; kind: 'symlink' | 'special' }[];
}

/**
 * Reads an upper layer without following links. A missing folder is an empty layer. Throws
 * ToolError ERR_WORKSPACE_QUOTA for a tree past WORKSPACE_DEPTH_MAX / WORKSPACE_PATH_MAX_BYTES or
 * a folder that cannot be read.
 */
export function readUpperLayer(upperRoot: string): UpperLayer {
  const layer: UpperLayer = { files: [], deleted: [], opaque: [], other: [] };
  // Through folder descriptors, never a link: a sandboxed process may be changing the folder now (beneath.ts).
  walkBeneath(
    upperRoot,
    ({ path: rel, stat, folder }) => {
      if (stat.isDirectory()) {
        if (folder !== undefined && isOpaqueFolder(folder)) layer.opaque.push(rel);
      } else if (stat.isFile()) {
        layer.files.push(rel);
      } else if (isWhiteout(stat)) {
        layer.deleted.push(rel);
      } else {
        layer.other.push({ path: rel, kind: stat.isSymbolicLink() ? 'symlink' : 'special' });
      }
    },
    assertWalkable,
    (relative, error) => {
      throw workspaceWalkError(relative, error);
    },
  );
  layer.files.sort();
  layer.deleted.sort();
  layer.opaque.sort();
  return layer;
}
