/**
 * Fixed finding (issue 17 area, `warden run`'s poller notes, 3cc246f "ended genuine workers of a
 * state folder are not named by the next run"; severity medium; was
 * test/attacks/open/copied-ended-worker-identity-hides-stranger.test.ts): a stranger that polls the queue under
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
 * Fixed (worker/standalone-worker.ts): `run` reads each poller's `lastAccessTime` with its
 * identity (`recentPolls`, cli/temporal-client.ts; the latest of a queue's lists, `latestPolls`),
 * and `isEndedWorker` skips an identity as an ended worker's only when the server last saw it
 * poll no later than the record's end: `endedAt`, which `ended()` now writes into the record
 * (rewritten whole), or, for a record whose end was never written (SIGKILL), its time plus one
 * refresh (30 s). A later poll is named: a standalone identity as refused ("not reusing …"), a
 * run's or `mcp serve`'s in the unvouched-poller note. A record time or end ahead of now vouches
 * for nothing and is pruned by the next record. Table: "an ended worker's record vouches only up
 * to its end" in test/worker/standalone-worker.test.ts; the genuine ended workers stay unnamed
 * (test/worker/ended-genuine-workers-not-named.test.ts).
 *
 * Real parts: a real `warden worker` / `warden mcp serve` on the test Temporal server, a real
 * raw gRPC long poll, a real `warden run`.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { RUN_RECORDS_DIR, StandaloneWorkerRecordSchema } from '../../worker/standalone-worker';
import { runningStandaloneWorkerIdentity } from '../support/standalone-worker-record';
import { lastPolled, strangerPolls } from '../support/stranger-poll';
import { spawnWarden, untilPolling } from '../support/warden-children';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-copied-ended-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const warden = (args: string[], stateDir: string) => spawnWarden(args, stateDir, root, children);

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
  await strangerPolls(queue, identity, 5_000);
  // Not vacuous: the server says this identity polled after the genuine worker's process exited.
  expect(await lastPolled(queue, identity)).toBeGreaterThan(endedAt);

  const run = warden(['run', task, '--task-queue', queue], stateDir);
  expect(await run.exited, run.stderr()).toBe(0);
  const notes = run.stderr().split('\n').filter((line) => line.includes('note:') && line.includes(identity));
  expect(notes, run.stderr()).not.toEqual([]);
}, 300_000);
