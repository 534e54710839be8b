/**
 * Open finding (f377c84, `isEndedRunWorker` in worker/standalone-worker.ts): `warden run` skips, in
 * its note about pollers it does not vouch for, any `warden-run/<pid>@<this host>/<32 hex>` whose
 * pid is not alive. Nothing ties such an identity to a run that ever existed: a stranger (another
 * user's worker, a foreign state folder's patched worker, a bare gRPC long poll) that polls the
 * queue NOW under a made-up dead pid, e.g. one above /proc/sys/kernel/pid_max, which can never be
 * alive, gets the task's workflow and activity tasks and `run` says nothing, exactly the silence
 * the note was added to end (issue 17, run-silent-about-unvouched-poller). Before the note there was
 * no note at all, so this is not a downgrade from then; but the skip makes hiding free and
 * guaranteed (pick a dead pid), while copying this run's own identity needs its fresh nonce.
 *
 * Expected: skip only ended runs this state folder knows: each `warden run` worker leaves a record
 * `<stateDir>/run-workers/<nonce>` (0600, like the standalone records) kept for the server's 90 s
 * poller memory, and an identity is skipped only when its nonce names such a record, its pid is the
 * record's and that process has ended.
 *
 * Real parts: the real `unvouchedPollers`, this host's name and pid_max.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runWorkerIdentity, unvouchedPollers } from '../../../worker/standalone-worker';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-ended-run-forgery-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

it.each([
  ['a pid above pid_max (can never be alive)', () => Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) + 1],
  ['a pid no process has now', () => 4_000_000_000 % 2 ** 22 + 1],
])('a live stranger polling as an ended run worker with %s is noted', (_what, pidOf) => {
  const pid = pidOf();
  const forged = `warden-run/${pid}@${hostname()}/${randomBytes(16).toString('hex')}`;
  // Precondition: the pid is not alive (else the note is kept anyway and this row proves nothing).
  expect(() => process.kill(pid, 0)).toThrow();
  // No `warden run` of this state folder ever had that identity: nothing vouches for it as ended.
  expect(unvouchedPollers([forged], stateDir, [runWorkerIdentity()])).toEqual([forged]);
});
