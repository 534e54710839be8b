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
import { collectOutput, exitOf, waitForOutput } from '../support/child-output';

const run = promisify(execFile);

it('a standalone worker serves tasks started with TEMPORAL_ADDRESS, and stops cleanly on SIGTERM', async () => {
  const { address, namespace } = testTemporalAddress();
  const taskQueue = `warden-standalone-${randomUUID()}`;
  // A state folder that has no server: external mode must not start one.
  // WARDEN_TIMING: the phase lines show when the Temporal workers were created.
  const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: join(REPO_ROOT, '.warden-test', `external-${randomUUID()}`), WARDEN_TIMING: '1' };
  const worker = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', taskQueue], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(worker);
  const exited = exitOf(worker);
  try {
    // The line is awaited as an event: a slow machine only makes it later.
    await waitForOutput(worker, output, 'stderr', `worker polling ${taskQueue} on ${address}`);
    // It says it polls only once its Temporal workers exist.
    const created = output.stderr.indexOf('worker: Temporal workers created');
    expect(created).toBeGreaterThanOrEqual(0);
    expect(created).toBeLessThan(output.stderr.indexOf('worker polling'));

    const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue], { cwd: REPO_ROOT, env });
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    expect(result.children[0]?.status).toBe('completed');
  } finally {
    worker.kill('SIGTERM');
  }
  expect((await exited).code).toBe(0);
  expect(output.stderr).not.toContain('started the Temporal server');
}, 300_000);
