/**
 * Attack on worker/workflow-thread-prestart.ts (1152181): the workflow thread's code cache is saved
 * at the end of the thread's first script so that it is made "under the flags of now". But V8's
 * flags are the process's: `withWorkflowStackTraces('off')` sets `--stack-trace-limit=0` for every
 * thread as the main thread's `Worker.create` begins, and V8 stamps cached data with the flags in
 * force when it is made. Whether the thread's save is made under the default limit or under 0
 * depends on which came first, the main thread reaching `Worker.create` or the thread finishing
 * its modules; a next process whose order differs refuses all of it, compiles every module again
 * and rewrites the whole file. Measured: alternating the order rewrote workflow-thread.bin
 * (1.1 MB here, 2.7 MB with the bundle's data) on every run; the same order twice rewrote nothing.
 * In `warden run` at load 3-8 the order was the same in 10 runs (the thread, on its cache, saves
 * first), so this is latent: a run whose thread loads slower than the main thread reaches
 * `Worker.create` (a cold or refused cache, a loaded machine) saves data the next run refuses.
 * Fixed (s19): the cache keeps each entry under the V8 flags its data was made under, looks it up
 * under the flags of the compile, and never replaces data with data of a script compiled under
 * other flags than the save's (cli/module-code-cache.ts `v8FlagsNow`, `saveModuleCodeCache`): once
 * each order has run, neither rewrites the file (the table for any flag: test/cli/module-code-cache.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

/** A process that prestarts the thread and, with `early`, enters `Worker.create`'s flag setting before the thread has loaded. */
const SCRIPT = `
  const [root, early] = JSON.parse(process.argv[1]);
  require(root + '/build/cli/module-code-cache.js').installModuleCodeCache({ build: 'thread-cache-flags-test', role: 'cli' });
  const { prestartWorkflowThread } = require(root + '/build/worker/workflow-thread-prestart.js');
  const thread = prestartWorkflowThread('off');
  // What withWorkflowStackTraces('off', () => Worker.create(...)) does on entry.
  if (early) require('node:v8').setFlagsFromString('--stack-trace-limit=0');
  setTimeout(() => void thread.discard(), 4000);`;

describe.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))("the workflow thread's code cache", () => {
  it("is not rewritten by runs whose worker started before the thread had loaded and after it, in turn, once each order has run", () => {
    const folder = mkdtempSync(join(tmpdir(), 'warden-thread-flags-'));
    const run = (early: boolean) => execFileSync(process.execPath, ['-e', SCRIPT, JSON.stringify([REPO_ROOT, early])], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: folder, WARDEN_CACHE_DIR: join(folder, 'cache') }, timeout: 120_000 });
    const inode = () => {
      const [build] = readdirSync(join(folder, 'cache', 'code-cache'));
      return statSync(join(folder, 'cache', 'code-cache', build!, 'workflow-thread.bin')).ino;
    };
    try {
      run(true);
      run(false);
      const settled = inode();
      // On the code before: each switch of the order rewrote the file.
      for (const early of [true, false, true]) {
        run(early);
        expect(inode()).toBe(settled);
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 300_000);
});
