/**
 * Fixed finding (issue 17 area, `warden run`'s reading of the pollers, cli/commands/run.ts): a poller on
 * the user's task queue that does not claim to be a Warden worker at all (here the SDK's default
 * identity shape `<pid>@<host>`, from a bare gRPC long poll any process reaching the server's port
 * can make) gets no note. `run` reads the server's poller list (since e3f56f4 "for the notes"
 * even when it starts its own worker at once) and names only identities that claim to be a
 * standalone worker (`liveStandaloneWorker`'s refusals, `otherStateWorkers`); an unknown poller
 * competes with the run's own worker for the task, and Temporal may hand it the workflow task
 * with the task's whole input (user, intent, agent, tools), silently. The forged-identity fix
 * (test/attacks/run-reuses-forged-standalone-worker.test.ts) accepts that a run cannot stop
 * another poller; it can still say so, as it does for pollers of other state folders.
 *
 * Severity low: no Warden secret is in a workflow task (tests scan histories), and the server's
 * port is the trust boundary; but the user is told nothing while a stranger may run their task.
 * Fix: one note per poller the run cannot vouch for and is not its own ("worker X also polls Q and
 * is not vouched for by this state folder: it may be handed this task"), or refuse to start
 * (exit 2) with --strict-queue.
 *
 * Fixed: `run` prints one note per poller on its queue that is neither vouched for nor its own
 * (`unvouchedPollers` in worker/standalone-worker.ts; this run's worker polls under a fresh
 * `warden-run/<pid>@<host>/<nonce>` identity), on stderr, with or without --worker and --json.
 * Table here: the SDK's identity; a standalone worker's identity of this folder claiming another
 * machine (no other note named it); another run's worker identity; a poller of activity tasks only. The classification of every
 * identity shape is in test/worker/standalone-worker.test.ts.
 *
 * Real parts: the test Temporal server (reused by `warden run`, so it reads the pollers), a bare
 * gRPC poller, the `warden` CLI as a child process.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { expect, it } from 'vitest';
import { connectClient } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { standaloneWorkerIdentity } from '../../worker/standalone-worker';
import { collectOutput, exitOf, stopChildren, waitForOutput } from '../support/child-output';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');

const ROWS: [string, () => string, string[], 'workflow' | 'activity'][] = [
  ["the SDK's default identity", () => `4242@stranger-${randomUUID().slice(0, 8)}`, [], 'workflow'],
  ['a standalone worker of this state folder on another machine, --worker --json', () => standaloneWorkerIdentity(TEST_STATE_DIR, randomBytes(16).toString('hex'), 4242, `stranger-${randomUUID().slice(0, 8)}`), ['--worker', '--json'], 'workflow'],
  ["another warden run's worker", () => `warden-run/4242@stranger-${randomUUID().slice(0, 8)}/${randomBytes(16).toString('hex')}`, [], 'workflow'],
  // Activity tasks carry a model turn's or a tool call's input.
  ["the SDK's default identity polling activity tasks only", () => `4243@stranger-${randomUUID().slice(0, 8)}`, [], 'activity'],
];

// The rows run together: each has its own queue, poller identity and `warden run`.
it.concurrent.each(ROWS)('warden run names a poller on its queue that it cannot vouch for: %s', async (_what, makeIdentity, flags, kind) => {
  const { address, namespace } = testTemporalAddress();
  const { client, connection } = await connectClient({ ...loadTemporalConfig({}), address, namespace });
  const taskQueue = `warden-stranger-${randomUUID()}`;
  const identity = makeIdentity();
  const queue = { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL };
  const stop = new AbortController();
  const stolen: string[] = [];
  const poller = (async () => {
    while (!stop.signal.aborted) {
      try {
        const poll = () =>
          kind === 'workflow'
            ? client.workflowService.pollWorkflowTaskQueue({ namespace, identity, taskQueue: queue }).then((t) => (t.taskToken != null && t.taskToken.length > 0 ? t.workflowType?.name ?? '?' : undefined))
            : client.workflowService.pollActivityTaskQueue({ namespace, identity, taskQueue: queue }).then((t) => (t.taskToken != null && t.taskToken.length > 0 ? t.activityType?.name ?? '?' : undefined));
        const task = await connection.withAbortSignal(stop.signal, () => connection.withDeadline(Date.now() + 30_000, poll));
        if (task !== undefined) stolen.push(task);
      } catch {
        if (stop.signal.aborted) return;
      }
    }
  })();
  try {
    // Listed by the server before the run reads the list.
    for (;;) {
      const described = await client.workflowService.describeTaskQueue({ namespace, taskQueue: queue, taskQueueType: kind === 'workflow' ? temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY });
      if ((described.pollers ?? []).some((p) => p.identity === identity)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const port = address.split(':').pop()!;
    const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port };
    delete env.TEMPORAL_ADDRESS;
    const child = spawn(process.execPath, [BIN, 'run', 'examples/hello.yaml', '--task-queue', taskQueue, ...flags], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(child);
    const exited = exitOf(child);
    try {
      // The notes come before the start line.
      await Promise.race([waitForOutput(child, output, 'stderr', 'warden: started ').catch(() => undefined), exited]);
    } finally {
      await stopChildren([child]);
    }
    const note = output.stderr.split('\n').filter((line) => line.includes(identity));
    expect(note, `the stranger took ${stolen.length} workflow task(s)\n${output.stderr}`).toEqual([`warden: note: ${identity} also polls ${taskQueue} and is no worker this state folder vouches for: it may be handed this task and its input (give a queue only workers you trust; README, \`warden run\`)`]);
    expect(output.stdout).not.toContain(identity);
  } finally {
    stop.abort();
    await poller;
    await connection.close();
  }
}, 300_000);
