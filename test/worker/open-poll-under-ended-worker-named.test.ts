/**
 * Open finding (gapfix's "an ended worker's record vouches for its identity only up to its end",
 * worker/standalone-worker.ts `isEndedWorker`): the server's `lastAccessTime` of a poller is when
 * its latest poll *arrived*, and a long poll stays open up to a minute after it. A stranger who
 * copies a running standalone worker's identity (DescribeTaskQueue lists it, every history it ran
 * holds it) and keeps one long poll open under it while the genuine worker ends is listed with a
 * `lastAccessTime` no later than the worker's `endedAt`, so the next `warden run` takes it for the
 * ended worker and names nothing, while that open poll may be handed the run's activity task
 * (input, tool call, credential).
 *
 * Real parts: a real `warden worker` on the test Temporal server (Ctrl-C), a real raw gRPC long
 * poll opened before it ends, a real `warden run`. Expected: the run's stderr names the identity
 * (as it does for a poll that arrives after the end, test/worker/copied-ended-worker-identity-named.test.ts).
 * Suggested fix: vouch only for polls that arrived at least one server long-poll timeout (about
 * 70 s) before the record's end, i.e. treat an identity whose lastAccessTime is within the last
 * long-poll window before the end as possibly still polling and name it (the genuine worker's own
 * last poll falls there too: name it as "ended, or polled under its identity"), or have Warden's
 * workers poll under an identity that is not published (a per-process secret the server cannot list).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { runningStandaloneWorkerIdentity } from '../../support/standalone-worker-record';
import { lastPolled, strangerPolls } from '../../support/stranger-poll';
import { spawnWarden, untilPolling } from '../../support/warden-children';

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
  const handed = strangerPolls(queue, identity);
  genuine.child.kill('SIGINT');
  expect(await genuine.exited, genuine.stderr()).not.toBeNull();
  const endedAt = Date.now();
  // What the run will read: the identity's last poll, no later than the worker's end (the stranger's poll arrived before it).
  const polled = await lastPolled(queue, identity);

  const run = warden(['run', task, '--task-queue', queue], stateDir);
  const code = await run.exited;
  const took = await handed;
  const notes = run.stderr().split('\n').filter((line) => line.includes('note:') && line.includes(identity));
  expect(notes, `exit ${code}; listed as last polling ${polled === undefined ? 'never' : new Date(polled).toISOString()}, ended ${new Date(endedAt).toISOString()}; the stranger was handed: ${took ?? 'nothing'}\n${run.stderr()}`).not.toEqual([]);
}, 300_000);
