/**
 * Fixed finding (medium; was test/attacks/open/open-poll-hides-under-ended-worker.test.ts): the
 * ended-worker rule (worker/standalone-worker.ts) read the server's `lastAccessTime` of a poller as
 * "no poll since", but it is when its latest poll *arrived*, and a long poll stays open up to
 * ~70 s after. A stranger who copied a running standalone worker's identity (DescribeTaskQueue
 * lists it, every history it ran holds it) and kept one long poll open under it while the genuine
 * worker ended was listed with a `lastAccessTime` before the worker's `endedAt`: the next
 * `warden run` took it for the ended worker and named nothing, while that open poll was handed
 * one of the run's activity tasks (2 of 2 runs).
 *
 * Fixed: a record vouches for a poller only when its latest poll arrived at least one long-poll
 * window (`SERVER_LONG_POLL_WINDOW_MS`) before the worker's end, or more than one window before
 * now (closed either way); a poll inside the window is named by `warden run` in a note of its own
 * (`possiblyOpenPolls`, `possiblyOpenPollNote`): the server keeps one arrival time per identity,
 * so the worker's own last poll and a stranger's opened before the end cannot be told apart.
 * Table over arrival times in test/worker/standalone-worker.test.ts. Real parts here: a real
 * `warden worker` on the test Temporal server (Ctrl-C), a real raw gRPC long poll opened before it
 * ends, a real `warden run`.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { runningStandaloneWorkerIdentity } from '../support/standalone-worker-record';
import { lastPolled, strangerPolls } from '../support/stranger-poll';
import { spawnWarden, untilPolling } from '../support/warden-children';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-open-poll-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const warden = (args: string[], stateDir: string) => spawnWarden(args, stateDir, root, children);

it('a stranger holding a long poll open under a standalone worker\'s identity while it ends is named by the next warden run', async () => {
  const dir = fs.mkdtempSync(join(root, 'case-'));
  const stateDir = join(dir, 'state');
  const workspace = join(dir, 'workspace');
  fs.mkdirSync(workspace);
  const queue = `atk-open-poll-${randomUUID()}`;
  const task = join(dir, 'task.json');
  fs.writeFileSync(task, JSON.stringify({ user: 'u@example.com', intent: 'list the files', agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'listed' }] } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));

  // The user's own worker polls; the stranger opens a long poll under its identity; the worker ends.
  const genuine = warden(['worker', '--task-queue', queue], stateDir);
  await untilPolling(queue, genuine.child.pid!);
  const identity = runningStandaloneWorkerIdentity(stateDir, genuine.child.pid!);
  const before = Date.now();
  const handed = strangerPolls(queue, identity);
  // The finding's case: the stranger's poll has arrived (the server lists the identity polling
  // since) before the worker ends. On a loaded machine it may still arrive after a poll of the
  // genuine worker's: then it comes after the end, and the note is the copied-identity one.
  while (((await lastPolled(queue, identity)) ?? 0) < before) await new Promise((resolve) => setTimeout(resolve, 100));
  genuine.child.kill('SIGINT');
  expect(await genuine.exited, genuine.stderr()).not.toBeNull();
  const endedAt = Date.now();
  // What the run will read: the identity's last poll, no later than the worker's end (the stranger's poll arrived before it).
  const polled = await lastPolled(queue, identity);

  const run = warden(['run', task, '--task-queue', queue], stateDir);
  const code = await run.exited;
  const took = await handed;
  const notes = run.stderr().split('\n').filter((line) => line.includes('note:') && line.includes(identity));
  const context = `exit ${code}; listed as last polling ${polled === undefined ? 'never' : new Date(polled).toISOString()}, ended ${new Date(endedAt).toISOString()}; the stranger was handed: ${took ?? 'nothing'}\n${run.stderr()}`;
  // One line for the identity, saying what Warden cannot tell.
  expect(notes, context).toHaveLength(1);
  const openPoll = `note: poller ${identity}: this state folder's worker of that identity ended at `;
  const copied = `note: not reusing ${identity}, which claims to be a standalone worker of this state folder: the server saw it poll at `;
  expect(notes[0]!.includes(openPoll) || notes[0]!.includes(copied), context).toBe(true);
  if (notes[0]!.includes(openPoll)) expect(notes[0], context).toContain("may still be open; Warden cannot tell it from a stranger's poll under that identity");
}, 300_000);
