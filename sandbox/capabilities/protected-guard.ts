/**
 * Warden's own resources, checked against what a call actually opens.
 *
 * One notion, used by every way a task reaches files: the fs capability (each descriptor it
 * opens), the SQL capability (the database file SQLite opened), the OS sandbox (the workspace it
 * mounts) and the checks when a task is loaded or begins (worker/warden-resources.ts). What is
 * protected:
 * - `folders`: nothing at or under them is opened, and no workspace contains or lies in them (the
 *   state folder, caches, the approvers' key folder, the custody witness, kernel file systems);
 * - `files`: never opened under any name (key files, key sources, credential stores, pinned keys);
 * - `readOnly`: opened for reading only, never written (the task file and the policy packs in
 *   use: the agent's controls; a workspace may hold them, the agent may not change them).
 *
 * Invariant: identity is the file system's, not the path's: a protected item is matched by device
 * and inode (so a hard link, a bind mount or a second path to it is the same item), the file or
 * folder checked is the open descriptor (its real path comes from the kernel, /proc/self/fd), and
 * anything on a kernel file system (procfs, sysfs, devtmpfs, cgroupfs, debugfs, ...) is refused by
 * the file system's type, wherever it is mounted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A protected path: absolute, and what it is (for messages). */
export interface ProtectedEntry {
  path: string;
  what?: string;
}

/** What no call may touch (absolute paths; they need not exist). */
export interface ProtectedSet {
  folders: readonly (string | ProtectedEntry)[];
  files: readonly (string | ProtectedEntry)[];
  readOnly?: readonly (string | ProtectedEntry)[];
}

export type Access = 'read' | 'write';

/** Why something may not be opened: which protected item it is, and how it relates to it. */
export interface Refusal {
  what: string;
  path: string;
  /** `is` the item, lies `inside` it, or `contains` it (a folder used as a whole). */
  relation: 'is' | 'inside' | 'contains';
}

export interface ProtectedGuard {
  /** Why the open descriptor `fd` may not be used for `access`, or undefined. */
  refusalOfDescriptor(fd: number, access: Access): Refusal | undefined;
  /** Why the descriptor's own file may not be used for `access` (protected files, read-only items), ancestors not considered. */
  refusalOfFileIdentity(fd: number, access: Access): Refusal | undefined;
  /** Why the existing real path `absolute` may not be used for `access`, or undefined. */
  refusalOfPath(absolute: string, access: Access): Refusal | undefined;
  /**
   * Why the folder `root` (a real path) may not be handed over as a whole (a workspace, a mount):
   * it is or lies in a protected folder or a kernel file system, or contains a protected folder or
   * file (by device and inode of each of their ancestors, and by path for ones not made yet).
   * Read-only items inside it are allowed: `readOnlyInside` lists them for the caller to cover.
   */
  refusalOfFolder(root: string): Refusal | undefined;
  /** Read-only items at or under the real folder `root`, as real paths. */
  readOnlyInside(root: string): string[];
  /** True when `absolute` is a protected folder or file by path (listings leave such entries out). */
  hidesPath(absolute: string): boolean;
}

/**
 * Kernel file systems by `statfs` type (linux/magic.h): what they hold is the kernel's and the
 * worker's (environment, memory, keys of other processes), never a task's files. devtmpfs shares
 * tmpfs's number, so `/dev` is also protected by path.
 */
export const KERNEL_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroupfs'],
  [0x63677270, 'cgroup2fs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpffs'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x6165676c, 'pstore'],
  [0x42494e4d, 'binfmt_misc'],
  [0x65735543, 'fusectl'],
  [0x6e736673, 'nsfs'],
  [0x19800202, 'mqueue'],
]);

/** Folders that are kernel file systems on every Linux machine, protected by path as well as by type. */
export const KERNEL_FOLDERS: readonly string[] = ['/proc', '/sys', '/dev'];

const PROC_FD = '/proc/self/fd';

