/**
 * Open finding (s11 attack on "a Warden worker that never runs never polls", worker/create-warden-worker.ts):
 * `run()` guards only the task-queue worker it holds (`HeldWorker.create`, once); everything else
 * it does is not guarded against a worker that was closed or is already running:
 *
 * - `close()` then `run()`: the held worker refuses (TypeError, discarded), but `run()` still
 *   creates the data-plane Temporal Worker (`Worker.create(dataPlaneOptions)`), registers its Core
 *   worker under the worker's identity on `<queue>@<id>` and runs it until `stopAll` — the SDK's
 *   run-then-shutdown that issue 17 found can take a waiting task — with its sandbox host closed
 *   and its stores and lease released by `close()`.
 * - `run()` twice: the second call fails the same way, and its `finally` closes the MCP pool, the
 *   sandbox host and the stores and lease (`release()`) of the worker the first call is running:
 *   the running worker's next tool call finds no host.
 *
 * Each row checks with real parts (the test Temporal server, the worker's own forked sandbox
 * host, the SDK's `Runtime.registerWorker`): after `close()`, `run()` registers no Core worker; a
 * second `run()` leaves the first one's sandbox host answering. Suggested fix: `run()` and `close()`
 * share one state (`unrun` / `running` / `ended`): `run()` refuses at once, creating nothing, when
 * the worker is not `unrun` (a typed error, e.g. ERR_WORKER_ENDED), and `close()` while running
 * stops the run rather than closing its parts under it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connectWorkerConnection } from '../../../temporal/connect';
import { loadTemporalConfig } from '../../../temporal/temporal-config';
import { createWardenWorker, installQuietRuntime, type WardenWorker } from '../../../worker/create-warden-worker';
import { SANDBOX_PROBE_CALL } from '../../../sandbox/sandbox-messages';
import { coreWorkersRegistered, recordCoreWorkers } from '../../support/core-worker-registrations';
import { testTemporalAddress } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-run-after-close-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

async function withWorker(check: (worker: WardenWorker, identity: string) => Promise<void>): Promise<void> {
  installQuietRuntime();
  recordCoreWorkers();
  const { address, namespace } = testTemporalAddress();
  const workerConnection = await connectWorkerConnection({ ...loadTemporalConfig({}), address, namespace });
  const identity = `run-after-close-${randomUUID()}`;
  try {
    const worker = await createWardenWorker({
      connection: workerConnection,
      namespace,
      taskQueue: `warden-run-after-close-${randomUUID()}`,
      identity,
      stateDir,
      cacheDir: join(REPO_ROOT, '.warden-test', 'cache'),
      env: { PATH: process.env.PATH },
    });
    await check(worker, identity);
  } finally {
    await workerConnection.close().catch(() => undefined);
  }
}

it('close() then run(): no Core worker is registered', async () => {
  await withWorker(async (worker, identity) => {
    await worker.close();
    // Whatever run() answers (it should refuse), it must create nothing that polls.
    await worker.run(Promise.resolve()).catch(() => undefined);
    expect(coreWorkersRegistered(identity)).toBe(0);
  });
}, 300_000);

it('run() twice: the second call leaves the running worker\'s sandbox host answering', async () => {
  await withWorker(async (worker) => {
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const first = worker.run(stopped);
    try {
      // The premise: the host answers a tool call while the first run() runs.
      // (The probe is the one call the host runs without a credential.)
      const call = () => worker.sandbox.run(SANDBOX_PROBE_CALL);
      expect(await call()).toMatchObject({ ok: true, output: 'ready' });
      await worker.run(Promise.resolve()).catch(() => undefined);
      expect(await call().catch((error: unknown) => error)).toMatchObject({ ok: true, output: 'ready' });
    } finally {
      stop();
      await first.catch(() => undefined);
    }
  });
}, 300_000);
