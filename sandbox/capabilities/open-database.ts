/**
 * Opens a granted SQLite database for one call, checked against Warden's own resources on the
 * file SQLite actually opened, not on the path the grant names.
 *
 * Why: the path is resolved again at every open, and whoever can write the folder a database sits
 * in can swap it for a link (to the credential store, a key file, /proc/self/environ) after the
 * task began. SQLite resolves links itself, so the check runs on descriptors:
 * 1. the path is resolved to its real path and that file is opened (O_NOFOLLOW) and checked
 *    (protected-guard.ts: device and inode, every ancestor folder, kernel file systems, and for
 *    `exec` the task's read-only controls);
 * 2. SQLite opens the same real path (it opens its own files with O_NOFOLLOW; links in the folders
 *    above are what could still change);
 * 3. every regular file the process gained during that open (SQLite's descriptor) is checked
 *    again: one that is protected, or none being the file checked in step 1, means the tree
 *    changed in between, and the connection is closed before a statement runs.
 * Journal files next to the database (`-wal`, `-shm`, `-journal`) that are links or protected files
 * are refused too (SQLite would open them by name later).
 */
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { capabilityError } from './capability-error';
import { createProtectedGuard, describeRefusal, type Access, type Refusal } from './protected-guard';

const PROC_FD = '/proc/self/fd';
const SIDE_FILES = ['-wal', '-shm', '-journal'];

export interface DatabaseOpenGrant {
  protectedPaths?: readonly string[];
  protectedFiles?: readonly string[];
  readOnlyPaths?: readonly string[];
}

function refused(database: string, refusal: Refusal) {
  return capabilityError('ERR_RESOURCE_PROTECTED', `database ${JSON.stringify(database)} is not opened: ${describeRefusal('the file it names', refusal)}`, { database });
}

function changed(database: string) {
  return capabilityError('ERR_RESOURCE_PROTECTED', `database ${JSON.stringify(database)} is not opened: its file changed while it was being opened`, { database });
}

/** Regular files open in this process now: descriptor number -> `dev:ino` (undefined without /proc). */
function openRegularFiles(): Map<string, string> | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(PROC_FD);
  } catch {
    return undefined;
  }
  const files = new Map<string, string>();
  for (const name of names) {
    try {
      const stat = fs.statSync(`${PROC_FD}/${name}`);
      if (stat.isFile()) files.set(name, `${stat.dev}:${stat.ino}`);
    } catch {
      // closed meanwhile (the readdir's own descriptor, another call's)
    }
  }
  return files;
}

/**
 * The SQLite connection to `file` (granted as `database`), refused with ERR_RESOURCE_PROTECTED when
 * the file opened is one of Warden's own (see the module comment); ERR_SQL_FAILED when it cannot be
 * opened at all. The caller closes it.
 */
export function openUnprotected(grant: DatabaseOpenGrant, database: string, file: string, readonly: boolean, timeoutMs: number): Database.Database {
  const guard = createProtectedGuard({ folders: grant.protectedPaths ?? [], files: grant.protectedFiles ?? [], readOnly: grant.readOnlyPaths ?? [] });
  const access: Access = readonly ? 'read' : 'write';
  const cannotOpen = () => capabilityError('ERR_SQL_FAILED', `database ${JSON.stringify(database)} cannot be opened`, { database });
  let real: string;
  let checked: number;
  try {
    real = fs.realpathSync(file);
    checked = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    throw cannotOpen();
  }
  try {
    const refusal = guard.refusalOfDescriptor(checked, access);
    if (refusal !== undefined) throw refused(database, refusal);
    const stat = fs.fstatSync(checked);
    if (!stat.isFile()) throw cannotOpen();
    const id = `${stat.dev}:${stat.ino}`;
    for (const suffix of SIDE_FILES) {
      let side: fs.Stats;
      try {
        side = fs.lstatSync(`${real}${suffix}`);
      } catch {
        continue;
      }
      const sideRefusal = side.isSymbolicLink() ? undefined : guard.refusalOfPath(`${real}${suffix}`, access);
      if (side.isSymbolicLink() || sideRefusal !== undefined) {
        throw capabilityError('ERR_RESOURCE_PROTECTED', `database ${JSON.stringify(database)} is not opened: its journal file ${real}${suffix} is ${side.isSymbolicLink() ? 'a symbolic link' : sideRefusal!.what}`, { database });
      }
    }
    const before = openRegularFiles();
    let db: Database.Database;
    try {
      db = new Database(real, { readonly, fileMustExist: true, timeout: timeoutMs });
    } catch {
      throw cannotOpen();
    }
    try {
      assertOpenedTheCheckedFile(database, real, id, before, guard, access);
    } catch (error) {
      db.close();
      throw error;
    }
    return db;
  } finally {
    fs.closeSync(checked);
  }
}

function assertOpenedTheCheckedFile(database: string, real: string, id: string, before: Map<string, string> | undefined, guard: ReturnType<typeof createProtectedGuard>, access: Access): void {
  const after = before === undefined ? undefined : openRegularFiles();
  const gained = after === undefined ? [] : [...after].filter(([fd, fileId]) => before!.get(fd) !== fileId);
  for (const [fd] of gained) {
    let refusal: Refusal | undefined;
    try {
      refusal = guard.refusalOfDescriptor(Number(fd), access);
    } catch {
      continue; // closed meanwhile: not SQLite's
    }
    if (refusal !== undefined) throw refused(database, refusal);
  }
  if (gained.some(([, fileId]) => fileId === id)) return;
  // No new descriptor of the checked file: SQLite reused one it held for that inode, or there is no
  // /proc. Then the path must still name the checked file.
  let now: fs.Stats;
  try {
    now = fs.statSync(real);
  } catch {
    throw changed(database);
  }
  if (fs.realpathSync(real) !== real || `${now.dev}:${now.ino}` !== id || gained.length > 0) throw changed(database);
}
