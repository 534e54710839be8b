/**
 * Attack on the workflow thread's code cache (worker/workflow-thread-prestart.ts, 1152181 "never
 * rewritten each run"): the cache key holds the process's command-line flags (cli/module-code-cache.ts
 * `cacheKey`: "processes run with other flags keep other files rather than rewrite one file in
 * turn"), but WARDEN_WORKFLOW_STACK_TRACES sets `--stack-trace-limit` at run time
 * (`withWorkflowStackTraces`), which is not in the key. Runs with `off` (the default) and `on` share
 * one workflow-thread.bin, and each refuses the other's data for the bundle (V8 stamps it with the
 * flags), compiles it again and rewrites the whole file: measured with `warden run` on one cache
 * folder, off/on/on/off/on/off rewrote it at every switch (2.7 MB <-> 7.5 MB).
 * Expected: once each setting has run, neither rewrites the file again.
 * Fixed (s18): each setting has a file of its own (`workflow-thread.bin`, `workflow-thread-stack-traces.bin`).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';
import { runCachedWorker, threadCacheFile, writeFixtureBundle } from '../support/thread-code-cache-kit';

/** The inode of each setting's thread cache file (a file rewritten gets a new one: saves go by rename). */
function inodes(folder: string): { off: number; on: number } {
  const root = join(folder, 'cache', 'code-cache');
  const [build] = readdirSync(root);
  const file = (name: string) => statSync(join(root, build!, name)).ino;
  return { off: file('workflow-thread.bin'), on: file('workflow-thread-stack-traces.bin') };
}

describe.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))("the workflow thread's code cache across stack-trace settings", () => {
  it('a run with the other WARDEN_WORKFLOW_STACK_TRACES setting does not rewrite the file each time', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'warden-thread-setting-'));
    await writeFixtureBundle(folder);
    const { address } = testTemporalAddress();
    const run = (setting: 'on' | 'off') => runCachedWorker(folder, address, setting, 'thread-setting-test');
    try {
      run('off');
      run('on');
      const settled = inodes(folder);
      expect(settled.off).toBe(threadCacheFile(folder).inode);
      expect(settled.on).toBeGreaterThan(0);
      run('off');
      run('on');
      expect(inodes(folder)).toEqual(settled);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 600_000);
});
