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
import { runCachedWorker, threadCacheFile, writeFixtureBundle } from '../support/thread-code-cache-kit';

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
    await writeFixtureBundle(folder);
    const { address } = testTemporalAddress();
    const run = () => runCachedWorker(folder, address);
    const threadCache = () => threadCacheFile(folder);
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
