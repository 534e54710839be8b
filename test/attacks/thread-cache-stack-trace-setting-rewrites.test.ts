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
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

describe.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))("the workflow thread's code cache across stack-trace settings", () => {
  it('a run with the other WARDEN_WORKFLOW_STACK_TRACES setting does not rewrite the file each time', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'warden-thread-setting-'));
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    writeFileSync(join(folder, 'bundle.js'), bundle.code);
    const { address } = testTemporalAddress();
    // As prestarted-thread-worker.test.ts's "nothing saved again" case, with the setting as an argument.
    const script = `
      const [root, folder, address, setting] = JSON.parse(process.argv[1]);
      (async () => {
        require(root + '/build/cli/module-code-cache.js').installModuleCodeCache({ build: 'thread-setting-test', role: 'cli' });
        const { prestartWorkflowThread } = require(root + '/build/worker/workflow-thread-prestart.js');
        const { holdWorkerOnThread } = require(root + '/build/worker/prestarted-thread-worker.js');
        const { withWorkflowStackTraces } = require(root + '/build/worker/workflow-stack-traces.js');
        const { NativeConnection } = require('@temporalio/worker');
        const { Client, Connection } = require('@temporalio/client');
        const thread = prestartWorkflowThread(setting);
        const connection = await NativeConnection.connect({ address });
        const taskQueue = 'thread-setting-' + process.pid;
        const code = require('node:fs').readFileSync(folder + '/bundle.js', 'utf8');
        const worker = await withWorkflowStackTraces(setting, () => holdWorkerOnThread({ connection, taskQueue, workflowBundle: { code } }, thread).create());
        const clientConnection = await Connection.connect({ address });
        const result = await worker.runUntil(new Client({ connection: clientConnection }).workflow.execute('stackLimit', { taskQueue, workflowId: taskQueue + '-' + Date.now() }));
        await clientConnection.close();
        await connection.close();
        process.stdout.write(JSON.stringify(result));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const run = (setting: 'on' | 'off') => execFileSync(process.execPath, ['-e', script, JSON.stringify([REPO_ROOT, folder, address, setting])], { cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: folder, WARDEN_CACHE_DIR: join(folder, 'cache') }, timeout: 300_000 });
    const inode = () => {
      const [build] = readdirSync(join(folder, 'cache', 'code-cache'));
      return statSync(join(folder, 'cache', 'code-cache', build!, 'workflow-thread.bin')).ino;
    };
    try {
      run('off');
      run('on');
      const settled = inode();
      run('off');
      run('on');
      expect(inode()).toBe(settled);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 600_000);
});
