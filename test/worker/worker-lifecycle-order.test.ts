/**
 * Fixed finding (s11 attack on "a Warden worker that never runs never polls"; low; was
 * test/attacks/open/worker-run-after-close-or-twice.test.ts): `WardenWorker.run()` guarded only the
 * task-queue worker it held, so a lifecycle call out of order did harm:
 *
 * - `close()` then `run()`: the held worker refused (TypeError), but `run()` still created the
 *   data-plane Temporal Worker and registered its Core worker under the worker's identity, with
 *   its sandbox host closed and its stores and lease released;
 * - `run()` twice: the second call failed the same way, and its `finally` closed the MCP pool,
 *   the sandbox host, the stores and the lease of the worker the first call was running;
 * - `close()` while running closed those parts under the run, which went on polling.
 *
 * Fixed for the class (worker/create-warden-worker.ts, `WorkerLifecycle`): one state shared by
 * `run()` and `close()` (unrun / running / ended); `run()` refuses at once with
 * `ERR_WORKER_STATE`, creating nothing, unless unrun; `close()` while running stops the run and
 * resolves once it has stopped and closed its own parts; `close()` when ended does nothing. The
 * table runs every order on real parts (the test Temporal server, the worker's own sandbox host,
 * the SDK's `Runtime.registerWorker`); each row fails on the old code. The fallback `HeldWorker`
 * of other SDK release lines gets the same once-guard (last row).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import { afterAll, expect, it } from 'vitest';
import { connectWorkerConnection } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { createWardenWorker, installQuietRuntime, type WardenWorker } from '../../worker/create-warden-worker';
import { holdWorkerOnThread } from '../../worker/prestarted-thread-worker';
import { SANDBOX_PROBE_CALL } from '../../sandbox/sandbox-messages';
import { coreWorkersRegistered, recordCoreWorkers } from '../support/core-worker-registrations';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-lifecycle-order-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

interface Case {
  worker: WardenWorker;
  identity: string;
  /** A run() that goes on until the case ends (or close() stops it), with whether it has settled. */
  runOn(): { settled: () => boolean; done: Promise<unknown>; stop: () => void };
  /** The sandbox host's answer to the probe call (the one call it runs without a credential). */
  probe(): Promise<unknown>;
}

async function withWorker(check: (c: Case) => Promise<void>, namespaceOf: (namespace: string) => string = (n) => n): Promise<void> {
  installQuietRuntime();
  recordCoreWorkers();
  const { address, namespace } = testTemporalAddress();
  const connection: NativeConnection = await connectWorkerConnection({ ...loadTemporalConfig({}), address, namespace });
  const identity = `lifecycle-order-${randomUUID()}`;
  const stops: (() => void)[] = [];
  try {
    const worker = await createWardenWorker({
      connection,
      namespace: namespaceOf(namespace),
      taskQueue: `warden-lifecycle-order-${randomUUID()}`,
      identity,
      stateDir,
      cacheDir: join(TEST_STATE_DIR, 'cache'),
      env: { PATH: process.env.PATH },
    });
    const runOn = () => {
      let stop!: () => void;
      const until = new Promise<void>((resolve) => (stop = resolve));
      stops.push(stop);
      let settled = false;
      const done = worker.run(until).finally(() => (settled = true));
      done.catch(() => undefined);
      return { settled: () => settled, done, stop };
    };
    try {
      await check({ worker, identity, runOn, probe: () => worker.sandbox.run(SANDBOX_PROBE_CALL).catch((error: unknown) => error) });
    } finally {
      for (const stop of stops) stop();
      await worker.close().catch(() => undefined);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

const READY = { ok: true, output: 'ready' };
const refusedOutOfOrder = (error: unknown) => expect(error).toMatchObject({ code: 'ERR_WORKER_STATE' });

it.each<[string, (c: Case) => Promise<void>]>([
  [
    'close() then run(): run() refuses and registers no Core worker',
    async ({ worker, identity }) => {
      await worker.close();
      const refused = await worker.run(Promise.resolve()).catch((error: unknown) => error);
      expect(coreWorkersRegistered(identity)).toBe(0);
      refusedOutOfOrder(refused);
    },
  ],
  [
    'run() twice: the second refuses, registers nothing more and leaves the running worker\'s sandbox host answering',
    async ({ worker, identity, runOn, probe }) => {
      const first = runOn();
      expect(await probe()).toMatchObject(READY);
      const refused = await worker.run(Promise.resolve()).catch((error: unknown) => error);
      expect(await probe()).toMatchObject(READY);
      refusedOutOfOrder(refused);
      first.stop();
      await first.done;
      // The first run's two Temporal workers (task queue and data plane), and no third.
      expect(coreWorkersRegistered(identity)).toBe(2);
    },
  ],
  [
    'run(), close(), close(): close() stops the run before it resolves, then closes the parts; the second close() is a no-op',
    async ({ worker, runOn, probe }) => {
      const first = runOn();
      expect(await probe()).toMatchObject(READY);
      await worker.close();
      // The run has stopped by the time close() resolved (its until never settled): not its parts closed under it.
      expect(first.settled()).toBe(true);
      await first.done;
      expect(await probe()).toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });
      await expect(worker.close()).resolves.toBeUndefined();
      refusedOutOfOrder(await worker.run(Promise.resolve()).catch((error: unknown) => error));
    },
  ],
  [
    'close() racing run()\'s start: close() stops the run as it starts, and resolves after it',
    async ({ worker, runOn }) => {
      const first = runOn();
      await worker.close();
      expect(first.settled()).toBe(true);
      await first.done;
    },
  ],
])('%s', async (_name, check) => {
  await withWorker(check);
}, 300_000);

it('run() after a failed start refuses and registers nothing more', async () => {
  // The start fails where the SDK validates its Core worker: a namespace the server does not have.
  await withWorker(
    async ({ worker, identity }) => {
      const failed = await worker.run(Promise.resolve()).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(Error);
      expect(failed).not.toMatchObject({ code: 'ERR_WORKER_STATE' });
      const afterFirst = coreWorkersRegistered(identity);
      expect(afterFirst).toBeGreaterThan(0);
      const refused = await worker.run(Promise.resolve()).catch((error: unknown) => error);
      expect(coreWorkersRegistered(identity)).toBe(afterFirst);
      refusedOutOfOrder(refused);
    },
    () => `warden-no-such-namespace-${randomUUID()}`,
  );
}, 300_000);

it('the HeldWorker of another SDK release line: create() after discard() refuses and registers no Core worker', async () => {
  installQuietRuntime();
  recordCoreWorkers();
  const { address, namespace } = testTemporalAddress();
  const connection = await connectWorkerConnection({ ...loadTemporalConfig({}), address, namespace });
  const identity = `lifecycle-order-held-${randomUUID()}`;
  try {
    const held = holdWorkerOnThread({ connection, namespace, taskQueue: `warden-lifecycle-order-${randomUUID()}`, identity, activities: { noop: async () => undefined } }, undefined, '1.25.0');
    await held.prepared;
    await held.discard();
    await expect(held.create()).rejects.toThrow(TypeError);
    expect(coreWorkersRegistered(identity)).toBe(0);
  } finally {
    await connection.close().catch(() => undefined);
  }
}, 300_000);
