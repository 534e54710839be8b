/**
 * A V8 code cache for the CommonJS modules a `warden` process loads (issue 17: `warden run`'s start-up).
 *
 * Node 20 has no `module.enableCompileCache` (Node 22.1+), so each process parses and compiles
 * again the ~1,300 modules `warden run` loads (the Temporal SDK, OpenTelemetry, zod...): about a
 * quarter of their load time. Installed by bin/warden.js for a build (the sources run through tsx
 * are not cached), each module is compiled here with `vm.Script` and the V8 data a former process
 * of the same build left, and the data of modules compiled anew is written when the process exits
 * (or, for a thread, when `saveModuleCodeCache` is called).
 *
 * Invariant: cached data is code (V8 runs what it holds, whatever the module's source now says), so
 * it is used only
 * - from a file and a folder this user owns that nobody else may write, reached through folders
 *   (as named and as resolved) that only this user or root can change,
 * - whose header names exactly this Warden build, Node, V8 and platform (never across versions),
 * - for a module whose source has the length and CRC-32 recorded with the data,
 * - when the data has its recorded CRC-32 (a torn, truncated or corrupt file is ignored and rewritten).
 * V8 checks its own version and flags too and may still reject the data: the module is then
 * compiled from its source, as without the cache. A module the cache cannot compile as CommonJS
 * (an ES module reached through `require`, or a syntax error) goes to Node's own loader, which
 * decides and reports; so do a module that may call `import()` and everything with source maps on.
 *
 * Not the `v8-compile-cache` package: it compiles an ES module reached through `require` (jose 6)
 * as CommonJS and fails, keeps its cache in the shared temporary folder, stops saving for good
 * once a killed process left its lock file, and checks no data for corruption.
 *
 * Where each `require` led is kept too (a folder and a request, and the file Node resolved them
 * to): Node's resolution (package.json scopes and exports, extensions, real paths, a stat per
 * candidate) was ~20% of `warden run`'s module loading, and Node caches it only within a process.
 * A resolution is kept only when the requiring module and the file both lie in folders whose layout
 * changes only with something the cache watches: the package's own folder outside node_modules
 * (`root`: its layout is the build's, pinned by the build in the key), or a node_modules tree npm
 * keeps its record of (the hidden lockfile `node_modules/.package-lock.json`, rewritten by every
 * npm install, update or removal there). Each lockfile's identity (inode, size, modification time)
 * is saved with the resolutions; when any differs the next process drops them all and resolves
 * anew. A tree laid out by hand or by another package manager (no such lockfile) is resolved by
 * Node each time; so is `require.resolve` with options, and the main module. A resolution names
 * the code that runs, as cached data is code: both are kept in the same private file, read only
 * under the same checks.
 *
 * This module imports Node built-ins and two modules that import nothing else (cache-dir.ts,
 * env-switch.ts) only: bin/warden.js loads it before anything else.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { Module } from 'node:module';
import { basename, delimiter, dirname, join, parse, resolve, sep } from 'node:path';
import { Script, type ScriptOptions } from 'node:vm';
import { threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { defaultCacheDir } from '../cache-dir';
import { switchedOff } from '../env-switch';

/** The parts of a CommonJS module and of `Module` this cache uses that @types/node does not declare. */
interface LoadingModule {
  exports: unknown;
  require(id: string): unknown;
}
interface ModuleInternals {
  prototype: { _compile(this: LoadingModule, content: string, filename: string, format?: string): unknown };
  wrap(source: string): string;
  _resolveFilename(request: string, parent: LoadingModule, isMain: boolean, options?: unknown): string;
  _resolveLookupPaths(request: string, parent: LoadingModule): string[] | null;
  _extensions: unknown;
  _cache: unknown;
}
const NodeModule = Module as unknown as ModuleInternals;

