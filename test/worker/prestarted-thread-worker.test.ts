/**
 * A worker's workflow thread is started before the worker is created (worker/workflow-thread-prestart.ts,
 * worker/prestarted-thread-worker.ts; issue 17: `warden run`'s start-up), and the SDK's
 * main-thread debugger preload of the bundle is skipped. What must hold:
 * - the bundle reaches the thread exactly as the SDK's own `parseWorkflowCode` would give it;
 * - `Worker.create` runs workflows on the thread started before, not on one of its own, with the
 *   thread's realm set up as the stack-traces setting says;
 * - a thread nobody takes ends, and does not hold the process open;
 * - `warden run` starts one only when it will start its worker at once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prestartedThreadFor } from '../../cli/commands/run';
import { holdWorkerOnThread, installedSdkVersion, knownSdkInternals, parseBundleCode } from '../../worker/prestarted-thread-worker';
import { workflowBundle } from '../../worker/workflow-bundle';
import { prestartWorkflowThread } from '../../worker/workflow-thread-prestart';
import { withWorkflowStackTraces } from '../../worker/workflow-stack-traces';
import { REPO_ROOT } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const cacheDir = mkdtempSync(join(tmpdir(), 'warden-prestart-'));

describe('the SDK release the overrides were read against', () => {
  // The package takes @temporalio/worker by a caret range: another release line uses the SDK's own Worker.create.
  it.each([
    ['1.24.0', true],
    ['1.24.7', true],
    ['1.25.0', false],
    ['1.2.40', false],
    ['2.0.0', false],
    ['1.24.0-rc.1', false],
    [undefined, false],
  ] as const)('%s is known: %s', (version, known) => {
    expect(knownSdkInternals(version)).toBe(known);
  });

  it('the installed release is known (else the fast start is silently off: update the overrides)', () => {
    expect(knownSdkInternals(installedSdkVersion())).toBe(true);
  });
});

describe('the bundle handed to the thread', () => {
  it.each(['on', 'off'] as const)('is what the SDK parseWorkflowCode gives (stack traces %s)', async (stackTraces) => {
    const { code } = await workflowBundle(cacheDir, { stackTraces });
    const ours = parseBundleCode(code);
    const sdk = parseWorkflowCode(code) as { code: string; sourceMap: unknown; filename: string };
    expect(ours.filename).toBe(sdk.filename);
    expect(ours.sourceMap).toEqual(sdk.sourceMap);
    expect(ours.code === sdk.code).toBe(true);
  }, 600_000);

  it('without an inline source map is refused as the SDK refuses it', () => {
    expect(() => parseBundleCode('export const x = 1;\n')).toThrow("Can't extract inlined source map from the provided Workflow Bundle");
  });
});

describe('a prestarted thread nobody takes', () => {
  it('does not hold the process open, and discard ends it', () => {
    const script = `const { prestartWorkflowThread } = require(${JSON.stringify(join(REPO_ROOT, 'worker/workflow-thread-prestart.ts'))}); prestartWorkflowThread('off'); const t = prestartWorkflowThread('on'); t.discard().then(() => console.log(t.take() === undefined ? 'ended' : 'still there'));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 120_000 });
    expect(out.trim()).toBe('ended');
  }, 180_000);
});

describe('a worker on a prestarted thread', () => {
  let connection: NativeConnection;
  let clientConnection: Connection;
  let client: Client;
  beforeAll(async () => {
    const { address } = testTemporalAddress();
    connection = await NativeConnection.connect({ address });
    clientConnection = await Connection.connect({ address });
    client = new Client({ connection: clientConnection });
  }, 600_000);
  afterAll(async () => {
    await clientConnection?.close();
    await connection?.close();
  });

  it.each([
    ['off', 0],
    ['on', 10],
  ] as const)('runs workflows on that thread (stack traces %s: Error.stackTraceLimit %i in the sandbox)', async (stackTraces, limit) => {
    const thread = prestartWorkflowThread(stackTraces);
    const taskQueue = `prestart-${stackTraces}-${process.pid}`;
    const bundle = await import('@temporalio/worker').then(({ bundleWorkflowCode }) =>
      bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } }),
    );
    const worker = await withWorkflowStackTraces(stackTraces, () => holdWorkerOnThread({ connection, taskQueue, workflowBundle: bundle }, thread).create());
    // Taken by the worker: nobody else gets it, and discarding it now leaves the worker's thread alone.
    expect(thread.take()).toBeUndefined();
    await thread.discard();
    const result = await worker.runUntil(client.workflow.execute('stackLimit', { taskQueue, workflowId: `${taskQueue}-${Date.now()}` }));
    expect(result).toBe(limit);
  }, 600_000);

  it('falls back to a thread of its own when the prestarted one is gone', async () => {
    const thread = prestartWorkflowThread('on');
    await thread.discard();
    const taskQueue = `prestart-gone-${process.pid}`;
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    const worker = await holdWorkerOnThread({ connection, taskQueue, workflowBundle: bundle }, thread).create();
    expect(worker).toBeInstanceOf(Worker);
    expect(await worker.runUntil(client.workflow.execute('stackLimit', { taskQueue, workflowId: `${taskQueue}-${Date.now()}` }))).toBe(10);
  }, 600_000);
});

describe("a prestarted thread's workflow bundle and the code cache (the build's code, as bin/warden.js runs it)", () => {
  // What a worker process of the build does with the module code cache installed: the thread compiles
  // the bundle with it, saves the data when the SDK destroys the thread (after the workflow ran), and
  // a second process takes it (V8 accepts it only under the stack-trace limit of the compile: else it
  // compiles and saves again, and the file is rewritten).
  it.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))('a second worker takes the bundle from the cache the first saved, nothing saved again', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'warden-bundle-cache-'));
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    writeFileSync(join(folder, 'bundle.js'), bundle.code);
    const { address } = testTemporalAddress();
    const script = `
      const [root, folder, address] = JSON.parse(process.argv[1]);
      (async () => {
        require(root + '/build/cli/module-code-cache.js').installModuleCodeCache({ build: 'bundle-cache-test', role: 'cli' });
        const { prestartWorkflowThread } = require(root + '/build/worker/workflow-thread-prestart.js');
        const { holdWorkerOnThread } = require(root + '/build/worker/prestarted-thread-worker.js');
        const { withWorkflowStackTraces } = require(root + '/build/worker/workflow-stack-traces.js');
        const { NativeConnection } = require('@temporalio/worker');
        const { Client, Connection } = require('@temporalio/client');
        const thread = prestartWorkflowThread('off');
        const connection = await NativeConnection.connect({ address });
        const taskQueue = 'bundle-cache-' + process.pid;
        const code = require('node:fs').readFileSync(folder + '/bundle.js', 'utf8');
        const worker = await withWorkflowStackTraces('off', () => holdWorkerOnThread({ connection, taskQueue, workflowBundle: { code } }, thread).create());
        const clientConnection = await Connection.connect({ address });
        const result = await worker.runUntil(new Client({ connection: clientConnection }).workflow.execute('stackLimit', { taskQueue, workflowId: taskQueue + '-' + Date.now() }));
        await clientConnection.close();
        await connection.close();
        process.stdout.write(JSON.stringify(result));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const run = () => JSON.parse(execFileSync(process.execPath, ['-e', script, JSON.stringify([REPO_ROOT, folder, address])], { cwd: REPO_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: folder, WARDEN_CACHE_DIR: join(folder, 'cache') }, timeout: 300_000 })) as unknown;
    /** The workflow thread's cache file: its inode (a save renames a new file over it) and its entry for the bundle. */
    const threadCache = () => {
      const builds = readdirSync(join(folder, 'cache', 'code-cache'));
      const file = join(folder, 'cache', 'code-cache', builds[0]!, 'workflow-thread.bin');
      const bytes = readFileSync(file);
      const { entries } = JSON.parse(bytes.toString('utf8', 8, 8 + bytes.readUInt32LE(4))) as { entries: Record<string, number[]> };
      return { inode: statSync(file).ino, bundle: Object.keys(entries).filter((name) => /^vm\.Script workflow-bundle-[0-9a-f]+\.js$/.test(name)) };
    };
    try {
      expect(run()).toBe(0);
      const first = threadCache();
      expect(first.bundle).toHaveLength(1);
      expect(run()).toBe(0);
      expect(threadCache()).toEqual(first);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 600_000);
});

describe('warden run starts the thread only for a worker it starts at once', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-prestart-state-'));
  it.each([
    ['embedded server', false, false, {}, true],
    ['--no-worker', false, true, {}, false],
    ['a cluster (TEMPORAL_ADDRESS)', false, false, { TEMPORAL_ADDRESS: '127.0.0.1:1' }, false],
    ['a cluster with --worker', true, false, { TEMPORAL_ADDRESS: '127.0.0.1:1' }, true],
    ['a bad stack-traces setting (the run reports it)', false, false, { WARDEN_WORKFLOW_STACK_TRACES: 'maybe' }, false],
  ] as const)('%s', async (_case, worker, noWorker, env, started) => {
    const thread = prestartedThreadFor(worker, noWorker, { WARDEN_STATE_DIR: stateDir, ...env });
    expect(thread !== undefined).toBe(started);
    await thread?.discard();
  });
});
