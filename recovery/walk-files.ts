/** Lists the regular files under a folder without following symbolic links. */
import * as fsp from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { assertWalkable, workspaceWalkError } from './overlay-layer';

export interface WalkOptions {
  /** Absolute real paths of folders to leave out (e.g. the state folder inside a workspace). */
  exclude?: readonly string[];
  /** What to do with anything that is not a regular file or a folder: skip it, or call `onOther` (which may throw). */
  onOther?: (relativePath: string, kind: 'symlink' | 'special') => void;
  /** Most files returned; more is an error from `onTooMany`. */
  maxFiles?: number;
  onTooMany?: (count: number) => never;
}

/**
 * `/`-separated paths of the regular files under `root`, sorted. A missing `root` has none. Throws
 * ToolError ERR_WORKSPACE_QUOTA for a tree past the walk bounds (recovery/overlay-layer.ts,
 * assertWalkable) or a folder that cannot be read, naming the path relative to `root`.
 */
export async function walkFiles(root: string, options: WalkOptions = {}): Promise<string[]> {
  const files: string[] = [];
  const exclude = new Set(options.exclude ?? []);
  const visit = async (folder: string): Promise<void> => {
    const folderRel = relative(root, folder).split(sep).join('/');
    assertWalkable(folderRel);
    let entries;
    try {
      entries = await fsp.readdir(folder, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && folder === root) return;
      throw workspaceWalkError(folderRel, error);
    }
    for (const entry of entries) {
      const absolute = join(folder, entry.name);
      const rel = relative(root, absolute).split(sep).join('/');
      if (entry.isDirectory()) {
        if (!exclude.has(absolute)) await visit(absolute);
      } else if (entry.isFile()) {
        files.push(rel);
        if (options.maxFiles !== undefined && files.length > options.maxFiles) options.onTooMany?.(files.length);
      } else {
        options.onOther?.(rel, entry.isSymbolicLink() ? 'symlink' : 'special');
      }
    }
  };
  await visit(root);
  return files.sort();
}
