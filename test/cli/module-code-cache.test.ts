/**
 * The V8 code cache bin/warden.js installs for a build (cli/module-code-cache.ts): a second process
 * compiles nothing its first one did, and a cache that is stale, corrupt, torn, another build's or
 * writable by others is never used: the modules then run from their sources, as without a cache.
 *
 * The cache module is compiled to JavaScript as the build compiles it (TypeScript's own transpiler)
 * and each case runs real Node processes on modules of its own, in a cache folder of its own.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCodeCacheModule } from '../support/code-cache-kit';

let root: string;
/** The compiled cache module (build/cli/module-code-cache.js's twin). */
let cacheModule: string;

beforeAll(() => {
  ({ root, cacheModule } = compileCodeCacheModule('warden-code-cache-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Modules of a case: main.js requires the others; what it exports is what the process prints. */
const MODULES: Record<string, string> = {
  'main.js': "const a = require('./a'); const b = require('./b'); module.exports = { a: a(), b: b.twice(21) };",
  'a.js': 'module.exports = function a() { return "one"; };',
  'b.js': 'exports.twice = (n) => n * 2;',
};

interface Outcome {
  result: unknown;
  stats: { fromCache: number; compiled: number } | undefined;
}

/** A case's folder: its modules and its cache folder. */
function caseDir(name: string, modules: Record<string, string> = MODULES): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'mods'), { recursive: true });
  for (const [file, text] of Object.entries(modules)) writeFileSync(join(dir, 'mods', file), text);
  return dir;
}

/** A fresh Node process with the cache installed (build `build`) that requires mods/main.js and exits. */
function runProcess(dir: string, options: { build?: string; env?: NodeJS.ProcessEnv; then?: string } = {}): Outcome {
  const script = `
    const cache = require(${JSON.stringify(cacheModule)});
    cache.installModuleCodeCache({ build: ${JSON.stringify(options.build ?? 'test-build 1')}, role: 'cli', saveOnExit: true });
    let result;
    try { result = require(${JSON.stringify(join(dir, 'mods', 'main.js'))}); } catch (error) { result = { error: error.name }; }
    Promise.resolve(result).then(async (result) => {
      ${options.then ?? ''}
      process.stdout.write(JSON.stringify({ result, stats: cache.moduleCodeCacheStats() }));
    });`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache'), ...options.env } });
  return JSON.parse(out) as Outcome;
}

/** The one cache file a case's processes wrote. */
function cacheFile(dir: string): string {
  const builds = readdirSync(join(dir, 'cache', 'code-cache'));
  expect(builds).toHaveLength(1);
  return join(dir, 'cache', 'code-cache', builds[0]!, 'cli.bin');
}

/** Offset of the cached data in a cache file (after the magic, the header's length and the header). */
function blobStart(file: string): number {
  return 8 + readFileSync(file).readUInt32LE(4);
}

const EXPECTED = { a: 'one', b: 42 };

/**
 * a.js as someone else would have it run: the same length as MODULES['a.js'], so V8's own check
 * passes, and no function of its own (V8 compiles a function left out of the data from the source
 * on disk when it is first called).
 */
const FORGED_A = 'module.exports = String.bind(null, "PWN");    //';
const FORGED = { a: 'PWN', b: 42 };

/**
 * Rewrites a cache file's entry for mods/a.js with V8 data compiled (by a plain Node, as the case's
 * processes are) from FORGED_A, keeping the recorded length and CRC-32 of the real a.js: what a
 * writer of the file could do.
 */
function forgeEntryForA(dir: string, file: string): void {
  const evil = execFileSync(process.execPath, ['-e', `
    const { Module } = require('node:module');
    const script = new (require('node:vm').Script)(Module.wrap(${JSON.stringify(FORGED_A)}), { filename: 'a.js' });
    process.stdout.write(script.createCachedData().toString('base64'));`], { encoding: 'utf8' });
  const data = Buffer.from(evil, 'base64');
  const bytes = readFileSync(file);
  const headerLength = bytes.readUInt32LE(4);
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as { key: string; entries: Record<string, number[]> };
  const blob = bytes.subarray(8 + headerLength);
  // Entries are named `<V8 flags' stamp>\0<file>`.
  const a = Object.keys(header.entries).find((name) => name.endsWith(`\0${join(dir, 'mods', 'a.js')}`))!;
  const [, , sourceLength, sourceCrc] = header.entries[a]!;
  header.entries[a] = [blob.length, data.length, sourceLength!, sourceCrc!, crc32(data)];
  const newHeader = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.write('WCC1', 0, 'latin1');
  prefix.writeUInt32LE(newHeader.length, 4);
  writeFileSync(file, Buffer.concat([prefix, newHeader, blob, data]), { mode: 0o600 });
}

/**
 * A case whose cache folder holds a forged cli.bin (forgeEntryForA), made by a first process under
 * `trusted-cache/` and moved to `planted/`: a private folder of this user's, as any folder of theirs
 * holding a file whose bytes someone else chose (a workspace an agent wrote to, a download).
 * Returns the case folder and the build folder's name (the crc of the processes' key).
 */
function plantedCase(name: string): { dir: string; build: string } {
  const dir = caseDir(name);
  runProcess(dir, { env: { WARDEN_CACHE_DIR: join(dir, 'trusted-cache') } });
  const [build] = readdirSync(join(dir, 'trusted-cache', 'code-cache'));
  renameSync(join(dir, 'trusted-cache', 'code-cache', build!), join(dir, 'planted'));
  forgeEntryForA(dir, join(dir, 'planted', 'cli.bin'));
  return { dir, build: build! };
}

/** Another user's id (the tests that need one run as root, as CI does). */
const OTHER_USER = 65534;
const AS_ROOT = process.getuid?.() === 0;

describe('the module code cache', () => {
  it('a second process compiles none of the modules the first one compiled, with the same result', () => {
    const dir = caseDir('second-run');
    const first = runProcess(dir);
    expect(first).toEqual({ result: EXPECTED, stats: { fromCache: 0, compiled: 3 } });
    const second = runProcess(dir);
    expect(second).toEqual({ result: EXPECTED, stats: { fromCache: 3, compiled: 0 } });
  });

  /** Ways a cache file goes bad after the first process wrote it; each must cost compile time only. */
  const SPOILED: Array<[what: string, spoil: (dir: string) => void, expected: { result: unknown; fromCache: number | 'no cache' }]> = [
    [
      // V8 checks only the source's length: the cache checks its CRC-32 too.
      'a module edited to a source of the same length',
      (dir) => writeFileSync(join(dir, 'mods', 'a.js'), MODULES['a.js']!.replace('"one"', '"two"')),
      { result: { a: 'two', b: 42 }, fromCache: 2 },
    ],
    [
      'cached data flipped in the file',
      (dir) => {
        const file = cacheFile(dir);
        const bytes = readFileSync(file);
        for (let i = blobStart(file); i < bytes.length; i += 7) bytes[i] = bytes[i]! ^ 0x5a;
        writeFileSync(file, bytes);
      },
      { result: EXPECTED, fromCache: 0 },
    ],
    ['the file cut short', (dir) => writeFileSync(cacheFile(dir), readFileSync(cacheFile(dir)).subarray(0, blobStart(cacheFile(dir)) + 10)), { result: EXPECTED, fromCache: 0 }],
    ['the file replaced by garbage', (dir) => writeFileSync(cacheFile(dir), 'not a cache at all'), { result: EXPECTED, fromCache: 0 }],
    ['the file writable by others', (dir) => chmodSync(cacheFile(dir), 0o666), { result: EXPECTED, fromCache: 0 }],
    // Not even installed: what it would write there could be swapped by someone else.
    ['the folder writable by others', (dir) => chmodSync(join(cacheFile(dir), '..'), 0o777), { result: EXPECTED, fromCache: 'no cache' }],
  ];

  it.each(SPOILED)('%s: not used; the modules run from their sources', (what, spoil, expected) => {
    const dir = caseDir(`spoiled-${what.replace(/\W+/g, '-')}`);
    runProcess(dir);
    spoil(dir);
    const after = runProcess(dir);
    expect(after.result).toEqual(expected.result);
    expect(after.stats).toEqual(expected.fromCache === 'no cache' ? undefined : { fromCache: expected.fromCache, compiled: 3 - expected.fromCache });
  });

  it('the file is code: forged data for a module runs the forged code, whatever its source says (why only private files are used)', () => {
    const { dir, build } = plantedCase('forged-in-place');
    renameSync(join(dir, 'planted'), join(dir, 'trusted-cache', 'code-cache', build));
    expect(readFileSync(join(dir, 'mods', 'a.js'), 'utf8')).toBe(MODULES['a.js']);
    expect(runProcess(dir, { env: { WARDEN_CACHE_DIR: join(dir, 'trusted-cache') } })).toEqual({ result: FORGED, stats: { fromCache: 3, compiled: 0 } });
  });

  /**
   * Ways someone else could have placed the cache folder or file (the forged one of plantedCase):
   * each must leave the modules running from their sources. `setUp` makes `dir/cache` (the case's
   * WARDEN_CACHE_DIR) lead to the planted folder.
   */
  const PLACED: Array<[what: string, setUp: (dir: string, build: string) => void, onlyAsRoot: boolean]> = [
    [
      // Anyone may rename what is in it: the cache folder can be swapped for a link to any folder of ours.
      'a folder above the cache folder writable by others (not sticky), the cache folder swapped for a link',
      (dir, build) => {
        mkdirSync(join(dir, 'cache', 'code-cache'), { recursive: true, mode: 0o700 });
        chmodSync(join(dir, 'cache'), 0o777);
        symlinkSync(join(dir, 'planted'), join(dir, 'cache', 'code-cache', build));
      },
      false,
    ],
    [
      "a folder above the cache folder another user's, the cache folder swapped (by them) for a link",
      (dir, build) => {
        mkdirSync(join(dir, 'cache', 'code-cache'), { recursive: true, mode: 0o755 });
        symlinkSync(join(dir, 'planted'), join(dir, 'cache', 'code-cache', build));
        for (const folder of [join(dir, 'cache'), join(dir, 'cache', 'code-cache')]) chownSync(folder, OTHER_USER, OTHER_USER);
        lchownSync(join(dir, 'cache', 'code-cache', build), OTHER_USER, OTHER_USER);
      },
      true,
    ],
    [
      'the cache file a link to a private file of ours',
      (dir, build) => {
        mkdirSync(join(dir, 'cache', 'code-cache', build), { recursive: true, mode: 0o700 });
        symlinkSync(join(dir, 'planted', 'cli.bin'), join(dir, 'cache', 'code-cache', build, 'cli.bin'));
      },
      false,
    ],
    [
      "the cache folder another user's",
      (dir, build) => {
        mkdirSync(join(dir, 'cache', 'code-cache'), { recursive: true, mode: 0o700 });
        renameSync(join(dir, 'planted'), join(dir, 'cache', 'code-cache', build));
        chownSync(join(dir, 'cache', 'code-cache', build), OTHER_USER, OTHER_USER);
      },
      true,
    ],
    [
      "the cache file another user's",
      (dir, build) => {
        mkdirSync(join(dir, 'cache', 'code-cache'), { recursive: true, mode: 0o700 });
        renameSync(join(dir, 'planted'), join(dir, 'cache', 'code-cache', build));
        chownSync(join(dir, 'cache', 'code-cache', build, 'cli.bin'), OTHER_USER, OTHER_USER);
      },
      true,
    ],
  ];

  it.each(PLACED)('%s: the forged data is not run', (what, setUp, onlyAsRoot) => {
    if (onlyAsRoot && !AS_ROOT) return; // chown needs root; CI runs as root
    const { dir, build } = plantedCase(`placed-${what.replace(/\W+/g, '-')}`);
    setUp(dir, build);
    const outcome = runProcess(dir);
    expect(outcome.result).toEqual(EXPECTED);
    expect(outcome.stats?.fromCache ?? 0).toBe(0);
  });

  it('a cache whose file was torn or corrupt is written anew, and used by the next process', () => {
    const dir = caseDir('rewritten');
    runProcess(dir);
    writeFileSync(cacheFile(dir), 'garbage');
    runProcess(dir);
    expect(runProcess(dir).stats).toEqual({ fromCache: 3, compiled: 0 });
  });

  it("another build's cache is never used (another version, or the same one built again)", () => {
    const dir = caseDir('other-build');
    runProcess(dir, { build: '0.1.0 2026-12-01T08:00:00Z' });
    expect(runProcess(dir, { build: '0.1.0 2026-12-01T09:00:00Z' }).stats).toEqual({ fromCache: 0, compiled: 3 });
  });

  it.each(['off', '0', 'false', 'OFF'])('WARDEN_CODE_CACHE=%s installs nothing and writes nothing', (value) => {
    const dir = caseDir(`off-${value}`);
    const outcome = runProcess(dir, { env: { WARDEN_CODE_CACHE: value } });
    expect(outcome).toEqual({ result: EXPECTED, stats: undefined });
    expect(() => readdirSync(join(dir, 'cache'))).toThrow();
  });

  it('an ES module reached through require, and a module calling import(), load as Node loads them', () => {
    const dir = caseDir('esm', {
      'main.js': "const esm = require('./esm.js'); module.exports = { fromEsm: esm.value, now: require('./b.js').twice(2), later: require('./dynamic.js') };",
      'esm.js': 'export const value = "esm";',
      'b.js': MODULES['b.js']!,
      // Node 20 loses a cached script's import() callback: this one is compiled by Node each time.
      'dynamic.js': "module.exports = import('./b.js').then((m) => m.twice(4));",
    });
    const runs = [0, 1, 2].map(() => runProcess(dir, { then: 'result = { ...result, later: await result.later };' }));
    for (const outcome of runs) expect(outcome.result).toEqual({ fromEsm: 'esm', now: 4, later: 8 });
    expect(runs[2]!.stats).toEqual({ fromCache: 2, compiled: 0 });
  });

  it("a worker thread and a forked child use their parent's cache, each under its own role", () => {
    const dir = caseDir('thread-and-child');
    // The workflow thread's way (worker/workflow-thread-prestart.ts) and the sandbox host's (sandbox/host-code-cache.ts).
    const then = `
      const MAIN = ${JSON.stringify(join(dir, 'mods', 'main.js'))};
      const CACHE = ${JSON.stringify(cacheModule)};
      const { Worker } = require('node:worker_threads');
      const code = cache.threadCodeCacheSource('thread');
      const stats = 'require(' + JSON.stringify(CACHE) + ').moduleCodeCacheStats()';
      const thread = new Worker(code.install + 'require(' + JSON.stringify(MAIN) + ');' + code.save + 'require("node:worker_threads").parentPort.postMessage(' + stats + ');', { eval: true });
      const inThread = await new Promise((resolve) => thread.once('message', resolve));
      const child = require('node:child_process').spawnSync(process.execPath, ['-e',
        'require(' + JSON.stringify(CACHE) + ').installParentCodeCache("child"); require(' + JSON.stringify(MAIN) + '); process.stdout.write(JSON.stringify(' + stats + '));'],
        { env: { PATH: process.env.PATH, ...cache.childCodeCacheEnv() }, encoding: 'utf8' });
      result = { inThread, inChild: JSON.parse(child.stdout) };`;
    const first = runProcess(dir, { then });
    expect(first.result).toEqual({ inThread: { fromCache: 0, compiled: 3 }, inChild: { fromCache: 0, compiled: 3 } });
    const second = runProcess(dir, { then });
    expect(second.result).toEqual({ inThread: { fromCache: 3, compiled: 0 }, inChild: { fromCache: 3, compiled: 0 } });
    expect(readdirSync(join(cacheFile(dir), '..')).sort()).toEqual(['child.bin', 'cli.bin', 'thread.bin']);
  });

  /** A script as a workflow bundle is one: a function defined at the top, called only when the script runs it. */
  const SCRIPT = 'function answer(n) { const twice = (x) => x * 2; return twice(n); }\nanswer(21);';

  /**
   * A process with the cache installed and cacheScripts of `bundle-<hex>.js` names that compiles
   * `code` as `new vm.Script(code, { filename })`, runs it in a new context and saves, all with
   * V8's --stack-trace-limit as given (compile, save; default V8's 10): what the script returned,
   * whether V8 rejected data, the thread's figures, and the size of the entry it saved.
   */
  function runScript(dir: string, filename: string, code = SCRIPT, limits: { compile?: number; save?: number } = {}): { result: unknown; rejected: boolean | null; stats: unknown; saved: number | null } {
    // One source for every call (its -e text is part of the cache's key); the case comes as an argument.
    const script = `
      const { filename, code, compile, save, folder } = JSON.parse(process.argv[1]);
      const cache = require(${JSON.stringify(cacheModule)});
      const v8 = require('node:v8');
      cache.installModuleCodeCache({ build: 'test-build 1', role: 'thread' });
      if (!cache.cacheScripts(/^bundle-[0-9a-f]+\\.js$/)) throw new Error('not installed');
      v8.setFlagsFromString('--stack-trace-limit=' + compile);
      const script = new (require('node:vm').Script)(code, { filename });
      v8.setFlagsFromString('--stack-trace-limit=10');
      const result = script.runInNewContext({});
      v8.setFlagsFromString('--stack-trace-limit=' + save);
      cache.saveModuleCodeCache();
      const file = require('node:path').join(folder, require('node:fs').readdirSync(folder)[0], 'thread.bin');
      const bytes = require('node:fs').existsSync(file) ? require('node:fs').readFileSync(file) : undefined;
      const entries = bytes === undefined ? {} : JSON.parse(bytes.toString('utf8', 8, 8 + bytes.readUInt32LE(4))).entries;
      const entry = Object.entries(entries).find(([name]) => name.endsWith('\\0vm.Script ' + require('node:path').basename(filename)))?.[1];
      process.stdout.write(JSON.stringify({ result, rejected: script.cachedDataRejected ?? null, stats: cache.moduleCodeCacheStats(), saved: entry ? entry[1] : null }));`;
    const input = JSON.stringify({ filename, code, compile: limits.compile ?? 10, save: limits.save ?? 10, folder: join(dir, 'cache', 'code-cache') });
    return JSON.parse(execFileSync(process.execPath, ['-e', script, input], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache') } })) as ReturnType<typeof runScript>;
  }

  it('a script cacheScripts names (a workflow bundle) compiles from the cache in the next process, from any folder; other names and changed sources do not', () => {
    const dir = caseDir('scripts');
    expect(runScript(dir, '/one/bundle-1a.js')).toMatchObject({ result: 42, rejected: null, stats: { fromCache: 0, compiled: 1 } });
    expect(runScript(dir, '/one/bundle-1a.js')).toMatchObject({ result: 42, rejected: false, stats: { fromCache: 1, compiled: 0 } });
    // One entry per file name: the same bundle from another folder.
    expect(runScript(dir, '/two/bundle-1a.js')).toMatchObject({ result: 42, rejected: false, stats: { fromCache: 1, compiled: 0 } });
    // Another name is Node's own vm.Script: neither read nor counted.
    expect(runScript(dir, '/one/other.js')).toMatchObject({ result: 42, rejected: null, stats: { fromCache: 0, compiled: 0 }, saved: null });
    // The same length, another source: its own CRC-32 does not match, so it compiles (and is saved anew).
    expect(runScript(dir, '/one/bundle-1a.js', SCRIPT.replace('21', '12'))).toMatchObject({ result: 24, rejected: null, stats: { fromCache: 0, compiled: 1 } });
  });

  it("a script's data holds the functions it ran; V8 takes it only under the stack-trace limit of the compile (why a workflow thread saves under it)", () => {
    const dir = caseDir('script-flags');
    // Saved under another --stack-trace-limit than the compile's: V8 stamps the data with the save's, so it is kept under
    // the save's flags; the next compile, under the compile's, is offered none (V8 would reject it), and compiles.
    expect(runScript(dir, '/b/bundle-2b.js', SCRIPT, { compile: 0, save: 10 })).toMatchObject({ result: 42, rejected: null, stats: { fromCache: 0, compiled: 1 } });
    expect(runScript(dir, '/b/bundle-2b.js', SCRIPT, { compile: 0, save: 0 })).toMatchObject({ result: 42, rejected: null, stats: { fromCache: 0, compiled: 1 } });
    const made = runScript(dir, '/b/bundle-2b.js', SCRIPT, { compile: 0, save: 0 });
    expect(made).toMatchObject({ result: 42, rejected: false, stats: { fromCache: 1, compiled: 0 } });
    // Saved before the script ran (a fresh cache): less data than after (the lazily compiled functions are in it).
    const before = caseDir('script-not-run');
    const notRun = JSON.parse(execFileSync(process.execPath, ['-e', `
      const cache = require(${JSON.stringify(cacheModule)});
      cache.installModuleCodeCache({ build: 'test-build 1', role: 'thread' });
      cache.cacheScripts(/^bundle-[0-9a-f]+\\.js$/);
      const script = new (require('node:vm').Script)(${JSON.stringify(SCRIPT)}, { filename: '/b/bundle-2b.js' });
      process.stdout.write(JSON.stringify(script.createCachedData().length));`], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: before, WARDEN_CACHE_DIR: join(before, 'cache') } })) as number;
    expect(made.saved).toBeGreaterThan(notRun);
  });

  /**
   * A process with the cache installed that requires mods/main.js and saves, with V8 flag `set`
   * set (by `v8.setFlagsFromString`, as another thread may) at `when`: before the compile, between
   * the compile and the save, or between them and back (`reset`) before the save. Its figures,
   * and cli.bin's inode after it (a save renames a new file over it), or null when there is none.
   */
  function runUnderFlags(dir: string, set: string, reset: string, when: 'none' | 'before compile' | 'before save' | 'between, then back'): { stats: unknown; inode: number | null } {
    const script = `
      const { main, set, reset, when, folder } = JSON.parse(process.argv[1]);
      const cache = require(${JSON.stringify(cacheModule)});
      const v8 = require('node:v8');
      cache.installModuleCodeCache({ build: 'test-build 1', role: 'cli' });
      if (when === 'before compile') v8.setFlagsFromString(set);
      require(main);
      if (when === 'before save' || when === 'between, then back') v8.setFlagsFromString(set);
      if (when === 'between, then back') v8.setFlagsFromString(reset);
      cache.saveModuleCodeCache();
      const { existsSync, readdirSync, statSync } = require('node:fs');
      const file = existsSync(folder) ? require('node:path').join(folder, readdirSync(folder)[0], 'cli.bin') : '';
      process.stdout.write(JSON.stringify({ stats: cache.moduleCodeCacheStats(), inode: existsSync(file) ? statSync(file).ino : null }));`;
    const input = JSON.stringify({ main: join(dir, 'mods', 'main.js'), set, reset, when, folder: join(dir, 'cache', 'code-cache') });
    return JSON.parse(execFileSync(process.execPath, ['-e', script, input], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache') } })) as ReturnType<typeof runUnderFlags>;
  }

  // Any V8 flag is in the stamp V8 checks: the one Warden sets at run time (worker/workflow-stack-traces.ts) and another.
  describe.each([
    ['--stack-trace-limit', '--stack-trace-limit=0', '--stack-trace-limit=10'],
    ['--opt', '--no-opt', '--opt'],
  ])('V8 flags changed at run time (%s)', (_flag, set, reset) => {
    it('a process that compiled before the change and saved after does not rewrite the file run after run (its data, under the save\'s flags, is not replaced)', () => {
      const dir = caseDir(`flags-after-compile${set}`);
      const first = runUnderFlags(dir, set, reset, 'before save');
      expect(first.stats).toEqual({ fromCache: 0, compiled: 3 });
      // On the code before: the data was stamped with the save's flags, refused by this compile, and the file rewritten.
      expect(runUnderFlags(dir, set, reset, 'before save')).toEqual(first);
    });

    it('processes that compile under either flags, in turn, each keep their data: after one of each, nothing is compiled or rewritten', () => {
      const dir = caseDir(`flags-in-turn${set}`);
      runUnderFlags(dir, set, reset, 'before compile');
      const settled = runUnderFlags(dir, set, reset, 'none').inode;
      for (const when of ['before compile', 'none', 'before compile', 'none'] as const) {
        expect(runUnderFlags(dir, set, reset, when)).toEqual({ stats: { fromCache: 3, compiled: 0 }, inode: settled });
      }
    });

    it('data made under the save\'s flags for scripts compiled under others is taken by a next compile under the save\'s, without a rewrite', () => {
      const dir = caseDir(`flags-save-kept${set}`);
      const first = runUnderFlags(dir, set, reset, 'before save');
      expect(runUnderFlags(dir, set, reset, 'before compile')).toEqual({ stats: { fromCache: 3, compiled: 0 }, inode: first.inode });
    });

    it('control: flags changed and put back before the save: the data is saved and taken', () => {
      const dir = caseDir(`flags-back${set}`);
      runUnderFlags(dir, set, reset, 'between, then back');
      expect(runUnderFlags(dir, set, reset, 'none').stats).toEqual({ fromCache: 3, compiled: 0 });
    });
  });

  it('a module with a syntax error fails with the SyntaxError Node gives', () => {
    const dir = caseDir('syntax-error', { 'main.js': 'module.exports = {;' });
    expect(runProcess(dir).result).toEqual({ error: 'SyntaxError' });
  });
});

describe('the kept resolutions (where each require led)', () => {
  /** A package folder (`pkg/`, the root) whose main.js requires its own file and two packages, one nested in the other. */
  const PACKAGE: Record<string, string> = {
    'pkg/main.js': "const own = require('./own'); const dep = require('dep'); module.exports = { own, dep: dep(), inner: require('dep/inner-value') };",
    'pkg/own.js': 'module.exports = "own";',
    'pkg/node_modules/dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', main: 'one.js' }),
    'pkg/node_modules/dep/one.js': "module.exports = () => 'dep one ' + require('inner');",
    'pkg/node_modules/dep/two.js': "module.exports = () => 'dep two ' + require('inner');",
    'pkg/node_modules/dep/inner-value.js': "module.exports = require('inner');",
    'pkg/node_modules/dep/node_modules/inner/package.json': JSON.stringify({ name: 'inner', version: '2.0.0' }),
    'pkg/node_modules/dep/node_modules/inner/index.js': 'module.exports = "inner 2";',
  };
  /** npm's record of the tree (its content does not matter here: its identity does). */
  const LOCKFILE = 'pkg/node_modules/.package-lock.json';

  function packageCase(name: string, files: Record<string, string>): string {
    const dir = join(root, name);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
    return dir;
  }

  /** A fresh process with the cache installed (root `pkg/` unless told; null: none) that requires pkg/main.js: its result and how many requires the kept resolutions answered. */
  function resolveProcess(dir: string, root: string | null = join(dir, 'pkg')): { result: unknown; resolved: { fromCache: number; known: number } } {
    const script = `
      const cache = require(${JSON.stringify(cacheModule)});
      cache.installModuleCodeCache({ build: 'test-build 1', role: 'cli', saveOnExit: true${root === null ? '' : `, root: ${JSON.stringify(root)}`} });
      const result = require(${JSON.stringify(join(dir, 'pkg', 'main.js'))});
      process.stdout.write(JSON.stringify({ result, resolved: cache.moduleResolutionStats() }));`;
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache') } }));
  }

  const FIRST = { own: 'own', dep: 'dep one inner 2', inner: 'inner 2' };

  it("a second process resolves from them what the first resolved, in the package's own folder and in a node_modules tree npm keeps a record of", () => {
    const dir = packageCase('resolutions-kept', { ...PACKAGE, [LOCKFILE]: '{}' });
    const first = resolveProcess(dir);
    // ./own and dep from pkg/, dep/inner-value from pkg/ too, and inner from dep's folder (both its files ask, one resolution).
    expect(first).toEqual({ result: FIRST, resolved: { fromCache: 0, known: 4 } });
    expect(resolveProcess(dir)).toEqual({ result: FIRST, resolved: { fromCache: 4, known: 4 } });
  });

  it('a tree npm changed (its lockfile rewritten) is resolved anew: a package whose main file changed leads to the new one', () => {
    const dir = packageCase('resolutions-npm-changed', { ...PACKAGE, [LOCKFILE]: '{}' });
    resolveProcess(dir);
    writeFileSync(join(dir, 'pkg/node_modules/dep/package.json'), JSON.stringify({ name: 'dep', version: '1.0.1', main: 'two.js' }));
    writeFileSync(join(dir, LOCKFILE), '{ "changed": true }');
    expect(resolveProcess(dir)).toEqual({ result: { ...FIRST, dep: 'dep two inner 2' }, resolved: { fromCache: 0, known: 4 } });
    expect(resolveProcess(dir).resolved.fromCache).toBe(4);
  });

  it('a removed lockfile drops them too', () => {
    const dir = packageCase('resolutions-lockfile-gone', { ...PACKAGE, [LOCKFILE]: '{}' });
    resolveProcess(dir);
    rmSync(join(dir, LOCKFILE));
    // Only the package's own file is kept now: the tree has no record npm keeps.
    expect(resolveProcess(dir)).toEqual({ result: FIRST, resolved: { fromCache: 0, known: 1 } });
    expect(resolveProcess(dir).resolved).toEqual({ fromCache: 1, known: 1 });
  });

  it('a tree with no npm record, and folders outside the root, are resolved by Node every time', () => {
    const dir = packageCase('resolutions-not-kept', PACKAGE);
    expect(resolveProcess(dir, null)).toEqual({ result: FIRST, resolved: { fromCache: 0, known: 0 } });
    expect(resolveProcess(dir, null)).toEqual({ result: FIRST, resolved: { fromCache: 0, known: 0 } });
  });

  it('WARDEN_CODE_CACHE=off keeps none', () => {
    const dir = packageCase('resolutions-off', { ...PACKAGE, [LOCKFILE]: '{}' });
    const script = `const cache = require(${JSON.stringify(cacheModule)}); cache.installModuleCodeCache({ build: 'b', role: 'cli', saveOnExit: true, root: ${JSON.stringify(join(dir, 'pkg'))} }); require(${JSON.stringify(join(dir, 'pkg', 'main.js'))}); process.stdout.write(JSON.stringify(cache.moduleResolutionStats() ?? null));`;
    expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache'), WARDEN_CODE_CACHE: 'off' } })).toBe('null');
  });
});
