/**
 * Fixed finding (issue 17 area, `warden run`'s poller notes; severity low; was
 * test/attacks/open/ended-genuine-workers-named.test.ts): the run-workers records (6b37f04) kept
 * an ended `warden run` worker of this state folder out of the next run's notes, but the two other
 * workers Warden itself runs on the same queue and state folder were still named by every run in
 * the ~90 s the server lists them after they stopped:
 *
 * - `warden mcp serve`'s in-process worker polled under the SDK's default identity `<pid>@<host>`
 *   and recorded nothing: the next run said "note: <pid>@<host> also polls <queue> and is no
 *   worker this state folder vouches for: it may be handed this task and its input";
 * - a standalone `warden worker` stopped with Ctrl-C removed its record on the way out, so the
 *   next run accused it: "note: not reusing warden-worker/<pid>@<host>/state-…/<nonce>, which
 *   claims to be a standalone worker of this state folder: no worker record …".
 *
 * Both are this user's own, ended workers of this state folder; the notes told the user a
 * stranger may have the task, which trains them to ignore the note that matters. (While such a
 * worker still runs, naming it is right: it may be handed the task.)
 *
 * Fixed for the class, every worker Warden runs on a state folder (worker/standalone-worker.ts):
 * `mcp serve` polls under `runWorkerIdentity()` with `recordRunWorker`, as `warden run` does; a
 * standalone worker's record is refreshed while it runs and kept when it stops, its time the end,
 * for RUN_RECORD_KEEP_MS, then pruned; an identity naming such a record of this folder whose
 * process has ended is neither noted nor refused. Forged, foreign, expired and open records are
 * still named: the tables in test/worker/standalone-worker.test.ts and
 * test/attacks/poller-hides-as-ended-run-worker.test.ts. Since s12 its last poll, which arrived
 * within one long-poll window before its end, is named in the one note that says it may still be
 * open and may be a stranger's (test/worker/open-poll-under-ended-worker-named.test.ts).
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, expect, it } from 'vitest';
import { recentPollers } from '../../cli/temporal-client';
import { connectClient } from '../../temporal/connect';
import { spawnWarden, untilPolling } from '../support/warden-children';
import { testTemporalConfig } from '../support/temporal';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-ended-workers-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const warden = (args: string[], stateDir: string) => spawnWarden(args, stateDir, root, children);

async function listed(queue: string, pid: number): Promise<boolean> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    return (await recentPollers(client, queue)).some((identity) => identity.includes(`${pid}@`));
  } finally {
    await connection.close();
  }
}

it.each<[string, (task: string, queue: string) => string[], (child: ChildProcess) => void]>([
  ['warden mcp serve (stdin closed)', (task, queue) => ['mcp', 'serve', task, '--task-queue', queue], (child) => child.stdin!.end()],
  ['warden worker (Ctrl-C)', (_task, queue) => ['worker', '--task-queue', queue], (child) => child.kill('SIGINT')],
])('after %s has ended, the next warden run on its state folder names its worker only as a poll that may still be open', async (_name, argsOf, stop) => {
  const dir = fs.mkdtempSync(join(root, 'case-'));
  const stateDir = join(dir, 'state');
  const workspace = join(dir, 'workspace');
  fs.mkdirSync(workspace);
  const queue = `atk2-ended-${randomUUID()}`;
  const session = join(dir, 'session.json');
  fs.writeFileSync(session, JSON.stringify({ user: 'u@example.com', intent: 'edit the notes', agent: { name: 'editor', model: { driver: 'mcp-client' } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));
  const task = join(dir, 'task.json');
  fs.writeFileSync(task, JSON.stringify({ user: 'u@example.com', intent: 'list the files', agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'listed' }] } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));

  const first = warden(argsOf(session, queue), stateDir);
  await untilPolling(queue, first.child.pid!);
  stop(first.child);
  expect(await first.exited, first.stderr()).not.toBeNull();

  const run = warden(['run', task, '--task-queue', queue], stateDir);
  expect(await run.exited, run.stderr()).toBe(0);
  const notes = run.stderr().split('\n').filter((line) => line.includes('note:') && line.includes(`${first.child.pid}@`));
  // Neither an unvouched poller nor a forger: only the note that its last poll, which arrived just
  // before its end, may still be open and cannot be told from a stranger's under its identity
  // (test/worker/open-poll-under-ended-worker-named.test.ts).
  expect(notes, run.stderr()).toHaveLength(1);
  expect(notes[0]).toMatch(/^warden: note: poller \S+: this state folder's worker of that identity ended at \S+, but this poll arrived \d+ s before its end and may still be open; Warden cannot tell it from a stranger's poll under that identity/);
  // Not vacuous: the server still lists the ended worker after the run read its pollers.
  expect(await listed(queue, first.child.pid!)).toBe(true);
}, 300_000);
