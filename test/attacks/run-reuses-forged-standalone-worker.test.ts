/**
 * Attack on `warden run`'s reuse of a running `warden worker` (issue 17): a co-tenant on the
 * machine (any process that can reach the Temporal server's port) polls the user's task queue
 * under a forged identity `warden-worker/<pid>@<host>/state-<fingerprint>[/<nonce>]`. Everything
 * in it is the poller's own claim: the fingerprint is SHA-256 of the user's state folder path
 * (known or guessed: ~/.warden), the host is this machine's name, the pid only has to name some
 * live process (pid 1 always does), and a nonce can be copied from another genuine worker's
 * identity, which the server shows to anyone who describes a task queue. On the old code `warden
 * run` took such a poller for the user's own worker, started no worker of its own, printed
 * "running on the standalone worker ... (same state folder)" and handed every workflow task of the
 * run, with the task's whole input (intent, user, prompts, tools), to the attacker's poller.
 *
 * Safe behaviour (worker/standalone-worker.ts): a run reuses only a worker that its own state
 * folder vouches for, by a record only the folder's owner can write; it refuses each forged poller
 * in one line saying why and runs the task on a worker of its own. Two forgeries poll one queue
 * here: the original one (pid 1, the right folder digest, no nonce) and one carrying the nonce of
 * a genuine standalone worker (running on another queue) under pid 1. The table of every way a
 * record can fail to vouch is test/worker/standalone-worker.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectClient } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { standaloneWorkerIdentity, stateDirFingerprint } from '../../worker/standalone-worker';
import { collectOutput, exitOf, stopChildren, waitForOutput, type CollectedOutput } from '../support/child-output';
import { standaloneWorkerNonce } from '../support/standalone-worker-record';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');
const taskQueue = `warden-forged-${randomUUID()}`;
const genuineQueue = `warden-genuine-${randomUUID()}`;
const queueOf = (name: string) => ({ name, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL });

let client: Client;
let connection: Connection;
let genuine: ChildProcess;
let genuineOutput: CollectedOutput;
const stopPolling = new AbortController();
/** Workflow types of the tasks the attacker's pollers received. */
const stolen: string[] = [];
const pollErrors: string[] = [];
let pollers: Promise<void>[] = [];
/** The forged identities: [why it is forged, identity]. */
let forged: [string, string][] = [];

function testEnv(): NodeJS.ProcessEnv {
  const port = testTemporalAddress().address.split(':').pop()!;
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

/** The attacker: a bare gRPC long poll on the victim's queue under `identity`, until stopped. */
async function poll(identity: string, namespace: string): Promise<void> {
  while (!stopPolling.signal.aborted) {
    try {
      const task = await connection.withAbortSignal(stopPolling.signal, () =>
        connection.withDeadline(Date.now() + 30_000, () => client.workflowService.pollWorkflowTaskQueue({ namespace, identity, taskQueue: queueOf(taskQueue) })),
      );
      if (task.taskToken !== undefined && task.taskToken !== null && task.taskToken.length > 0) stolen.push(task.workflowType?.name ?? '?');
    } catch (error) {
      if (stopPolling.signal.aborted) return;
      pollErrors.push(String(error));
      if (pollErrors.length > 3) return;
    }
  }
}

beforeAll(async () => {
  const { address, namespace } = testTemporalAddress();
  ({ client, connection } = await connectClient({ ...loadTemporalConfig({}), address, namespace }));
  // A genuine standalone worker of the same user and state folder, on another queue: its nonce is public.
  genuine = spawn(process.execPath, [BIN, 'worker', '--task-queue', genuineQueue], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  genuineOutput = collectOutput(genuine);
  await waitForOutput(genuine, genuineOutput, 'stderr', `worker polling ${genuineQueue}`);
  const fingerprint = stateDirFingerprint(TEST_STATE_DIR);
  forged = [
    ['pid 1, the right folder digest, no nonce', `warden-worker/1@${hostname()}/state-${fingerprint}`],
    ["a genuine worker's nonce under pid 1", standaloneWorkerIdentity(TEST_STATE_DIR, standaloneWorkerNonce(TEST_STATE_DIR, genuine.pid!), 1)],
  ];
  pollers = forged.map(([, identity]) => poll(identity, namespace));
  // Wait until Temporal lists both forged pollers, as `warden run` reads them.
  for (;;) {
    if (pollErrors.length > 3) throw new Error(`the forged poll fails: ${pollErrors.join('; ')}`);
    const queue = await client.workflowService.describeTaskQueue({ namespace, taskQueue: queueOf(taskQueue), taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW });
    const listed = new Set((queue.pollers ?? []).map((p) => p.identity));
    if (forged.every(([, identity]) => listed.has(identity))) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 300_000);

afterAll(async () => {
  stopPolling.abort();
  await Promise.all(pollers);
  await stopChildren(genuine === undefined ? [] : [genuine]);
  await connection?.close();
});

it("warden run refuses pollers that only claim to be the user's standalone worker, says why, and runs the task on its own worker", async () => {
  const child = spawn(process.execPath, [BIN, 'run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const exited = exitOf(child);
  try {
    // Run decides before it starts the task: its notes (one line each, written separately), or a
    // reuse, come first. Wait for every forged poller's note, not the first line that ends the
    // same way: stopping run after one note made this test depend on how stderr was chunked.
    const decided = Promise.race([
      waitForOutput(child, output, 'stderr', 'running on the standalone worker'),
      Promise.all(forged.map(([, identity]) => waitForOutput(child, output, 'stderr', `note: not reusing ${identity},`))),
    ]);
    await Promise.race([decided.catch(() => undefined), exited]);
  } finally {
    // The attacker's pollers may still take a workflow task from the queue (Temporal's choice
    // among pollers, which no client decides); what run must not do is rely on them.
    await stopChildren([child]);
  }
  expect(output.stderr, `the attacker's pollers received workflow tasks: ${JSON.stringify(stolen)}`).not.toContain('running on the standalone worker');
  for (const [why, identity] of forged) {
    expect(output.stderr, why).toContain(`note: not reusing ${identity}, which claims to be a standalone worker of this state folder: `);
  }
  expect(output.stderr).toContain('names no worker record of this state folder; starting a worker in this process');
  expect(output.stderr).toMatch(/its pid 1 is not the recorded worker's \(\d+\); starting a worker in this process/);
}, 300_000);
