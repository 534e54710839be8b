/**
 * Attack on `warden run`'s reuse of a running `warden worker` (issue 17): a co-tenant on the
 * machine (any process that can reach the Temporal server's port) polls the user's task queue
 * under a forged identity `warden-worker/<pid>@<host>/state-<fingerprint>`. Everything in it is
 * the poller's own claim: the fingerprint is SHA-256 of the user's state folder path (known or
 * guessed: ~/.warden), the host is this machine's name, and the pid only has to name some live
 * process (pid 1 always does; `processExists` even accepts EPERM, a process of another user).
 * `warden run` then takes the poller for the user's own worker, starts no worker of its own,
 * prints "running on the standalone worker ... (same state folder)" instead of the note it gives
 * for a foreign worker, and hands every workflow task of the run, with the task's whole input
 * (intent, user, prompts, tools), to the attacker's poller.
 *
 * Safe behaviour: a run reuses only a worker that its own state folder vouches for (something only
 * the folder's owner can write, matched against the poller), never a poller on its word alone.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectClient } from '../../../temporal/connect';
import { loadTemporalConfig } from '../../../temporal/temporal-config';
import { stateDirFingerprint } from '../../../worker/standalone-worker';
import { collectOutput, exitOf, stopChildren, waitForOutput } from '../../support/child-output';
import { testTemporalAddress } from '../../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');
const taskQueue = `warden-forged-${randomUUID()}`;
/** The forged identity: pid 1 (a live process that is not a Warden worker), this host, the victim's state folder. */
const forged = `warden-worker/1@${hostname()}/state-${stateDirFingerprint(TEST_STATE_DIR)}`;

let client: Client;
let connection: Connection;
const stopPolling = new AbortController();
/** Workflow types of the tasks the attacker's poller received. */
const stolen: string[] = [];
let firstStolen!: () => void;
const stolenOne = new Promise<void>((resolve) => (firstStolen = resolve));
let polling: Promise<void>;
const pollErrors: string[] = [];

beforeAll(async () => {
  const { address, namespace } = testTemporalAddress();
  ({ client, connection } = await connectClient({ ...loadTemporalConfig({}), address, namespace }));
  // The attacker: a bare gRPC long poll on the victim's queue under the forged identity.
  polling = (async () => {
    while (!stopPolling.signal.aborted) {
      try {
        const task = await connection.withAbortSignal(stopPolling.signal, () =>
          connection.withDeadline(Date.now() + 30_000, () => client.workflowService.pollWorkflowTaskQueue({ namespace, identity: forged, taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL } })),
        );
        if (task.taskToken !== undefined && task.taskToken !== null && task.taskToken.length > 0) {
          stolen.push(task.workflowType?.name ?? '?');
          firstStolen();
        }
      } catch (error) {
        if (stopPolling.signal.aborted) return;
        pollErrors.push(String(error));
        if (pollErrors.length > 3) return;
      }
    }
  })();
  // Wait until Temporal lists the forged poller, as `warden run` reads it.
  for (;;) {
    if (pollErrors.length > 3) throw new Error(`the forged poll fails: ${pollErrors.join('; ')}`);
    const queue = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL }, taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW });
    if ((queue.pollers ?? []).some((p) => p.identity === forged)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 300_000);

afterAll(async () => {
  stopPolling.abort();
  await polling;
  await connection?.close();
});

it('warden run does not hand its task to a poller that only claims to be the user\'s standalone worker', async () => {
  const port = testTemporalAddress().address.split(':').pop()!;
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port };
  delete env.TEMPORAL_ADDRESS;
  const child = spawn(process.execPath, [BIN, 'run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const exited = exitOf(child);
  try {
    // Either run decides to reuse the forged poller (and then waits on it forever), or it starts its own worker and finishes.
    await Promise.race([waitForOutput(child, output, 'stderr', /running on the standalone worker|note: worker /).catch(() => undefined), exited]);
    // Then the task goes where run sent it: to the attacker's poller, or to a worker of its own.
    await Promise.race([stolenOne, exited]);
  } finally {
    await stopChildren([child]);
  }
  expect(output.stderr, `the attacker's poller received workflow tasks: ${JSON.stringify(stolen)}`).not.toContain(`running on the standalone worker ${forged}`);
}, 300_000);
