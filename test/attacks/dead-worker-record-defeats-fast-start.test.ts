/**
 * Fixed finding (issue 17 start-up change, e3f56f4, `hasStandaloneWorkerRecords` in
 * worker/standalone-worker.ts): `warden run` skips waiting for the server's poller list only when
 * `<state>/standalone-workers/` names no record, by file name alone. A standalone worker that did
 * not run its clean-up (SIGKILL, an OOM kill, a crash, a reboot, or Ctrl-C before its SIGINT
 * handler was installed: the record is written before the worker is built) leaves its record, and
 * stale records are swept only when another `warden worker` starts. From then on every `warden
 * run` on that folder takes the slow path (poller list first, worker after), silently: the
 * speed-up is lost with no note. No security effect: the slow path still reuses only a worker the
 * record vouches for (a dead pid is refused).
 *
 * Fixed: only records that still vouch count (`processProblem(pid, startTime) === undefined`, the
 * same /proc read the reuse check makes); the table of live, dead, reused-pid, malformed and open
 * records is in test/worker/worker-start-path.test.ts ("standalone worker records").
 *
 * Real parts: a real `warden worker` process on the test Temporal server, SIGKILLed once its
 * record exists.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { hasStandaloneWorkerRecords, STANDALONE_RECORDS_DIR } from '../../worker/standalone-worker';
import { exitOf } from '../support/child-output';
import { wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const dir = mkdtempSync(join(tmpdir(), 'warden-dead-record-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('a record left by a killed standalone worker does not count as a standalone worker record', async () => {
  const stateDir = join(dir, 'state');
  const records = join(stateDir, STANDALONE_RECORDS_DIR);
  const worker = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker', '--task-queue', `warden-dead-record-${process.pid}`], { cwd: dir, env: wardenProcessEnv(stateDir), stdio: 'ignore' });
  const exited = exitOf(worker);
  // The record is written right after the server is found, before the worker is built.
  while (!(existsSync(records) && readdirSync(records).some((name) => name.endsWith('.json')))) {
    if (worker.exitCode !== null) throw new Error('the worker exited before writing its record');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // While the worker lives its record counts (the fast path is skipped only for a worker that can be reused).
  expect(hasStandaloneWorkerRecords(stateDir)).toBe(true);
  worker.kill('SIGKILL');
  await exited;
  expect(readdirSync(records).filter((name) => name.endsWith('.json'))).toHaveLength(1);
  expect(hasStandaloneWorkerRecords(stateDir)).toBe(false);
}, 300_000);
