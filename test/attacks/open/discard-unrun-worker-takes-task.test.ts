/**
 * A Worker created and then let go of unrun (worker/discard-unrun-worker.ts) takes no task from
 * its queue, however late its `shutdown()` follows `run()`: a task already waiting there is left
 * for the next worker. On a loaded machine the event loop may stall between the two calls; the
 * rows below make that stall long (the old run-then-shutdown handed the waiting workflow task to
 * the discarded worker in 6 of 10 tries with a 200 ms stall).
 *
 * Real parts: the test Temporal server, a real Worker (bundled fixture workflow), a workflow
 * started on its queue before it was created.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { canDiscardWithoutPolling, discardUnrunWorker } from '../../../worker/discard-unrun-worker';
import { testTemporalAddress } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';

const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let bundle: WorkflowBundle;
let connection: NativeConnection;
let clientConnection: Connection;
let client: Client;

beforeAll(async () => {
  const { address, namespace } = testTemporalAddress();
  bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'test/worker/fixtures/stack-limit-workflow.ts'), logger: silent });
  connection = await NativeConnection.connect({ address });
  clientConnection = await Connection.connect({ address });
  client = new Client({ connection: clientConnection, namespace });
}, 120_000);
afterAll(async () => {
  await connection?.close();
  await clientConnection?.close();
});

it('is taken on the SDK release this project installs', () => {
  // Otherwise createWardenWorker waits for the sandbox host before creating any Worker.
  expect(canDiscardWithoutPolling()).toBe(true);
});

it.each([
  ['shutdown in the same turn as run', 0],
  ['shutdown 1 s after run (a stalled event loop)', 1_000],
  ['shutdown 3 s after run', 3_000],
])('%s: the waiting task is not taken', async (_row, stallMs) => {
  const { namespace } = testTemporalAddress();
  const taskQueue = `warden-discard-${randomUUID()}`;
  const identity = `discarded-${randomUUID()}`;
  const handle = await client.workflow.start('anyWorkflow', { taskQueue, workflowId: `discard-${randomUUID()}` });
  try {
    const worker = await Worker.create({ connection, namespace, taskQueue, identity, workflowBundle: bundle });
    if (stallMs > 0) {
      const shutdown = worker.shutdown.bind(worker);
      // The stall a loaded machine puts between run() and shutdown().
      worker.shutdown = () => void setTimeout(() => {
        try {
          shutdown();
        } catch {
          // Already stopping.
        }
      }, stallMs);
    }
    await discardUnrunWorker(worker);
    expect(worker.getState()).toBe('STOPPED');
    const taken = ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowTaskStartedEventAttributes?.identity === identity);
    expect(taken).toEqual([]);
  } finally {
    await handle.terminate('test over').catch(() => undefined);
  }
}, 120_000);