function entryOf(item: string | ProtectedEntry, what: string): Required<ProtectedEntry> {
  return typeof item === 'string' ? { path: item, what } : { path: item.path, what: item.what ?? what };
}

function idOf(stat: fs.Stats | fs.BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

function statId(absolute: string): string | undefined {
  try {
    return idOf(fs.statSync(absolute));
  } catch {
    return undefined;
  }
}

/** The kernel file system `absolute` (or `/proc/self/fd/<n>`) lives on, or undefined. */
export function kernelFileSystemOf(absolute: string): string | undefined {
  try {
    return KERNEL_FILE_SYSTEMS.get(Number(fs.statfsSync(absolute).type));
  } catch {
    return undefined;
  }
}

function isPathInside(folder: string, candidate: string): boolean {
  if (candidate === folder) return true;
  return candidate.startsWith(folder.endsWith('/') ? folder : `${folder}/`);
}

/** The real path of `absolute`, or of its nearest existing ancestor joined with the rest. */
function realish(absolute: string): string {
  try {
    return fs.realpathSync(absolute);
  } catch {
    const parent = path.dirname(absolute);
    return parent === absolute ? absolute : path.join(realish(parent), path.basename(absolute));
  }
}

/** A guard over `set`. Identities are looked up once per guard (make one per call: keys rotate). */
export function createProtectedGuard(set: ProtectedSet): ProtectedGuard {
  const folders = [...set.folders.map((f) => entryOf(f, "Warden's own state")), ...KERNEL_FOLDERS.map((p) => ({ path: p, what: 'a kernel file system' }))];
  const files = set.files.map((f) => entryOf(f, "a Warden key file"));
  const readOnly = (set.readOnly ?? []).map((f) => entryOf(f, "the task's own controls (task file, policy pack)"));
  let ids: { folders: Map<string, Required<ProtectedEntry>>; files: Map<string, Required<ProtectedEntry>>; readOnly: Map<string, Required<ProtectedEntry>> } | undefined;
  // Real paths too, for items reached through links (the protected path itself may be a link).
  const realFolders = folders.map((f) => ({ ...f, real: realish(f.path) }));
  const realFiles = files.map((f) => ({ ...f, real: realish(f.path) }));
  const realReadOnly = readOnly.map((f) => ({ ...f, real: realish(f.path) }));

  const identities = () => {
    if (ids === undefined) {
      const index = (entries: Required<ProtectedEntry>[]) => {
        const map = new Map<string, Required<ProtectedEntry>>();
        for (const entry of entries) {
          const id = statId(entry.path);
          if (id !== undefined && !map.has(id)) map.set(id, entry);
        }
        return map;
      };
      ids = { folders: index(folders), files: index(files), readOnly: index(readOnly) };
    }
    return ids;
  };

  /** The protected folder (or read-only item, for writes) that `real` is or lies in, by identity of each ancestor. */
  const ancestorRefusal = (real: string, access: Access, self: boolean): Refusal | undefined => {
    const { folders: folderIds, readOnly: readOnlyIds } = identities();
    for (let current = real, first = true; ; first = false) {
      const id = statId(current);
      if (id !== undefined) {
        const folder = folderIds.get(id);
        if (folder !== undefined) return { what: folder.what, path: folder.path, relation: first && self ? 'is' : 'inside' };
        const control = access === 'write' ? readOnlyIds.get(id) : undefined;
        if (control !== undefined) return { what: control.what, path: control.path, relation: first && self ? 'is' : 'inside' };
      }
      const parent = path.dirname(current);
      if (parent === current) return undefined;
      current = parent;
    }
  };

  const byPath = (real: string, access: Access): Refusal | undefined => {
    for (const folder of realFolders) if (isPathInside(folder.real, real)) return { what: folder.what, path: folder.path, relation: real === folder.real ? 'is' : 'inside' };
    for (const file of realFiles) if (real === file.real) return { what: file.what, path: file.path, relation: 'is' };
    if (access === 'write') for (const control of realReadOnly) if (isPathInside(control.real, real)) return { what: control.what, path: control.path, relation: real === control.real ? 'is' : 'inside' };
    return undefined;
  };

  const check = (real: string, id: string, fsTypeAt: string, access: Access): Refusal | undefined => {
    const kernel = kernelFileSystemOf(fsTypeAt);
    if (kernel !== undefined) return { what: `a kernel file system (${kernel})`, path: real, relation: 'inside' };
    const { files: fileIds, readOnly: readOnlyIds } = identities();
    const file = fileIds.get(id);
    if (file !== undefined) return { what: file.what, path: file.path, relation: 'is' };
    if (access === 'write') {
      const control = readOnlyIds.get(id);
      if (control !== undefined) return { what: control.what, path: control.path, relation: 'is' };
    }
    return byPath(real, access) ?? ancestorRefusal(real, access, true);
  };

  return {
    refusalOfDescriptor(fd, access) {
      const stat = fs.fstatSync(fd);
      let real: string;
      try {
        real = fs.readlinkSync(`${PROC_FD}/${fd}`);
      } catch {
        // Without /proc (not Linux) the identity checks still hold; ancestors are not walked.
        const { files: fileIds } = identities();
        const file = fileIds.get(idOf(stat));
        return file === undefined ? undefined : { what: file.what, path: file.path, relation: 'is' };
      }
      return check(real, idOf(stat), `${PROC_FD}/${fd}`, access);
    },
    refusalOfFileIdentity(fd, access) {
      const id = idOf(fs.fstatSync(fd));
      const { files: fileIds, readOnly: readOnlyIds } = identities();
      const hit = fileIds.get(id) ?? (access === 'write' ? readOnlyIds.get(id) : undefined);
      return hit === undefined ? undefined : { what: hit.what, path: hit.path, relation: 'is' };
    },
    refusalOfPath(absolute, access) {
      let real: string;
      let id: string;
      try {
        real = fs.realpathSync(absolute);
        id = idOf(fs.statSync(real));
      } catch {
        return byPath(realish(absolute), access);
      }
      return check(real, id, real, access);
    },
    refusalOfFolder(root) {
      const real = realish(root);
      const exists = statId(real) !== undefined;
      if (exists) {
        const kernel = kernelFileSystemOf(real);
        if (kernel !== undefined) return { what: `a kernel file system (${kernel})`, path: real, relation: 'inside' };
      }
      const inside = byPath(real, 'read') ?? (exists ? ancestorRefusal(real, 'read', true) : undefined);
      if (inside !== undefined) return inside;
      const rootId = exists ? statId(real) : undefined;
      for (const item of [...realFolders, ...realFiles]) {
        if (isPathInside(real, item.real)) return { what: item.what, path: item.path, relation: 'contains' };
        if (rootId === undefined || statId(item.path) === undefined) continue;
        // A second way into the item (a bind mount of the workspace, a folder renamed since): its ancestors' identities.
        for (let current = path.dirname(item.real); ; ) {
          if (statId(current) === rootId) return { what: item.what, path: item.path, relation: 'contains' };
          const parent = path.dirname(current);
          if (parent === current) break;
          current = parent;
        }
      }
      return undefined;
    },
    readOnlyInside(root) {
      const real = realish(root);
      return realReadOnly.filter((c) => isPathInside(real, c.real) && statId(c.real) !== undefined).map((c) => c.real);
    },
    hidesPath(absolute) {
      return realFolders.some((f) => f.path === absolute || f.real === absolute) || realFiles.some((f) => f.path === absolute || f.real === absolute);
    },
  };
}

/** "notes.txt is Warden's state folder (/x/.warden)" style wording of a refusal. */
export function describeRefusal(subject: string, refusal: Refusal): string {
  switch (refusal.relation) {
    case 'is':
      return `${subject} is ${refusal.what} (${refusal.path})`;
    case 'inside':
      return `${subject} is inside ${refusal.what} (${refusal.path})`;
    case 'contains':
      return `${subject} contains ${refusal.what} (${refusal.path})`;
  }
}