export interface ModuleCodeCacheOptions {
  /** What identifies this Warden build exactly (version and build time): data of another build is never used. */
  build: string;
  /** Which kind of process or thread this is (`cli`, `workflow-thread`): each keeps its own file. */
  role: string;
  /** Save when the process exits (a thread saves by calling `saveModuleCodeCache`). */
  saveOnExit?: boolean;
  /**
   * The package's own folder (bin/warden.js's parent): outside its node_modules, only a build
   * changes what is there, so resolutions from and into it are kept (see the module comment).
   */
  root?: string;
}

/** How many modules came from the cache, and how many were compiled from their source. */
export interface ModuleCodeCacheStats {
  fromCache: number;
  compiled: number;
}

/** An entry of the file's header: where the data is in the blob, and what it was made from. */
type Entry = [offset: number, length: number, sourceLength: number, sourceCrc: number, dataCrc: number];
/** A hidden lockfile's identity when the resolutions were kept: inode, size, modification time (ms). */
type TreeStamp = [ino: number, size: number, mtimeMs: number];
interface Header {
  key: string;
  entries: Record<string, Entry>;
  /** `<requiring module's folder>\0<request>` → the file Node resolved it to. */
  resolutions?: Record<string, string>;
  /** Each hidden lockfile the resolutions depend on (path → its identity then). */
  trees?: Record<string, TreeStamp>;
}

