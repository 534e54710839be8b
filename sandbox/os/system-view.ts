/**
 * The host system as a sandboxed program sees it: the folders that hold programs and libraries,
 * read-only, and nothing else of the host (no /root, /home, /var, /srv, /work, /tmp, /run, /sys).
 *
 * Invariant: a sandboxed process runs as the host's Warden user (root on CI) mapped to an
 * unprivileged id, so it would be the *owner* of root-only files. Every entry under /etc that an
 * ordinary user could not read (shadow files, private TLS keys, SSH host keys, database configs)
 * is therefore masked with an empty file or folder: inside, the sandbox reads only what any
 * unprivileged user of the host could.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Top-level host folders shown read-only when they exist (symlinks are recreated as symlinks). */
const SYSTEM_FOLDERS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];
/** Folders scanned for entries an unprivileged user could not read. */
const MASKED_SCAN_ROOTS = ['/etc'];
const MAX_SCANNED_ENTRIES = 50_000;

export interface SystemView {
  /** bwrap arguments mounting the read-only system. */
  args: string[];
  /** bwrap arguments masking root-only entries of the sandbox's fresh /proc (given after `--proc /proc`). */
  procMasks: string[];
  /** Folders put on PATH inside, in order. */
  path: string[];
  /** The host folders shown read-only (real folders, not symlinks). */
  shown: string[];
  /** Node's `bin` folder when it lies outside the shown system folders' program folders. */
  nodeBin: string;
  /** An empty read-only file to mask files with. */
  emptyFile: string;
}

let cached: SystemView | undefined;

/** The read-only system mounts (computed once per process: /etc is scanned for masks). */
export function systemView(): SystemView {
  cached ??= buildSystemView();
  return cached;
}

function buildSystemView(): SystemView {
  const args: string[] = [];
  const shown: string[] = [];
  for (const folder of SYSTEM_FOLDERS) {
    const stat = lstatOrUndefined(folder);
    if (stat === undefined) continue;
    if (stat.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(folder), folder);
    else if (stat.isDirectory()) {
      args.push('--ro-bind', folder, folder);
      shown.push(folder);
    }
  }
  // Node itself may live outside /usr (nvm, a tarball under /opt): show its install folder.
  const nodePrefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  const nodeBin = path.join(nodePrefix, 'bin');
  if (!shown.some((f) => nodePrefix === f || nodePrefix.startsWith(`${f}/`))) {
    args.push('--ro-bind', nodePrefix, nodePrefix);
    shown.push(nodePrefix);
  }
  const empty = emptyFile();
  for (const root of MASKED_SCAN_ROOTS) {
    if (!shown.includes(root)) continue;
    for (const { absolute, folder } of unreadableEntries(root)) {
      if (folder) args.push('--tmpfs', absolute, '--remount-ro', absolute);
      else args.push('--ro-bind', empty, absolute);
    }
  }
  const procMasks: string[] = [];
  for (const { absolute, folder } of unreadableProcEntries()) {
    if (folder) procMasks.push('--tmpfs', absolute, '--remount-ro', absolute);
    else procMasks.push('--ro-bind', empty, absolute);
  }
  const pathFolders = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  if (!pathFolders.includes(nodeBin)) pathFolders.push(nodeBin);
  return { args, procMasks, path: pathFolders, shown, nodeBin, emptyFile: empty };
}

/** Entries under `root` that "others" may not read (files) or enter (folders); their contents are not visited. */
export function unreadableEntries(root: string): { absolute: string; folder: boolean }[] {
  const found: { absolute: string; folder: boolean }[] = [];
  let scanned = 0;
  const visit = (folder: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      scanned += 1;
      if (scanned > MAX_SCANNED_ENTRIES) return;
      const absolute = path.join(folder, entry.name);
      const stat = lstatOrUndefined(absolute);
      if (stat === undefined || stat.isSymbolicLink()) continue;
      const others = stat.mode & 0o007;
      if (stat.isDirectory()) {
        if ((others & 0o005) !== 0o005) found.push({ absolute, folder: true });
        else visit(absolute);
      } else if ((others & 0o004) === 0) {
        found.push({ absolute, folder: false });
      }
    }
  };
  visit(root);
  return found;
}

/** /proc entries that are not the kernel's view of processes, nor covered read-only as a whole. */
const PROC_SKIPPED = new Set(['self', 'thread-self', 'sys', 'sysrq-trigger']);

/**
 * Root-only entries of /proc (`slabinfo`, `timer_list`, `vmallocinfo`, `pagetypeinfo`, `kmsg`,
 * `kpage*`, `tty/driver`, ...): mode bits are all the kernel checks for most of them, and the
 * sandbox's user owns them (it is the host's Warden user in a user namespace). Per-process folders
 * are left out: the sandbox's PID namespace shows only its own processes.
 */
export function unreadableProcEntries(procRoot = '/proc'): { absolute: string; folder: boolean }[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(procRoot, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: { absolute: string; folder: boolean }[] = [];
  for (const entry of entries) {
    if (/^\d+$/.test(entry.name) || PROC_SKIPPED.has(entry.name)) continue;
    const absolute = path.join(procRoot, entry.name);
    const stat = lstatOrUndefined(absolute);
    if (stat === undefined || stat.isSymbolicLink()) continue;
    if (stat.isDirectory()) {
      if ((stat.mode & 0o005) !== 0o005) found.push({ absolute, folder: true });
      else found.push(...unreadableEntries(absolute));
    } else if ((stat.mode & 0o004) === 0) {
      found.push({ absolute, folder: false });
    }
  }
  return found;
}

/** An empty read-only file to mask files with, in a folder of this process's own. */
function emptyFile(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-sandbox-'));
  const file = path.join(folder, 'empty');
  fs.writeFileSync(file, '', { mode: 0o444, flag: 'wx' });
  process.once('exit', () => fs.rmSync(folder, { recursive: true, force: true }));
  return file;
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}
