/**
 * Attack on the issue 17 start-up change (e3f56f4): can a worker whose sandbox host failed to boot
 * still take a task from its queue? `createWardenWorker` builds the Temporal workers while the host
 * boots (`SandboxClient.boot`); when the host fails, the already-built workers are let go of
 * unrun. The SDK has no close for an unrun Worker, so that was `run()` then `shutdown()`, and
 * `run()` starts the pollers: a task already waiting on the queue (another run's task, an
 * abandoned task whose compensations wait for "the next worker") could be taken by a worker whose
 * host never answered its probe. A quiet machine never showed it; a CI run under load did (one
 * workflow task taken). Fixed in worker/discard-unrun-worker.ts: Core is told to shut down before
 * `run()`, so no poll reaches the server (test/attacks/open/discard-unrun-worker-takes-task.test.ts holds the
 * stalled-event-loop rows that fail on the old code). This test keeps the end-to-end case.
 *
 * The premise is checked (the host was killed before it answered, and the start failed with
 * ERR_SANDBOX_CRASHED), so a run where the kill came too late fails rather than passes vacuously.
 *
 * Real parts: the test Temporal server, a real forked sandbox host (SIGKILLed before it answers,
 * as an OOM kill or a crash at boot would), a real agentTask waiting on the queue.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connectClient, connectWorkerConnection } from '../../../temporal/connect';
import { loadTemporalConfig } from '../../../temporal/temporal-config';
import { parseTask, parseTaskText } from '../../../task/load-task-file';
import { startAgentTask } from '../../../client/start-agent-task';
import { createWardenWorker, installQuietRuntime } from '../../../worker/create-warden-worker';
import { testTemporalAddress } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-failed-host-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** Kills (SIGKILL) every child of this process running the sandbox host, as soon as it appears (its children only: /proc/<pid>/task/<tid>/children). */
function killSandboxHostsAsTheyStart(): () => number {
  let killed = 0;
  const timer = setInterval(() => {
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      let children: string[];
      try {
        children = readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
      } catch {
        continue; // thread gone meanwhile
      }
      for (const child of children) {
        try {
          if (!readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('sandbox-host')) continue;
          process.kill(Number(child), 'SIGKILL');
          killed += 1;
        } catch {
          // gone meanwhile
        }
      }
    }
  }, 2);
  return () => {
    clearInterval(timer);
    return killed;
  };
}

it('a worker whose sandbox host never answered takes no task from its queue', async () => {
  installQuietRuntime();
  const { address, namespace } = testTemporalAddress();
  const config = { ...loadTemporalConfig({}), address, namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-failed-host-${randomUUID()}`;
  const identity = `failed-host-${randomUUID()}`;
  try {
    // A task already waiting on the queue when the worker starts.
    const task = parseTask(parseTaskText(readFileSync(join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8'), 'hello.yaml'), 'hello.yaml', join(REPO_ROOT, 'examples'));
    const handle = await startAgentTask(client, task, { taskQueue, workflowId: `failed-host-${randomUUID()}` });

    const stopKilling = killSandboxHostsAsTheyStart();
    let failure: unknown;
    try {
      const worker = await createWardenWorker({ connection: workerConnection, namespace, taskQueue, identity, stateDir, cacheDir: join(REPO_ROOT, '.warden-test', 'cache'), env: { PATH: process.env.PATH } });
      await worker.close();
    } catch (error) {
      failure = error;
    }
    const killed = stopKilling();
    // The premise: the host was killed and the start failed because of it.
    expect(killed).toBeGreaterThan(0);
    expect(failure).toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });

    const history = await handle.fetchHistory();
    const takenBy = (history.events ?? [])
      .filter((e) => e.workflowTaskStartedEventAttributes != null || e.activityTaskStartedEventAttributes != null)
      .map((e) => e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity);
    await handle.terminate('test over').catch(() => undefined);
    // Nothing of the waiting task may have been handed to the worker that failed to start.
    expect(takenBy.filter((who) => who === identity)).toEqual([]);
  } finally {
    await workerConnection.close().catch(() => undefined);
    await connection.close();
  }
}, 300_000);
