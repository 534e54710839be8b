/**
 * The programs a sandboxed run may start, when the run names them (`OsSandboxSpec.programs`, what
 * `grants.commands` grants): the folders programs live in (`/usr/bin`, `/usr/sbin`,
 * `/usr/local/bin`, Node's `bin`...) are empty folders holding only those programs, and every
 * other executable file of the shown system (`/usr/lib/jvm/.../java`, `/usr/lib/postgresql/.../psql`,
 * `/usr/lib/llvm-*\/bin/*`...) is masked by an empty non-executable file.
 *
 * What a granted program still gets, so that it works:
 * - the interpreter its `#!` line names (and, for `#!/usr/bin/env X`, both env and X): a script
 *   cannot start without them;
 * - the other files of its Debian package (dpkg), so helpers it re-executes keep working (git's
 *   `/usr/lib/git-core/git-*`);
 * - libraries, data and the dynamic loader (shared objects are not masked).
 *
 * Invariant: nothing else the program could execute is reachable. Files in writable places
 * (`/tmp`, HOME, `/dev/shm`, the workspace) are on `noexec` mounts (the launcher makes them), so a
 * program cannot write an executable and start it either (the kernel also refuses the dynamic
 * loader's `PROT_EXEC` mappings there).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Folders holding programs: shown empty except for the granted programs. */
const PROGRAM_FOLDERS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/games', '/usr/local/games'];
/** Shared objects (`libc.so.6`, `ld-linux-x86-64.so.2`): needed by every program, never masked. */
const SHARED_OBJECT = /\.so(\.|$)/;
const MAX_SCANNED_ENTRIES = 400_000;
const MAX_INTERPRETER_DEPTH = 4;

export interface ProgramView {
  /** bwrap arguments, given after the system's read-only mounts. */
  args: string[];
  /** Every file the run can execute (granted programs, their symlinks, interpreters, package files), host paths. */
  exposed: string[];
}

let scanned: { folders: string[]; executables: string[] } | undefined;

/**
 * The view for `programs` (absolute host paths of granted programs) over the shown `systemFolders`
 * (real folders, e.g. `/usr`, `/etc`, Node's install folder) with `extraProgramFolders` (Node's
 * `bin` when outside `/usr`). Throws TypeError for a relative path. The executable scan of the
 * system folders runs once per process (about a second on a Debian host with a JDK).
 */
export function programView(programs: readonly string[], systemFolders: readonly string[], extraProgramFolders: readonly string[], emptyFile: string): ProgramView {
  for (const program of programs) if (!path.isAbsolute(program)) throw new TypeError(`a granted program must be an absolute path: ${program}`);
  const folders = [...new Set([...PROGRAM_FOLDERS, ...extraProgramFolders])].filter((folder) => isRealFolder(folder) && systemFolders.some((f) => folder === f || folder.startsWith(`${f}/`)));
  scanned ??= { folders, executables: executablesIn(systemFolders, folders) };
  const exposed = closure(programs);
  const allowed = new Set<string>([...exposed.flatMap(realPathsOf), ...packageFilesOf(exposed)]);
  const inProgramFolder = (file: string) => folders.some((folder) => path.dirname(file) === folder);
  const args: string[] = [];
  for (const folder of folders) args.push('--tmpfs', folder);
  for (const file of exposed) {
    if (!inProgramFolder(file)) continue;
    const stat = fs.lstatSync(file);
    if (stat.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(file), file);
    else args.push('--ro-bind', file, file);
  }
  for (const folder of folders) args.push('--remount-ro', folder);
  args.push(...maskArgs(scanned.executables, allowed, emptyFile));
  return { args, exposed };
}

/**
 * Masks for every executable not `allowed`: a folder of programs (two or more, no shared object
 * beside them, nothing allowed inside: `/usr/lib/jvm/<jdk>/bin`, `/usr/lib/postgresql/<v>/bin`)
 * is covered as a whole by an empty folder, the rest one file at a time (each mask is a mount,
 * and a few hundred of them cost a run about 0.3 s).
 */
function maskArgs(executables: readonly string[], allowed: ReadonlySet<string>, emptyFile: string): string[] {
  const byFolder = new Map<string, string[]>();
  for (const file of executables) {
    if (allowed.has(file)) continue;
    const folder = path.dirname(file);
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), file]);
  }
  const allowedList = [...allowed];
  const wholeFolders = [...byFolder.entries()]
    .filter(([folder, files]) => files.length >= 2 && !holdsSharedObjects(folder) && !allowedList.some((file) => file.startsWith(`${folder}/`)))
    .map(([folder]) => folder)
    .sort();
  const covered: string[] = [];
  for (const folder of wholeFolders) if (!covered.some((outer) => folder.startsWith(`${outer}/`))) covered.push(folder);
  const under = (file: string) => covered.some((folder) => file.startsWith(`${folder}/`));
  const args: string[] = [];
  for (const folder of covered) args.push('--ro-bind', emptyFolder(), folder);
  for (const [, files] of byFolder) for (const file of files) if (!under(file)) args.push('--ro-bind', emptyFile, file);
  return args;
}

