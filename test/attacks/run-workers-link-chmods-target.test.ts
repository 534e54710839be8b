/**
 * Finding (issue 17 area, worker records; severity low): `recordRunWorker` (every `warden run`
 * that starts a worker) and `writeStandaloneWorkerRecord` (every `warden worker`) make their
 * records folder private with `fs.mkdirSync(dir, { recursive: true })` then `fs.chmodSync(dir,
 * 0o700)`, and only then check the folder with lstat (`folderProblem`, "is not a folder").
 * chmod follows a symbolic link: when `<stateDir>/run-workers` (or `standalone-workers`) is a link
 * to another folder of the user (planted in a state folder others can write, which `run` itself
 * reports as untrustworthy, or left by a tool), the run chmods the link's target to 0700 before
 * refusing the link: the user's shared folder (a web root, a group project folder) loses its
 * group and other permissions, silently (the run catches the refusal and carries on).
 *
 * Verdict: FIXED (was open). The fix followed the suggestion: check with lstat before any chmod, or open the folder
 * with O_DIRECTORY | O_NOFOLLOW and fchmod the descriptor (and mkdir without `recursive` for the
 * last component); table over both record folders × link to a folder, link to a file, dangling.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { recordRunWorker, RUN_RECORDS_DIR, runWorkerIdentity, STANDALONE_RECORDS_DIR, writeStandaloneWorkerRecord } from '../../worker/standalone-worker';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-record-link-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

it.each<[string, string, (stateDir: string) => unknown]>([
  ['warden run', RUN_RECORDS_DIR, (stateDir) => recordRunWorker(stateDir, runWorkerIdentity()).ended()],
  ['warden worker', STANDALONE_RECORDS_DIR, (stateDir) => writeStandaloneWorkerRecord(stateDir).ended()],
])('%s leaves the permissions of the folder its records link points to alone', (_name, recordsDir, record) => {
  const stateDir = fs.mkdtempSync(join(root, 'state-'));
  const shared = fs.mkdtempSync(join(root, 'shared-'));
  fs.chmodSync(shared, 0o755);
  fs.symlinkSync(shared, join(stateDir, recordsDir));
  try {
    record(stateDir);
  } catch {
    // Refusing the link is right; changing what it points to is not.
  }
  expect((fs.statSync(shared).mode & 0o777).toString(8)).toBe('755');
});

// The class: both record folders × a link to a folder, to a file, to nowhere: each is refused
// (nothing recorded), its target keeps its mode, and no target is made.
const recorders: Array<[string, string, (stateDir: string) => unknown]> = [
  ['warden run', RUN_RECORDS_DIR, (stateDir) => recordRunWorker(stateDir, runWorkerIdentity()).ended()],
  ['warden worker', STANDALONE_RECORDS_DIR, (stateDir) => writeStandaloneWorkerRecord(stateDir).ended()],
];
const targets: Array<[string, (at: string) => string | undefined]> = [
  ['a folder', (at) => (fs.mkdirSync(at, { mode: 0o755 }), fs.chmodSync(at, 0o755), at)],
  ['a file', (at) => (fs.writeFileSync(at, 'x', { mode: 0o644 }), fs.chmodSync(at, 0o644), at)],
  ['nowhere', () => undefined],
];
it.each(recorders.flatMap(([name, dir, record]) => targets.map(([kind, make]) => [name, kind, dir, record, make] as const)))('%s refuses a records link to %s and leaves its target alone', (_name, _kind, recordsDir, record, make) => {
  const stateDir = fs.mkdtempSync(join(root, 'state-'));
  const at = join(fs.mkdtempSync(join(root, 'target-')), 'target');
  const target = make(at);
  const before = target === undefined ? undefined : fs.statSync(target).mode & 0o777;
  fs.symlinkSync(at, join(stateDir, recordsDir));
  expect(() => record(stateDir)).toThrow(/is not a folder/);
  expect(target === undefined ? fs.existsSync(at) : fs.statSync(target).mode & 0o777).toBe(target === undefined ? false : before);
});