const MAGIC = 'WCC1';
/** `import(` as a module's source may call it (also in a comment or a string: such a module is only not cached). */
const DYNAMIC_IMPORT = /\bimport\s*\(/;
/** Folders of other builds' caches are removed once this old (a second installation in use keeps its own). */
const STALE_AFTER_MS = 7 * 24 * 3600_000;

/** A script compiled from its source, whose data the next save may write: `flags` is V8's flags' stamp at its compile ({@link v8FlagsNow}). */
interface Fresh {
  filename: string;
  script: Script;
  sourceLength: number;
  sourceCrc: number;
  flags: string;
}

interface Installed {
  file: string;
  options: ModuleCodeCacheOptions;
  header: Header;
  blob: Buffer;
  /** Compiled from source and not saved yet (some wait for a save under the flags they were compiled under). */
  fresh: Fresh[];
  /** V8's flags' stamp as this thread last saw it: data is looked up under it first. */
  flags: string;
  stats: ModuleCodeCacheStats;
  /** Resolutions to use (read, or kept by this process), and the lockfiles they depend on. */
  resolutions: Map<string, string>;
  trees: Map<string, TreeStamp>;
  /** Resolutions this process added since the last save. */
  freshResolutions: number;
  /** How many `require`s the kept resolutions answered in this thread. */
  resolvedFromCache: number;
}
let installed: Installed | undefined;

/** Node's own `vm.Script`, whatever {@link cacheScripts} puts in its place later. */
const NodeScript = Script;

/** Where V8's cached data holds the hash of its flags (V8 SerializedCodeData: magic, version hash, source hash, flag hash; 4 bytes each). */
const FLAG_HASH_OFFSET = 12;

/**
 * V8's flags as they are now, as its cached data records them (hex of the flag hash V8 writes in
 * the header of the data of a fixed script made now; about 5 us).
 *
 * Why: V8 stamps cached data with its flags when the data is made (`createCachedData`, at a save),
 * not when the script was compiled, and refuses data whose stamp differs from the flags in force
 * when a script is compiled with it. Flags are the process's, and change at run time: any
 * thread's `v8.setFlagsFromString` changes them for every thread (worker/workflow-stack-traces.ts
 * sets `--stack-trace-limit` around the workflow threads' creation), and nothing in the cache's
 * key (taken at start) sees that. So each entry is kept under the stamp of the flags its data was
 * made under, looked up under the stamp of the compile, and a save never replaces data with that
 * of a script compiled under other flags (see saveModuleCodeCache). The flag hash is read at its
 * place in V8's header: a V8 that moved it gives stamps that match nothing or everything, and V8
 * still checks its own (the data is then only refused, as without the stamps).
 */
function v8FlagsNow(): string {
  const data = new NodeScript('void 0', { filename: 'warden-code-cache-flags-probe' }).createCachedData();
  return data.length >= FLAG_HASH_OFFSET + 4 ? data.readUInt32LE(FLAG_HASH_OFFSET).toString(16) : '';
}

/** The header entry of `filename` (a module's path, or a script's {@link SCRIPT_ENTRY} name) for data made under V8 flags `flags`. */
function entryName(flags: string, filename: string): string {
  return `${flags}\0${filename}`;
}

/**
 * Everything V8's data depends on besides the source: the build, Node, V8, the platform, and the
 * flags (V8 refuses data made under other flags: processes run with other flags keep other files
 * rather than rewrite one file in turn), and every variable Node's resolution reads (where a
 * `require` may lead): NODE_PATH's folders as Node resolves them (against the current folder, at
 * start), NODE_PRESERVE_SYMLINKS and NODE_PRESERVE_SYMLINKS_MAIN.
 */
function cacheKey(build: string, env: NodeJS.ProcessEnv): string {
  const nodePath = (env.NODE_PATH ?? '').split(delimiter).filter(Boolean).map((folder) => resolve(folder));
  return JSON.stringify([build, process.version, process.versions.v8, process.platform, process.arch, process.execArgv, env.NODE_OPTIONS ?? '', nodePath, env.NODE_PRESERVE_SYMLINKS ?? '', env.NODE_PRESERVE_SYMLINKS_MAIN ?? '']);
}

/** Whether `stats` is this user's and no one else may write it. */
function ownedPrivately(stats: Stats): boolean {
  return process.getuid !== undefined && stats.uid === process.getuid() && (stats.mode & 0o022) === 0;
}

/**
 * Whether only this user and root can change what `path` names: every folder from the root down
 * to it (and every symbolic link on the way) is this user's or root's, and a folder others may
 * write to is sticky (like /tmp), so none of them can rename what is in it. Checked for the path
 * as named and as resolved: another user's folder above the cache could otherwise swap the cache
 * folder for a link to any folder of this user's, holding a file whose bytes someone else chose.
 */
function changeableOnlyByUs(path: string): boolean {
  const uid = process.getuid!();
  for (const named of [resolve(path), realpathSync(path)]) {
    const { root } = parse(named);
    let at = root;
    for (const part of ['', ...named.slice(root.length).split(sep).filter(Boolean)]) {
      at = part === '' ? root : join(at, part);
      const stats = lstatSync(at);
      if (stats.uid !== uid && stats.uid !== 0) return false;
      if (!stats.isSymbolicLink() && (stats.mode & 0o022) !== 0 && (!stats.isDirectory() || (stats.mode & 0o1000) === 0)) return false;
    }
  }
  return true;
}

/** The cache file's header and blob, or an empty cache when it is missing, foreign, torn or another build's. */
function readCacheFile(file: string, key: string): { header: Header; blob: Buffer } {
  const empty = { header: { key, entries: {} }, blob: Buffer.alloc(0) };
  let fd: number;
  try {
    if (!ownedPrivately(statSync(dirname(file)))) return empty;
    // The file itself is never a link (in a folder only this user can write, one this user made).
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return empty;
  }
  try {
    if (!ownedPrivately(fstatSync(fd))) return empty;
    const bytes = readFileSync(fd);
    if (bytes.length < 8 || bytes.toString('latin1', 0, 4) !== MAGIC) return empty;
    const headerLength = bytes.readUInt32LE(4);
    if (8 + headerLength > bytes.length) return empty;
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Header;
    if (header === null || typeof header !== 'object' || header.key !== key || header.entries === null || typeof header.entries !== 'object') return empty;
    return { header, blob: bytes.subarray(8 + headerLength) };
  } catch {
    return empty;
  } finally {
    closeSync(fd);
  }
}

/** The cached data for `filename` when it was made from exactly `content` and is intact; else undefined. */
function cachedDataFor(cache: Installed, filename: string, content: string): { data: Buffer | undefined; sourceCrc: number } {
  const entry = Object.hasOwn(cache.header.entries, filename) ? cache.header.entries[filename] : undefined;
  const sourceCrc = crc32(content);
  if (!Array.isArray(entry) || entry.length !== 5 || entry[2] !== content.length || entry[3] !== sourceCrc) return { data: undefined, sourceCrc };
  const [offset, length, , , dataCrc] = entry;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > cache.blob.length) return { data: undefined, sourceCrc };
  const data = cache.blob.subarray(offset, offset + length);
  return { data: crc32(data) === dataCrc ? data : undefined, sourceCrc };
}

