/**
 * A traced worker starts without SDK warnings. Warden's workers run a pre-built workflow bundle
 * with the tracing interceptors bundled in; handing `interceptors.workflowModules` to
 * `Worker.create` as well made the SDK warn on every start that it ignores them.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { agentTaskResult, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { connectClient } from '../../temporal/connect';
import { telemetryWorkerOptions } from '../../telemetry/temporal-interceptors';
import { setupTelemetry } from '../../telemetry/setup-telemetry';
import { testTemporalAddress, testTemporalConfig } from '../support/temporal';
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

it('`warden worker` with tracing on logs no SDK warning, at start or for a task that was denied', async () => {
  const { address, namespace } = testTemporalAddress();
  const stateDir = join(REPO_ROOT, '.warden-test', `worker-start-${randomUUID()}`);
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: stateDir };
  delete env.WARDEN_TELEMETRY; // tracing on, as by default
  const taskQueue = `warden-start-${randomUUID()}`;
  const worker = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', taskQueue], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    // A denied task closes as failed in Temporal; for the worker it is an outcome, not a warning.
    const { client, connection } = await connectClient(testTemporalConfig());
    try {
      const workspace = mkdtempSync(join(tmpdir(), 'warden-worker-start-'));
      const task = parseTask(
        { user: 'kim@example.com', intent: 'write', agent: { name: 'writer', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x', content: 'y' } }] } }, tools: { builtin: ['fs.write'] }, resources: { workspace } },
        'task.yaml',
        REPO_ROOT,
      );
      const handle = await startAgentTask(client, task, { taskQueue });
      const result = await agentTaskResult(handle);
      expect(result.status, JSON.stringify(result)).toBe('denied');
      await vi.waitFor(() => expect(output).toContain(`task ${handle.workflowId} ended: denied:`), { timeout: 60_000, interval: 100 });
    } finally {
      await connection.close();
    }
  } finally {
    worker.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(output).not.toMatch(/Ignoring WorkerOptions/);
  // The data plane's own queue (`<queue>@<worker>`) runs activities only, by design: the SDK's note
  // that it polls no workflows there is the one WARN line that is expected.
  const warnings = output.split('\n').filter((line) => /\bWARN\b/.test(line) && !/No workflows registered, not polling for workflow tasks .*taskQueue: '[^']+@[^']+'/.test(line));
  expect(warnings).toEqual([]);
  expect(output).not.toContain('Workflow failed');
  rmSync(stateDir, { recursive: true, force: true });
}, 180_000);
