/**
 * Fixed finding (issue 17, f377c84): `warden run` skipped, in its note about pollers it does not
 * vouch for, any `warden-run/<pid>@<this host>/<32 hex>` whose pid was not alive. Nothing tied such
 * an identity to a run that ever existed: a stranger (another user's worker, a foreign state
 * folder's patched worker, a bare gRPC long poll) polling the queue NOW under a made-up dead pid,
 * e.g. one above /proc/sys/kernel/pid_max, which can never be alive, got the task's workflow and
 * activity tasks and `run` said nothing, the silence the note was added to end.
 *
 * Now each `warden run` worker leaves a record `<stateDir>/run-workers/<nonce>.json` (0600 in a
 * 0700 folder, created exclusively; its time refreshed while the run lives, kept for the server's
 * 90 s poller memory plus one refresh, then pruned), and an identity is skipped only when its nonce
 * names such a record of THIS state folder, its pid is the record's, that process has ended and the
 * record is recent (`recordRunWorker`, `isEndedRunWorker` in worker/standalone-worker.ts).
 *
 * Real parts: the real `unvouchedPollers` and `recordRunWorker`, real processes, this host's name
 * and pid_max. An "ended run" is a real process that was recorded alive and then exited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { RUN_RECORD_KEEP_MS, RUN_RECORDS_DIR, recordRunWorker, runWorkerIdentity, unvouchedPollers } from '../../worker/standalone-worker';

const made: string[] = [];
const children: ChildProcess[] = [];
const newStateDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ended-run-'));
  made.push(dir);
  return dir;
};
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Records a real process as a run worker of `stateDir`, then ends it: the identity of a genuine ended run. */
async function endedRun(stateDir: string): Promise<{ identity: string; file: string }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(child);
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  const identity = runWorkerIdentity(child.pid!);
  const registration = recordRunWorker(stateDir, identity);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
  registration.ended();
  return { identity, file: registration.file };
}

const pidMax = () => Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());

let stateDir: string;
beforeAll(() => {
  stateDir = newStateDir();
});

it.each([
  ['a pid above pid_max (can never be alive)', () => pidMax() + 1],
  ['a pid no process has now', () => (4_000_000_000 % 2 ** 22) + 1],
])('a live stranger polling as an ended run worker with %s and a forged nonce is noted', (_what, pidOf) => {
  const pid = pidOf();
  const forged = `warden-run/${pid}@${hostname()}/${randomBytes(16).toString('hex')}`;
  // Precondition: the pid is not alive (else the note is kept anyway and this row proves nothing).
  expect(() => process.kill(pid, 0)).toThrow();
  expect(unvouchedPollers([{ identity: forged, lastPolledAt: Date.now() - 5_000 }], stateDir, [runWorkerIdentity()])).toEqual([forged]);
});

it.each<[string, (s: string) => Promise<string>, boolean]>([
  ['a genuine ended run of this state folder, within the server\'s poller window', async (s) => (await endedRun(s)).identity, false],
  ['a genuine ended run of another state folder', async () => (await endedRun(newStateDir())).identity, true],
  ['a genuine ended run whose record expired (older than the poller window)', async (s) => {
    const { identity, file } = await endedRun(s);
    const past = new Date(Date.now() - RUN_RECORD_KEEP_MS - 1_000);
    utimesSync(file, past, past);
    return identity;
  }, true],
  ['a genuine ended run\'s nonce under another dead pid', async (s) => {
    const { identity } = await endedRun(s);
    return identity.replace(/^warden-run\/\d+@/, `warden-run/${pidMax() + 1}@`);
  }, true],
  ['a forged nonce beside a genuine ended run of this folder', async (s) => {
    const { identity } = await endedRun(s);
    return `${identity.slice(0, -32)}${randomBytes(16).toString('hex')}`;
  }, true],
  ['a genuine ended run whose record others can write', async (s) => {
    const { identity, file } = await endedRun(s);
    chmodSync(file, 0o666);
    return identity;
  }, true],
  ['a genuine ended run whose records folder others can write', async (s) => {
    const { identity } = await endedRun(s);
    chmodSync(join(s, RUN_RECORDS_DIR), 0o777);
    return identity;
  }, true],
  ['a record planted by hand for a dead pid that no run recorded (its start time cannot be known)', async (s) => {
    const { file } = await endedRun(s);
    const nonce = randomBytes(16).toString('hex');
    const planted = join(s, RUN_RECORDS_DIR, `${nonce}.json`);
    writeFileSync(planted, JSON.stringify({ pid: pidMax() + 1, startTime: '1', nonce }), { mode: 0o600 });
    // Same folder, same owner: this row shows only what the pid check adds, a record's pid is the identity's.
    expect(existsSync(file)).toBe(true);
    return `warden-run/${pidMax() + 2}@${hostname()}/${nonce}`;
  }, true],
  ['a live run of this state folder (another run, still running)', async (s) => {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
    const identity = runWorkerIdentity(child.pid!);
    recordRunWorker(s, identity);
    return identity;
  }, true],
])('%s: noted %s', async (_what, identityOf, noted) => {
  const s = newStateDir();
  const identity = await identityOf(s);
  expect(unvouchedPollers([{ identity, lastPolledAt: Date.now() - 5_000 }], s, [runWorkerIdentity()])).toEqual(noted ? [identity] : []);
});

it('records past the window whose process ended are pruned by the next run\'s record; fresh ones stay', async () => {
  const s = newStateDir();
  const old = await endedRun(s);
  const fresh = await endedRun(s);
  const past = new Date(Date.now() - RUN_RECORD_KEEP_MS - 1_000);
  utimesSync(old.file, past, past);
  recordRunWorker(s, runWorkerIdentity()).ended();
  expect(existsSync(old.file)).toBe(false);
  expect(existsSync(fresh.file)).toBe(true);
});

it('a run worker record is 0600 in a 0700 folder and created exclusively', () => {
  const s = newStateDir();
  const identity = runWorkerIdentity();
  const { file, ended } = recordRunWorker(s, identity);
  ended();
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(statSync(join(s, RUN_RECORDS_DIR)).mode & 0o777).toBe(0o700);
  expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, nonce: identity.slice(-32) });
  // The same nonce again (a copy of the identity) cannot replace the record.
  expect(() => recordRunWorker(s, identity)).toThrow(/EEXIST/);
});