/** Node's `require` for `module`, as its CommonJS loader makes it (makeRequireFunction). */
function requireFor(module: LoadingModule): NodeJS.Require {
  const require = ((id: string) => module.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: unknown) => NodeModule._resolveFilename(request, module, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => NodeModule._resolveLookupPaths(request, module);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = NodeModule._extensions as NodeJS.Require['extensions'];
  require.cache = NodeModule._cache as NodeJS.Require['cache'];
  return require;
}

const NODE_MODULES = `${sep}node_modules${sep}`;
/** npm's record of a node_modules folder, rewritten whenever npm changes what is in it. */
const HIDDEN_LOCKFILE = '.package-lock.json';

/** `[ino, size, mtimeMs]` of `file`, or undefined when it is missing (or not a regular file). */
function treeStamp(file: string): TreeStamp | undefined {
  try {
    const stats = statSync(file);
    return stats.isFile() ? [stats.ino, stats.size, stats.mtimeMs] : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `lockfile` is no longer what `stamp` (as saved, unchecked) says it was: changed, gone, or the stamp malformed. */
function treeChanged(lockfile: string, stamp: unknown): boolean {
  const now = treeStamp(lockfile);
  return now === undefined || !Array.isArray(stamp) || stamp.length !== 3 || stamp.some((value, i) => value !== now[i]);
}

/** The resolutions of a file read, or none when they are malformed or a lockfile they depend on changed. */
function validResolutions(header: Header): { resolutions: Map<string, string>; trees: Map<string, TreeStamp> } {
  const none = { resolutions: new Map<string, string>(), trees: new Map<string, TreeStamp>() };
  const { resolutions, trees } = header;
  if (resolutions === null || typeof resolutions !== 'object' || trees === null || typeof trees !== 'object') return none;
  const kept = new Map<string, TreeStamp>();
  for (const [file, stamp] of Object.entries(trees)) {
    if (treeChanged(file, stamp)) return none;
    kept.set(file, stamp as TreeStamp);
  }
  const map = new Map<string, string>();
  for (const [key, file] of Object.entries(resolutions)) if (typeof file === 'string') map.set(key, file);
  return { resolutions: map, trees: kept };
}

/**
 * Whether the resolution of a request made from folder `from` to `file` may be kept (see the
 * module comment): both lie in `root` outside node_modules, or in node_modules trees npm keeps a
 * record of (each such lockfile's identity is added to `trees`).
 */
function keepable(from: string, file: string, root: string | undefined, trees: Map<string, TreeStamp>, lockfiles: Map<string, TreeStamp | undefined>): boolean {
  const covered = (path: string): boolean => {
    const at = path.lastIndexOf(NODE_MODULES);
    if (at === -1) return root !== undefined && (path === root || path.startsWith(`${root}${sep}`));
    // The innermost node_modules folder with npm's record covers what is below it (nested copies included).
    for (let end = at; end !== -1; end = end === 0 ? -1 : path.lastIndexOf(NODE_MODULES, end - 1)) {
      const lockfile = join(path.slice(0, end), 'node_modules', HIDDEN_LOCKFILE);
      if (!lockfiles.has(lockfile)) lockfiles.set(lockfile, treeStamp(lockfile));
      const stamp = lockfiles.get(lockfile);
      if (stamp !== undefined) {
        trees.set(lockfile, stamp);
        return true;
      }
    }
    return false;
  };
  return covered(`${from}${sep}`) && covered(file);
}

/**
 * Answers `require`s from the kept resolutions, and keeps the new ones that may be kept; Node's
 * own resolution runs for everything else, and for every request it has not seen resolve.
 */
function cacheResolutions(cache: Installed): void {
  const nodeResolve = NodeModule._resolveFilename;
  // Each lockfile's identity as the resolutions read were checked against: an npm install while
  // this process runs must not pair them with the tree's new identity (saveModuleCodeCache drops
  // every resolution when a tree changed under the process).
  const lockfiles = new Map<string, TreeStamp | undefined>(cache.trees);
  NodeModule._resolveFilename = function resolveWithCache(this: unknown, request: string, parent: LoadingModule & { path?: unknown }, isMain: boolean, options?: unknown): string {
    const from = parent?.path;
    if (options !== undefined || isMain || typeof from !== 'string' || typeof request !== 'string') return nodeResolve.call(this, request, parent, isMain, options);
    const key = `${from}\0${request}`;
    const known = cache.resolutions.get(key);
    // A kept file that is gone (a copy removed by hand, npm's record untouched): Node resolves anew.
    if (known !== undefined && existsSync(known)) {
      cache.resolvedFromCache += 1;
      return known;
    }
    if (known !== undefined) cache.resolutions.delete(key);
    const file = nodeResolve.call(this, request, parent, isMain, options);
    // A built-in (`fs`, `node:fs`) resolves to its name: cheap, and not a file.
    if (typeof file === 'string' && file.startsWith(sep) && keepable(from, file, cache.options.root, cache.trees, lockfiles)) {
      cache.resolutions.set(key, file);
      cache.freshResolutions += 1;
    }
    return file;
  };
}

/**
 * Compiles CommonJS modules with cached V8 data from now on in this thread (see the module
 * comment), when `WARDEN_CODE_CACHE` is not `off` (or `0`, `false`, `no`), the cache folder can be made private to this
 * user, and no policy manifest is in force. Returns whether it was installed; never throws.
 */
export function installModuleCodeCache(options: ModuleCodeCacheOptions, env: NodeJS.ProcessEnv = process.env, folderOfParent?: string): boolean {
  if (installed !== undefined) return true;
  try {
    if (switchedOff(env.WARDEN_CODE_CACHE) || process.getuid === undefined) return false;
    // A policy manifest checks each module's integrity in Node's own _compile: left to it.
    if ([...process.execArgv, env.NODE_OPTIONS ?? ''].some((arg) => arg.includes('--experimental-policy'))) return false;
    const key = cacheKey(options.build, env);
    const folder = folderOfParent ?? join(defaultCacheDir(env), 'code-cache', crc32(key).toString(16).padStart(8, '0'));
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    if (!ownedPrivately(statSync(folder)) || !changeableOnlyByUs(folder)) return false;
    const file = join(folder, `${options.role}.bin`);
    const { header, blob } = readCacheFile(file, key);
    const cache: Installed = { file, options, header, blob, fresh: [], flags: v8FlagsNow(), stats: { fromCache: 0, compiled: 0 }, ...validResolutions(header), freshResolutions: 0, resolvedFromCache: 0 };
    installed = cache;
    cacheResolutions(cache);
    const nodeCompile = NodeModule.prototype._compile;
    // Node marks a module that is running (its check for an ES module importing it in a cycle); the same mark here.
    // (Found on the main module, which is running now: bin/warden.js installs this cache.)
    const executing = Object.getOwnPropertySymbols(require.main ?? {}).find((s) => s.description === 'kIsExecuting');
    NodeModule.prototype._compile = function compileWithCodeCache(this: LoadingModule, content: string, filename: string, format?: string): unknown {
      // Node 20's V8 data does not keep a script's `import()` callback (the second process's
      // `import()` throws ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): a module that may call it is Node's.
      if (format === 'module' || process.sourceMapsEnabled || DYNAMIC_IMPORT.test(content)) return nodeCompile.call(this, content, filename, format);
      let script: Script;
      try {
        script = compileCached(cache, filename, content, (data) => new NodeScript(NodeModule.wrap(content), { filename, ...(data === undefined ? {} : { cachedData: data }) }));
      } catch {
        // ES module syntax (Node 20.19 then loads it as one) or a real error, reported by Node as usual.
        return nodeCompile.call(this, content, filename, format);
      }
      const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
      const marked = this as unknown as Record<symbol, boolean>;
      if (executing !== undefined) marked[executing] = true;
      const result = Reflect.apply(wrapper, this.exports, [this.exports, requireFor(this), this, filename, dirname(filename)]);
      if (executing !== undefined) marked[executing] = false;
      return result;
    };
    if (options.saveOnExit === true) process.once('exit', saveModuleCodeCache);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles `source` (`compile` with the data to try, or none) with the data kept for `filename`
 * under the V8 flags in force: first under the flags this thread last saw; when V8 refuses that
 * (or there is none), the flags are read again, as another thread may have changed them, and the
 * data kept under the new flags, if any, is tried. A script compiled from source is recorded
 * with the flags of its compile, for the save. Throws what `compile` throws.
 */
function compileCached<S extends Script>(cache: Installed, filename: string, source: string, compile: (data: Buffer | undefined) => S): S {
  const { data, sourceCrc } = cachedDataFor(cache, entryName(cache.flags, filename), source);
  let script = compile(data);
  if (data !== undefined && script.cachedDataRejected !== true) {
    cache.stats.fromCache += 1;
    return script;
  }
  const flags = v8FlagsNow();
  if (flags !== cache.flags) {
    cache.flags = flags;
    const again = cachedDataFor(cache, entryName(flags, filename), source).data;
    if (again !== undefined) {
      script = compile(again);
      if (script.cachedDataRejected !== true) {
        cache.stats.fromCache += 1;
        return script;
      }
    }
  }
  cache.fresh.push({ filename, script, sourceLength: source.length, sourceCrc, flags });
  cache.stats.compiled += 1;
  return script;
}

/** The entry of a script cached by {@link cacheScripts}: its file name without the folder (modules have full paths). */
const SCRIPT_ENTRY = 'vm.Script ';

/**
 * From now on in this thread, `new vm.Script(code, { filename })` (through Node's `vm` module, as
 * any module reaches it) compiles with this cache too when the last part of `filename` matches
 * `pattern`: the Temporal SDK's workflow bundle in a workflow thread (2-3 MB, which every worker
 * compiled anew, and whose workflow functions every first task compiled anew). The data of such a
 * script is made when `saveModuleCodeCache` is next called, so it also holds the functions V8
 * compiled lazily while the script ran: save after it ran (a workflow thread saves when it is
 * destroyed, worker/workflow-thread-prestart.ts). V8 takes data only under the flags it was made
 * under, `--stack-trace-limit` included: save while the flags of the compile are in force (a save
 * under others keeps the data for those others, saveModuleCodeCache). One entry per file name and V8 flags, whatever its folder:
 * a bundle used from another folder replaces its data rather than adding to the file. Every check
 * of the module cache applies (the source's length and CRC-32, the data's CRC-32, private files).
 * Returns whether it was installed (only in a thread with the cache installed); never throws.
 */
export function cacheScripts(pattern: RegExp): boolean {
  if (installed === undefined) return false;
  const cache: Installed = installed;
  try {
    const vm = require('node:vm') as { Script: typeof Script };
    const Base = vm.Script;
    class CachedScript extends Base {
      constructor(code: string, options?: ScriptOptions | string) {
        const given = typeof options === 'object' && options !== null ? options : undefined;
        const name = typeof given?.filename === 'string' ? basename(given.filename) : undefined;
        const entry = typeof code === 'string' && name !== undefined && pattern.test(name) && given?.cachedData === undefined && !process.sourceMapsEnabled ? `${SCRIPT_ENTRY}${name}` : undefined;
        // Read now rather than retried as for a module (one constructor, one compile): one such script is megabytes, the read 5 us.
        const flags = entry === undefined ? '' : (cache.flags = v8FlagsNow());
        const { data, sourceCrc } = entry === undefined ? { data: undefined, sourceCrc: 0 } : cachedDataFor(cache, entryName(flags, entry), code);
        super(code, data === undefined ? options : { ...given, cachedData: data });
        if (entry === undefined) return;
        if (data === undefined || this.cachedDataRejected === true) {
          cache.fresh.push({ filename: entry, script: this, sourceLength: code.length, sourceCrc, flags });
          cache.stats.compiled += 1;
        } else cache.stats.fromCache += 1;
      }
    }
    vm.Script = CachedScript;
    return true;
  } catch {
    return false;
  }
}

/** The flags' stamp V8 wrote in `data` (as {@link v8FlagsNow} reads it). */
function flagsOfData(data: Buffer): string {
  return data.length >= FLAG_HASH_OFFSET + 4 ? data.readUInt32LE(FLAG_HASH_OFFSET).toString(16) : '';
}

/**
 * Writes the data of the modules compiled from source since the last save (with the entries of
 * the file it read, for other commands' modules): to a temporary file renamed over the old one,
 * so a reader sees the old file or the new one, whole. Quietly does nothing when it cannot.
 *
 * Data is written under the V8 flags of the save, which V8 stamps it with; the next process looks
 * it up under the flags of its compile. A script compiled under other flags than the save's is
 * written only when the file has no data for it under the save's flags yet (a later compile under
 * them takes it), never over such data: a process compiling under flags A and saving under B
 * would otherwise replace the B data at every run while every next compile under A refused it,
 * and the whole file was rewritten each run (a workflow thread's modules compiled before the main
 * thread set `--stack-trace-limit=0` and saved after). Such a script otherwise waits for a save
 * under its own flags (none, if they never come back): it is compiled from source again next
 * time, as V8 would have refused the data anyway.
 */
export function saveModuleCodeCache(): void {
  const cache = installed;
  if (cache === undefined || (cache.fresh.length === 0 && cache.freshResolutions === 0)) return;
  const flags = v8FlagsNow();
  cache.flags = flags;
  const made: Array<{ name: string; data: Buffer; sourceLength: number; sourceCrc: number }> = [];
  const names = new Set<string>();
  const waiting: Fresh[] = [];
  for (const one of cache.fresh) {
    const name = entryName(flags, one.filename);
    const data = one.flags === flags || !(Object.hasOwn(cache.header.entries, name) || names.has(name)) ? one.script.createCachedData() : undefined;
    // Under what V8 wrote, not what was read before: another thread may have changed the flags since.
    if (data !== undefined && flagsOfData(data) === flags) {
      made.push({ name, data, sourceLength: one.sourceLength, sourceCrc: one.sourceCrc });
      names.add(name);
    } else waiting.push(one);
  }
  cache.fresh = waiting;
  if (made.length === 0 && cache.freshResolutions === 0) return;
  cache.freshResolutions = 0;
  try {
    const freshNames = new Set(made.map((f) => f.name));
    const parts: Buffer[] = [];
    const entries: Record<string, Entry> = {};
    let offset = 0;
    const add = (filename: string, data: Buffer, sourceLength: number, sourceCrc: number) => {
      entries[filename] = [offset, data.length, sourceLength, sourceCrc, crc32(data)];
      parts.push(data);
      offset += data.length;
    };
    for (const [filename, entry] of Object.entries(cache.header.entries)) {
      if (freshNames.has(filename) || !Array.isArray(entry) || entry.length !== 5) continue;
      const [at, length, sourceLength, sourceCrc, dataCrc] = entry;
      if (at < 0 || length <= 0 || at + length > cache.blob.length) continue;
      const data = cache.blob.subarray(at, at + length);
      if (crc32(data) === dataCrc) add(filename, data, sourceLength, sourceCrc);
    }
    for (const { name, data, sourceLength, sourceCrc } of made) add(name, data, sourceLength, sourceCrc);
    // A tree npm changed while this process ran: what was resolved in it (before or after) is not
    // kept; the next process resolves everything anew and keeps what it finds.
    if ([...cache.trees].some(([lockfile, stamp]) => treeChanged(lockfile, stamp))) {
      cache.resolutions.clear();
      cache.trees.clear();
    }
    const resolutions = Object.fromEntries(cache.resolutions);
    const trees = Object.fromEntries(cache.trees);
    const header = Buffer.from(JSON.stringify({ key: cache.header.key, entries, resolutions, trees } satisfies Header));
    const prefix = Buffer.alloc(8);
    prefix.write(MAGIC, 0, 'latin1');
    prefix.writeUInt32LE(header.length, 4);
    const blob = Buffer.concat(parts);
    const temporary = `${cache.file}.${process.pid}-${threadId}.tmp`;
    try {
      writeFileSync(temporary, Buffer.concat([prefix, header, blob]), { mode: 0o600 });
      renameSync(temporary, cache.file);
    } finally {
      rmSync(temporary, { force: true });
    }
    cache.header = { key: cache.header.key, entries, resolutions, trees };
    cache.blob = blob;
    removeStaleBuilds(dirname(dirname(cache.file)), dirname(cache.file));
  } catch {
    // A cache that cannot be written costs the next process its compile time, nothing else.
  }
}

/** Removes other builds' cache folders under `root` not written to for a week. */
function removeStaleBuilds(root: string, current: string): void {
  for (const name of readdirSync(root)) {
    const folder = join(root, name);
    if (folder === current) continue;
    try {
      if (Date.now() - statSync(folder).mtimeMs > STALE_AFTER_MS) rmSync(folder, { recursive: true, force: true });
    } catch {
      // Gone already, or not ours to remove.
    }
  }
}

/** This thread's cache figures, or undefined when no cache is installed. */
export function moduleCodeCacheStats(): ModuleCodeCacheStats | undefined {
  return installed === undefined ? undefined : { ...installed.stats };
}

/** How many `require`s this thread's kept resolutions answered, and how many it resolves from now; undefined without a cache. */
export function moduleResolutionStats(): { fromCache: number; known: number } | undefined {
  return installed === undefined ? undefined : { fromCache: installed.resolvedFromCache, known: installed.resolutions.size };
}

/** Names, in a child process's environment, the cache folder and build of the process that forked it. */
export const PARENT_CODE_CACHE_ENV = 'WARDEN_PARENT_CODE_CACHE';

/**
 * For the environment of a Warden process this one forks (the sandbox host, whose environment is
 * otherwise scrubbed): where this process's cache is, and its build. Empty when it has none.
 */
export function childCodeCacheEnv(): Record<string, string> {
  if (installed === undefined || !__filename.endsWith('.js')) return {};
  return { [PARENT_CODE_CACHE_ENV]: JSON.stringify({ folder: dirname(installed.file), build: installed.options.build, root: installed.options.root }) };
}

/**
 * In a process forked with `childCodeCacheEnv()`: installs the parent's cache under `role` (its own
 * file there, saved when the process exits), with every check `installModuleCodeCache` makes.
 */
export function installParentCodeCache(role: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const value = env[PARENT_CODE_CACHE_ENV];
    if (value === undefined) return false;
    const { folder, build, root } = JSON.parse(value) as { folder?: unknown; build?: unknown; root?: unknown };
    if (typeof folder !== 'string' || typeof build !== 'string') return false;
    return installModuleCodeCache({ build, role, saveOnExit: true, ...(typeof root === 'string' ? { root } : {}) }, env, folder);
  } catch {
    return false;
  }
}

/**
 * JavaScript for a worker thread's `eval` source that installs the same cache there under `role`
 * (before the thread's own `require`; with `scripts`, {@link cacheScripts} of it too), and the
 * statement that saves it; both empty when this thread has no cache (or runs the TypeScript
 * sources, which a thread cannot require).
 */
export function threadCodeCacheSource(role: string, scripts?: RegExp): { install: string; save: string } {
  if (installed === undefined || !__filename.endsWith('.js')) return { install: '', save: '' };
  const module = JSON.stringify(__filename);
  const install = `require(${module}).installModuleCodeCache(${JSON.stringify({ build: installed.options.build, role, root: installed.options.root })})`;
  const andScripts = scripts === undefined ? '' : ` && require(${module}).cacheScripts(new RegExp(${JSON.stringify(scripts.source)}, ${JSON.stringify(scripts.flags)}))`;
  return {
    install: `try { ${install}${andScripts}; } catch {}\n`,
    save: `try { require(${module}).saveModuleCodeCache(); } catch {}\n`,
  };
}
