/**
 * Warden against "an existing cluster": TEMPORAL_ADDRESS is set, so nothing is started; a
 * standalone `warden worker` process serves tasks that `warden run --no-worker` starts.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const run = promisify(execFile);

it('a standalone worker serves tasks started with TEMPORAL_ADDRESS, and stops cleanly on SIGTERM', async () => {
  const { address, namespace } = testTemporalAddress();
  const taskQueue = `warden-standalone-${randomUUID()}`;
  // A state folder that has no server: external mode must not start one.
  const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: join(REPO_ROOT, '.warden-test', `external-${randomUUID()}`) };
  const worker = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', taskQueue], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  worker.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 200 && !stderr.includes('worker polling'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain(`worker polling ${taskQueue} on ${address}`);

    const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue], { cwd: REPO_ROOT, env });
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    expect(result.children[0]?.status).toBe('completed');
  } finally {
    worker.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(stderr).not.toContain('started the Temporal server');
}, 120_000);