function holdsSharedObjects(folder: string): boolean {
  try {
    return fs.readdirSync(folder).some((name) => SHARED_OBJECT.test(name));
  } catch {
    return true;
  }
}

let empty: string | undefined;

/** An empty read-only folder of this process's own, to cover folders of programs with. */
function emptyFolder(): string {
  if (empty === undefined) {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-programs-'));
    empty = path.join(folder, 'empty');
    fs.mkdirSync(empty, { mode: 0o555 });
    process.once('exit', () => fs.rmSync(folder, { recursive: true, force: true }));
  }
  return empty;
}

/** The programs, every symlink on the way to their files, and the interpreters their `#!` lines need. */
function closure(programs: readonly string[]): string[] {
  const found = new Set<string>();
  const visit = (file: string, depth: number) => {
    if (found.has(file) || depth > MAX_INTERPRETER_DEPTH) return;
    let current = file;
    for (let hops = 0; hops < 40; hops += 1) {
      const stat = lstatOrUndefined(current);
      if (stat === undefined) return;
      found.add(current);
      if (!stat.isSymbolicLink()) break;
      current = path.resolve(path.dirname(current), fs.readlinkSync(current));
    }
    for (const interpreter of interpretersOf(current)) visit(interpreter, depth + 1);
  };
  for (const program of programs) visit(program, 0);
  return [...found];
}

/** `#!/bin/sh` → [/bin/sh]; `#!/usr/bin/env node` → [/usr/bin/env, <node on the system PATH>]. */
export function interpretersOf(file: string): string[] {
  let head: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(256);
      head = buffer.subarray(0, fs.readSync(fd, buffer, 0, 256, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  if (!head.startsWith('#!')) return [];
  const words = head.slice(2).split('\n')[0]!.trim().split(/\s+/);
  const interpreter = words[0];
  if (interpreter === undefined || !path.isAbsolute(interpreter)) return [];
  if (path.basename(interpreter) !== 'env') return [interpreter];
  const name = words.slice(1).find((word) => !word.startsWith('-'));
  if (name === undefined || name.includes('/')) return [interpreter];
  const onPath = PROGRAM_FOLDERS.map((folder) => path.join(folder, name)).find((candidate) => lstatOrUndefined(candidate) !== undefined);
  return onPath === undefined ? [interpreter] : [interpreter, onPath];
}

const packageFilesCache = new Map<string, string[]>();

/** Files of the Debian packages the exposed files belong to (none without dpkg); cached per set. */
function packageFilesOf(exposed: readonly string[]): string[] {
  const real = [...new Set(exposed.flatMap(realPathsOf))].sort();
  const key = real.join('\n');
  let files = packageFilesCache.get(key);
  if (files === undefined) {
    files = queryPackageFiles(real);
    packageFilesCache.set(key, files);
  }
  return files;
}

function queryPackageFiles(real: readonly string[]): string[] {
  const owners = spawnSync('dpkg-query', ['--search', ...real], { encoding: 'utf8' });
  if (owners.error !== undefined) return [];
  const packages = new Set<string>();
  for (const line of owners.stdout.split('\n')) {
    const match = /^([^:\s,]+(?::[a-z0-9]+)?(?:, [^:\s,]+)*): \//.exec(line);
    if (match !== null) for (const name of match[1]!.split(', ')) packages.add(name);
  }
  if (packages.size === 0) return [];
  const listed = spawnSync('dpkg-query', ['--listfiles', ...packages], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return listed.stdout.split('\n').filter((line) => line.startsWith('/')).flatMap(realPathsOf);
}

/** The path itself and its real path (Debian's merged /usr: /bin/sh is /usr/bin/sh). */
function realPathsOf(file: string): string[] {
  try {
    const real = fs.realpathSync(file);
    return real === file ? [file] : [file, real];
  } catch {
    return [file];
  }
}

/**
 * Executable files of `roots` outside `programFolders` that are programs: ELF files (not shared
 * objects). Scripts need an interpreter, which is itself either masked or granted.
 */
function executablesIn(roots: readonly string[], programFolders: readonly string[]): string[] {
  const found: string[] = [];
  const skip = new Set(programFolders);
  let count = 0;
  const visit = (folder: string) => {
    if (skip.has(folder)) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      count += 1;
      if (count > MAX_SCANNED_ENTRIES) return;
      const absolute = path.join(folder, entry.name);
      if (entry.isDirectory()) visit(absolute);
      else if (entry.isFile() && !SHARED_OBJECT.test(entry.name) && isExecutableElf(absolute)) found.push(absolute);
    }
  };
  for (const root of roots) visit(root);
  return found;
}

function isExecutableElf(file: string): boolean {
  try {
    if ((fs.statSync(file).mode & 0o111) === 0) return false;
    const fd = fs.openSync(file, 'r');
    try {
      const magic = Buffer.alloc(4);
      return fs.readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\u007fELF';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

function isRealFolder(folder: string): boolean {
  const stat = lstatOrUndefined(folder);
  return stat !== undefined && stat.isDirectory();
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}
