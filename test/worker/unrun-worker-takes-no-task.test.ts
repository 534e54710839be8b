/**
 * A Warden worker that never runs takes no task (issue 17). `createWardenWorker` prepares its
 * task-queue worker while the sandbox host boots; when the host never answers or crashes, or the
 * caller calls `close()` instead of `run()`, that worker must never poll: a task already waiting
 * on the queue (another run's task, an abandoned task whose compensations wait for "the next
 * worker") stays for a worker that runs. The SDK has no close for a created, unrun Worker (the
 * old release, `run()` then `shutdown()` even with Core told to shut down first, still took a
 * waiting workflow task once in a full CI run), so no Temporal Worker, and no Core worker, is
 * created before `run()` (worker/create-warden-worker.ts, `holdWorkerOnThread` in
 * worker/prestarted-thread-worker.ts).
 *
 * Each row checks the server (no workflow or activity task of the waiting task started under the
 * worker's identity, no poller of that identity on the queue) and that no Core worker was
 * registered under the identity at all, which is what makes the class closed rather than unlikely
 * (the old code registered both Temporal workers before the host answered, in every row). The
 * last row is the control: the same worker, run, registers both and takes the task.
 *
 * Real parts: the test Temporal server, real forked sandbox hosts (one stopped with SIGSTOP so it
 * never answers its probe, one SIGKILLed before it answers, as an OOM kill or a crash at boot
 * would), a real agentTask waiting on the queue.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { parseTask, parseTaskText } from '../../task/load-task-file';
import { startAgentTask } from '../../client/start-agent-task';
import { recentPollers } from '../../cli/temporal-client';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { createWardenWorker, installQuietRuntime } from '../../worker/create-warden-worker';
import type { PrebootedSandboxHost } from '../../worker/prebooted-sandbox-host';
import { coreWorkersRegistered, recordCoreWorkers } from '../support/core-worker-registrations';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-unrun-worker-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** A host booted as the worker boots its own, with `act` applied to its process before it can answer. */
function hostThat(act: ((pid: number) => void) | undefined): PrebootedSandboxHost {
  return {
    async take(options) {
      // No boot allowance: a stopped host's probe fails at its own 5 s timeout, not 15 s later.
      const booted = SandboxClient.boot({ ...options, bootAllowanceMs: 0, deadlineGraceMs: 0 });
      if (act !== undefined) act(booted.client.pid!);
      return booted;
    },
    async discard() {},
  };
}

/** Whether the server handed any workflow or activity task of `workflowId` to `identity`. */
async function takenBy(client: Client, workflowId: string, identity: string): Promise<boolean> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).some((e) => (e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity) === identity);
}

type Row = {
  /** The sandbox host the worker gets; undefined: its own, which answers. */
  host: ((pid: number) => void) | undefined;
  /** What the caller does with the worker it got. */
  then: 'close' | 'run';
  failure?: string;
};

it.each<[string, Row]>([
  ['the sandbox host never answers', { host: (pid) => process.kill(pid, 'SIGSTOP'), then: 'close', failure: 'ERR_SANDBOX_CRASHED' }],
  ['the sandbox host crashes before it answers', { host: (pid) => process.kill(pid, 'SIGKILL'), then: 'close', failure: 'ERR_SANDBOX_CRASHED' }],
  ['close() without run() after the host answered', { host: undefined, then: 'close' }],
  ['run() after the host answered (control)', { host: undefined, then: 'run' }],
])('%s', async (_row, { host, then, failure }) => {
  installQuietRuntime();
  recordCoreWorkers();
  const { address, namespace } = testTemporalAddress();
  const config = { ...loadTemporalConfig({}), address, namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-unrun-${randomUUID()}`;
  const identity = `unrun-${randomUUID()}`;
  let workflowId: string | undefined;
  try {
    // A task already waiting on the queue when the worker starts.
    const task = parseTask(parseTaskText(readFileSync(join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8'), 'hello.yaml'), 'hello.yaml', join(REPO_ROOT, 'examples'));
    workflowId = (await startAgentTask(client, task, { taskQueue, workflowId: `unrun-${randomUUID()}` })).workflowId;
    const id = workflowId;

    let startFailure: unknown;
    try {
      const worker = await createWardenWorker({
        connection: workerConnection,
        namespace,
        taskQueue,
        identity,
        stateDir,
        cacheDir: join(TEST_STATE_DIR, 'cache'),
        env: { PATH: process.env.PATH },
        ...(host === undefined ? {} : { sandboxHost: hostThat(host) }),
      });
      if (then === 'close') await worker.close();
      else {
        // Until the server handed it the waiting task's first workflow task.
        const handed = (async () => {
          while (!(await takenBy(client, id, identity))) await new Promise((resolve) => setTimeout(resolve, 100));
        })();
        await worker.run(handed);
      }
    } catch (error) {
      startFailure = error;
    }
    // The premise: a host made to fail did fail the start, so the row is not passed vacuously.
    if (failure === undefined) expect(startFailure).toBeUndefined();
    else expect(startFailure).toMatchObject({ code: failure });

    const ran = then === 'run';
    expect(coreWorkersRegistered(identity)).toBe(ran ? 2 : 0);
    expect(await takenBy(client, id, identity)).toBe(ran);
    const pollers = [...(await recentPollers(client, taskQueue, 90_000, 'workflow')), ...(await recentPollers(client, taskQueue, 90_000, 'activity'))];
    expect(pollers.includes(identity)).toBe(ran);
  } finally {
    if (workflowId !== undefined) await client.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
    await workerConnection.close().catch(() => undefined);
    await connection.close();
  }
}, 300_000);
