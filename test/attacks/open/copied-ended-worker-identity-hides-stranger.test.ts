/**
 * Finding (issue 17 area, `warden run`'s poller notes, 3cc246f "ended genuine workers of a state
 * folder are not named by the next run"; severity medium): a stranger that polls the queue under
 * the identity of one of this user's workers that has just ended is neither noted nor refused by
 * every `warden run` of the next ~2 minutes, although the server itself says that "ended" worker
 * polled after it ended.
 *
 * Since 3cc246f every worker Warden runs on a state folder leaves a record that vouches for it as
 * ended for RUN_RECORD_KEEP_MS (120 s) after its end: a Ctrl-C'd `warden worker`
 * (standalone-workers/) and now also `warden mcp serve` (run-workers/), besides `warden run`. The
 * check (`isEndedWorker`, worker/standalone-worker.ts) reads the identity, the record, the
 * process and the record's time, never the poller itself: anyone who reaches the server reads the
 * identity from DescribeTaskQueue (or from any history's WorkflowTaskStarted `identity`), polls
 * under it once the genuine worker stopped, and may be handed the task's workflow or activity
 * tasks (input, tool calls, credentials) while `warden run` prints no note. Here: a raw long poll
 * of the activity queue under the copied identity, after the genuine process exited.
 *
 * The module comment says a copied identity cannot be unmasked. For an ended worker it can: the
 * server's `lastAccessTime` for that identity is after the record's end (a cleanly ended worker
 * writes its end after its last poll; a SIGKILLed one is at most one refresh, 30 s, older), and
 * the genuine process is gone. The new records widened the window from `warden run`'s own
 * workers to `mcp serve` and every standalone worker (whose identities are also in every history
 * they ran).
 *
 * Suggested fix: `recentPollers` returns each poller's `lastAccessTime` with its identity, and an
 * identity is skipped as ended (`isEndedRunWorker`, `isEndedStandaloneWorker`) only when the
 * server last saw it poll no later than the record's time (plus the refresh interval for a record
 * whose end was not written, e.g. an `endedAt` field written by `ended()` marks a clean end: no
 * slack); otherwise it is noted as "polls under the identity of an ended worker of this state
 * folder". Table: clean end then copy (noted), SIGKILL then copy after 30 s (noted), genuine
 * ended (not noted). Related (low, same check): a record time in the future (written before the
 * wall clock stepped back) counts as recent until the clock passes it, `now - mtimeMs` being
 * negative, and is not pruned either; a time ahead of now should not vouch.
 *
 * Real parts: a real `warden worker` / `warden mcp serve` on the test Temporal server, a real
 * raw gRPC long poll, a real `warden run`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, expect, it } from 'vitest';
import { recentPollers } from '../../../cli/temporal-client';
import { connectClient } from '../../../temporal/connect';
import { RUN_RECORDS_DIR, StandaloneWorkerRecordSchema } from '../../../worker/standalone-worker';
import { runningStandaloneWorkerIdentity } from '../../support/standalone-worker-record';
import { testTemporalAddress, testTemporalConfig } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-copied-ended-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function warden(args: string[], stateDir: string): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const port = testTemporalAddress().address.split(':').pop()!;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: port },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

async function untilPolling(queue: string, pid: number): Promise<void> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    for (;;) {
      if ((await recentPollers(client, queue)).some((identity) => identity.includes(`${pid}@`))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await connection.close();
  }
}

/** The identity `warden mcp serve` (pid) polls under, from its record in run-workers/. */
function mcpServeIdentity(stateDir: string, pid: number): string {
  const dir = join(stateDir, RUN_RECORDS_DIR);
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    const record = StandaloneWorkerRecordSchema.safeParse(JSON.parse(fs.readFileSync(join(dir, name), 'utf8')));
    if (record.success && record.data.pid === pid) return `warden-run/${pid}@${hostname()}/${record.data.nonce}`;
  }
  throw new Error(`no run-workers record of pid ${pid} in ${dir}`);
}

/** The stranger: one raw long poll of `queue`'s activity tasks under `identity`, given up after 5 s (nothing is waiting; the server refuses a long poll of less than 2 s). */
async function strangerPolls(queue: string, identity: string): Promise<void> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    await connection
      .withDeadline(Date.now() + 5_000, () => client.workflowService.pollActivityTaskQueue({ namespace: client.options.namespace, taskQueue: { name: queue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL }, identity }))
      .catch((error: unknown) => {
        // The deadline ends the poll (nothing waits on the queue); anything else means the stranger never polled.
        if (!(error instanceof Error && /DEADLINE_EXCEEDED|deadline/i.test(error.message))) throw error;
      });
  } finally {
    await connection.close();
  }
}

/** When the server last saw `identity` poll `queue`'s activity tasks (ms since the epoch), undefined when not listed. */
async function lastPolled(queue: string, identity: string): Promise<number | undefined> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    const response = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: queue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const poller = (response.pollers ?? []).find((p) => p.identity === identity);
    if (poller === undefined) console.error('pollers listed:', JSON.stringify(response.pollers));
    return poller?.lastAccessTime ? Number(poller.lastAccessTime.seconds ?? 0) * 1000 + Math.floor((poller.lastAccessTime.nanos ?? 0) / 1e6) : undefined;
  } finally {
    await connection.close();
  }
}

it.each<[string, (task: string, queue: string) => string[], (child: ChildProcess) => void, (stateDir: string, pid: number) => string]>([
  ['warden worker (Ctrl-C)', (_task, queue) => ['worker', '--task-queue', queue], (child) => child.kill('SIGINT'), runningStandaloneWorkerIdentity],
  ['warden mcp serve (stdin closed)', (task, queue) => ['mcp', 'serve', task, '--task-queue', queue], (child) => child.stdin!.end(), mcpServeIdentity],
])('a stranger polling under the identity of a %s that has ended is named by the next warden run', async (_name, argsOf, stop, identityOf) => {
  const dir = fs.mkdtempSync(join(root, 'case-'));
  const stateDir = join(dir, 'state');
  const workspace = join(dir, 'workspace');
  fs.mkdirSync(workspace);
  const queue = `atk-copied-ended-${randomUUID()}`;
  const session = join(dir, 'session.json');
  fs.writeFileSync(session, JSON.stringify({ user: 'u@example.com', intent: 'edit the notes', agent: { name: 'editor', model: { driver: 'mcp-client' } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));
  const task = join(dir, 'task.json');
  fs.writeFileSync(task, JSON.stringify({ user: 'u@example.com', intent: 'list the files', agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'listed' }] } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));

  // The user's own worker polls, then ends.
  const genuine = warden(argsOf(session, queue), stateDir);
  await untilPolling(queue, genuine.child.pid!);
  const identity = identityOf(stateDir, genuine.child.pid!);
  stop(genuine.child);
  expect(await genuine.exited, genuine.stderr()).not.toBeNull();
  const endedAt = Date.now();

  // A stranger copies the identity the server lists and polls under it after the worker ended.
  await strangerPolls(queue, identity);
  // Not vacuous: the server says this identity polled after the genuine worker's process exited.
  expect(await lastPolled(queue, identity)).toBeGreaterThan(endedAt);

  const run = warden(['run', task, '--task-queue', queue], stateDir);
  expect(await run.exited, run.stderr()).toBe(0);
  const notes = run.stderr().split('\n').filter((line) => line.includes('note:') && line.includes(identity));
  expect(notes, run.stderr()).not.toEqual([]);
}, 300_000);
