/**
 * A traced worker starts without SDK warnings. Warden's workers run a pre-built workflow bundle
 * with the tracing interceptors bundled in; handing `interceptors.workflowModules` to
 * `Worker.create` as well made the SDK warn on every start that it ignores them.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { telemetryWorkerOptions } from '../../telemetry/temporal-interceptors';
import { setupTelemetry } from '../../telemetry/setup-telemetry';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

it('the worker options carry no workflow interceptor modules (they are bundled)', async () => {
  const stateDir = join(REPO_ROOT, '.warden-test', `worker-options-${randomUUID()}`);
  const telemetry = setupTelemetry({ stateDir, serviceName: 'warden-worker', env: {}, register: false });
  try {
    expect(telemetryWorkerOptions(telemetry).interceptors.workflowModules).toBeUndefined();
  } finally {
    await telemetry.shutdown();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

it('`warden worker` with tracing on logs no SDK warning at start', async () => {
  const { address, namespace } = testTemporalAddress();
  const stateDir = join(REPO_ROOT, '.warden-test', `worker-start-${randomUUID()}`);
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: stateDir };
  delete env.WARDEN_TELEMETRY; // tracing on, as by default
  const worker = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', `warden-start-${randomUUID()}`], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  worker.stdout.on('data', (d: Buffer) => (output += d.toString()));
  worker.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (output.includes('worker polling')) resolve();
      };
      worker.stderr.on('data', check);
      void exited.then((code) => reject(new Error(`worker exited (${code}) before polling:\n${output}`)));
    });
  } finally {
    worker.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(output).not.toMatch(/Ignoring WorkerOptions/);
  expect(output).not.toMatch(/\bWARN\b/);
  rmSync(stateDir, { recursive: true, force: true });
}, 180_000);
