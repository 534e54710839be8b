/**
 * A worker process of the build with the module code cache installed, on a prestarted workflow
 * thread, that runs one `stackLimit` workflow (test/worker/fixtures/stack-limit-workflow.ts) and
 * exits: what `warden run` does with the thread's cache, for the cases that read
 * workflow-thread.bin between such processes.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowStackTraces } from '../../worker/workflow-stack-traces';
import { REPO_ROOT } from './warden-test-env';

const SCRIPT = `
  const [root, folder, address, setting, build] = JSON.parse(process.argv[1]);
  (async () => {
    require(root + '/build/cli/module-code-cache.js').installModuleCodeCache({ build, role: 'cli' });
    const { prestartWorkflowThread } = require(root + '/build/worker/workflow-thread-prestart.js');
    const { holdWorkerOnThread } = require(root + '/build/worker/prestarted-thread-worker.js');
    const { withWorkflowStackTraces } = require(root + '/build/worker/workflow-stack-traces.js');
    const { NativeConnection } = require('@temporalio/worker');
    const { Client, Connection } = require('@temporalio/client');
    const thread = prestartWorkflowThread(setting);
    const connection = await NativeConnection.connect({ address });
    const taskQueue = 'bundle-cache-' + process.pid;
    const code = require('node:fs').readFileSync(folder + '/bundle.js', 'utf8');
    const worker = await withWorkflowStackTraces(setting, () => holdWorkerOnThread({ connection, taskQueue, workflowBundle: { code } }, thread).create());
    const clientConnection = await Connection.connect({ address });
    const result = await worker.runUntil(new Client({ connection: clientConnection }).workflow.execute('stackLimit', { taskQueue, workflowId: taskQueue + '-' + Date.now() }));
    await clientConnection.close();
    await connection.close();
    process.stdout.write(JSON.stringify(result));
  })().catch((error) => { console.error(error); process.exit(1); });`;

/** Writes the fixture workflow's bundle into `folder` (bundle.js), for {@link runCachedWorker}. */
export async function writeFixtureBundle(folder: string): Promise<void> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
  writeFileSync(join(folder, 'bundle.js'), bundle.code);
}

/** Runs one such worker process with its cache under `folder`/cache; returns the workflow's result. */
export function runCachedWorker(folder: string, address: string, setting: WorkflowStackTraces = 'off', build = 'bundle-cache-test'): unknown {
  const out = execFileSync(process.execPath, ['-e', SCRIPT, JSON.stringify([REPO_ROOT, folder, address, setting, build])], { cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: folder, WARDEN_CACHE_DIR: join(folder, 'cache') }, timeout: 300_000 });
  return JSON.parse(out) as unknown;
}

/** The workflow thread's cache file under `folder`/cache: its inode (a save renames a new file over it) and its entries for the bundle (`<V8 flags' stamp>\0vm.Script <name>`). */
export function threadCacheFile(folder: string): { inode: number; bundle: string[] } {
  const builds = readdirSync(join(folder, 'cache', 'code-cache'));
  const file = join(folder, 'cache', 'code-cache', builds[0]!, 'workflow-thread.bin');
  const bytes = readFileSync(file);
  const { entries } = JSON.parse(bytes.toString('utf8', 8, 8 + bytes.readUInt32LE(4))) as { entries: Record<string, number[]> };
  return { inode: statSync(file).ino, bundle: Object.keys(entries).filter((name) => /^[0-9a-f]*\0vm\.Script workflow-bundle-[0-9a-f]+\.js$/.test(name)) };
}
