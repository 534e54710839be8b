/**
 * The code cache's kept resolutions (cli/module-code-cache.ts, "where each require led") never make
 * a later `warden` process load another file than Node's own resolution would, nor fail where Node
 * would load one. Was an open finding (s15, atk15b, low-medium), one row per way it did:
 *
 * 1. An npm install during a process that answered its requires from the kept resolutions (a
 *    `warden worker` or a long `warden run` while `npm install`/`npm update` runs in the checkout).
 *    The resolutions read at start are kept in memory with the lockfile's identity read then; the
 *    first module the process loads later that lies in that tree (any lazily loaded one) stats the
 *    lockfile again (`keepable`'s own `lockfiles` map) and overwrites `trees` with the NEW identity.
 *    The file saved at exit then pairs the pre-install resolutions with the post-install lockfile,
 *    and every later process takes them as valid: a package whose main file npm changed runs its
 *    old file (here `dep one` where Node loads `dep two`), and one whose old file npm removed fails
 *    with ENOENT. It stays so until the next npm change.
 * 2. A relative NODE_PATH (`NODE_PATH=node_modules`, resolved by Node against the current folder):
 *    the key holds NODE_PATH's text, not the folders it names, so a process run from project B
 *    gets what a require resolved to in project A (both npm trees, both lockfiles unchanged).
 * 3. NODE_PRESERVE_SYMLINKS=1 (Node's variable for --preserve-symlinks) is not in the key, while
 *    the flag is (execArgv): a linked package (npm link, a workspace, a file: dependency) resolved
 *    under it is kept by its link's path, and a later process without it loads it there and
 *    resolves its dependencies from there, not from where the package really is.
 * 4. A kept resolution whose file is gone (a nested copy removed by hand, a package folder
 *    deleted, with npm's lockfile untouched) is not checked: the require throws ENOENT from the
 *    loader instead of Node's resolution, which here finds the package's other copy. The code
 *    cache's data falls back to the source when stale; a stale resolution crashes.
 *
 * Fixed: (1) each lockfile is stamped with the identity the resolutions read were checked against,
 * and a save after a tree changed under the process keeps no resolutions; (2) and (3) the key holds
 * NODE_PATH's folders resolved as Node resolves them, and NODE_PRESERVE_SYMLINKS(_MAIN); (4) a kept
 * file that is gone is resolved anew by Node and its entry dropped.
 *
 * Real parts: the cache module compiled as the build compiles it, real Node processes, real folders.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compileCodeCacheModule } from '../support/code-cache-kit';

let root: string;
let cacheModule: string;

beforeAll(() => {
  ({ root, cacheModule } = compileCodeCacheModule('warden-stale-resolutions-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
}

/**
 * A fresh Node process with the cache installed (root `pkg/`) that requires `pkg/<main>`, runs
 * `then` (JavaScript, may require more), and prints what main exported (or the error's code).
 */
function run(dir: string, main: string, options: { then?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): unknown {
  const script = `
    const cache = require(${JSON.stringify(cacheModule)});
    cache.installModuleCodeCache({ build: 'test-build 1', role: 'cli', saveOnExit: true, root: ${JSON.stringify(join(dir, 'pkg'))} });
    let result;
    try { result = require(${JSON.stringify(join(dir, 'pkg', main))}); } catch (error) { result = { error: error.code ?? error.name }; }
    eval(process.env.THEN ?? '');
    process.stdout.write(JSON.stringify(result));`;
  // \`then\` comes through the environment: \`node -e\`'s script is in execArgv, which is in the cache's key.
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: options.cwd ?? dir, env: { PATH: process.env.PATH, HOME: dir, WARDEN_CACHE_DIR: join(dir, 'cache'), ...(options.then === undefined ? {} : { THEN: options.then }), ...options.env } });
  return JSON.parse(out);
}

