/**
 * `warden worker` must record itself in its state folder before it polls (the record is what
 * `warden run` trusts, worker/standalone-worker.ts): when it cannot, it refuses to start, exit 2,
 * naming the folder, and polls nothing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

it('refuses to start, exit 2, when its record cannot be created', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'warden-worker-record-'));
  // Where the records folder belongs, a file.
  await writeFile(join(stateDir, 'standalone-workers'), 'not a folder');
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()! };
  delete env.TEMPORAL_ADDRESS;
  const result = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', 'warden-record-refused'], { cwd: REPO_ROOT, env }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(/^warden worker: ERR_CONFIG_INVALID: cannot record the standalone worker\b/m);
  // … naming the folder it could not use, and why.
  expect(result.stderr).toContain(`${stateDir}/standalone-workers is not a folder`);
  expect(result.stderr).not.toContain('worker polling');
}, 300_000);