/** What plain Node (no cache) gives for the same require. */
function nodeAlone(dir: string, main: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): unknown {
  const script = `let result; try { result = require(${JSON.stringify(join(dir, 'pkg', main))}); } catch (error) { result = { error: error.code ?? error.name }; } process.stdout.write(JSON.stringify(result));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: options.cwd ?? dir, env: { PATH: process.env.PATH, HOME: dir, ...options.env } }));
}

const LOCKFILE = 'pkg/node_modules/.package-lock.json';

it('an npm install during a process that used the kept resolutions: the next process runs the package file npm replaced', () => {
  const dir = join(root, 'npm-mid-process');
  writeFiles(dir, {
    'pkg/main.js': "module.exports = require('dep')();",
    // Loaded later in the process (a command's or an activity's module, loaded on first use).
    'pkg/later.js': "module.exports = require('other');",
    'pkg/node_modules/dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', main: 'one.js' }),
    'pkg/node_modules/dep/one.js': "module.exports = () => 'dep one';",
    'pkg/node_modules/dep/two.js': "module.exports = () => 'dep two';",
    'pkg/node_modules/other/index.js': "module.exports = 'other';",
    [LOCKFILE]: '{}',
  });
  expect(run(dir, 'main.js')).toBe('dep one'); // keeps pkg -> dep/one.js
  // The second process answers `dep` from the kept resolution; meanwhile npm updates dep (its
  // main is now two.js) and rewrites its lockfile; then the process loads a module it had not.
  const npmUpdates = `
    const fs = require('node:fs');
    fs.writeFileSync(${JSON.stringify(join(dir, 'pkg/node_modules/dep/package.json'))}, JSON.stringify({ name: 'dep', version: '1.0.1', main: 'two.js' }));
    fs.writeFileSync(${JSON.stringify(join(dir, LOCKFILE))}, '{ "npm": "changed the tree" }');
    require(${JSON.stringify(join(dir, 'pkg', 'later.js'))});`;
  expect(run(dir, 'main.js', { then: npmUpdates })).toBe('dep one'); // loaded before the update: right
  expect(nodeAlone(dir, 'main.js')).toBe('dep two');
  // Any later process, long after npm finished: Node says two.js.
  expect(run(dir, 'main.js')).toBe('dep two');
});

it('a relative NODE_PATH: a process run from project B gets the file the require led to in project A', () => {
  const dir = join(root, 'relative-node-path');
  writeFiles(dir, {
    'pkg/main.js': "module.exports = require('plugin');",
    'pkg/node_modules/.package-lock.json': '{}',
    'pkg/node_modules/unrelated/index.js': '',
    'a/node_modules/.package-lock.json': '{}',
    'a/node_modules/plugin/index.js': "module.exports = 'plugin of project A';",
    'b/node_modules/.package-lock.json': '{}',
    'b/node_modules/plugin/index.js': "module.exports = 'plugin of project B';",
  });
  const env = { NODE_PATH: 'node_modules' };
  expect(run(dir, 'main.js', { cwd: join(dir, 'a'), env })).toBe('plugin of project A');
  expect(nodeAlone(dir, 'main.js', { cwd: join(dir, 'b'), env })).toBe('plugin of project B');
  expect(run(dir, 'main.js', { cwd: join(dir, 'b'), env })).toBe('plugin of project B');
});

it('NODE_PRESERVE_SYMLINKS (not in the key): a later process without it loads a linked package as the earlier one linked it', () => {
  const dir = join(root, 'preserve-symlinks');
  writeFiles(dir, {
    'pkg/main.js': "module.exports = require('linked');",
    'pkg/node_modules/y/index.js': "module.exports = 'y of pkg';",
    [LOCKFILE]: '{}',
    // A linked package (npm link, a workspace, a file: dependency), and the y its own folder finds.
    'work/linked/index.js': "module.exports = 'linked sees ' + require('y');",
    'work/node_modules/y/index.js': "module.exports = 'y beside linked';",
  });
  symlinkSync(join(dir, 'work/linked'), join(dir, 'pkg/node_modules/linked'));
  expect(run(dir, 'main.js', { env: { NODE_PRESERVE_SYMLINKS: '1' } })).toBe('linked sees y of pkg');
  expect(nodeAlone(dir, 'main.js')).toBe('linked sees y beside linked');
  expect(run(dir, 'main.js')).toBe('linked sees y beside linked');
});

it('a kept resolution whose file is gone: Node finds the other copy, the cache throws ENOENT', () => {
  const dir = join(root, 'file-gone');
  writeFiles(dir, {
    'pkg/main.js': "module.exports = require('dep');",
    'pkg/node_modules/dep/index.js': "module.exports = 'dep: ' + require('inner');",
    'pkg/node_modules/dep/node_modules/inner/index.js': "module.exports = 'nested inner';",
    'pkg/node_modules/inner/index.js': "module.exports = 'top inner';",
    [LOCKFILE]: '{}',
  });
  expect(run(dir, 'main.js')).toBe('dep: nested inner');
  rmSync(join(dir, 'pkg/node_modules/dep/node_modules'), { recursive: true });
  expect(nodeAlone(dir, 'main.js')).toBe('dep: top inner');
  expect(run(dir, 'main.js')).toBe('dep: top inner');
});
