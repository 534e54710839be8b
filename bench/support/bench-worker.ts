/**
 * A worker process for the Temporal sections: `guarded` is what `warden worker` runs (telemetry
 * into the custody ledger, the agent workflows, the sandbox host); `bare` runs bare-workflow.ts.
 * Prints one JSON line `{"ready":true}` once polling, and shuts down on SIGTERM or when stdin closes.
 * Usage: bench-worker.ts <guarded|bare> <address> <namespace> <taskQueue> <stateDir>
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { createWardenWorker, installQuietRuntime } from '../../worker/create-warden-worker';
import * as bareActivities from './bare-activities';

const BARE_WORKFLOWS = join(__dirname, 'bare-workflow.ts');

/** The bare bundle, cached like Warden's own (so both workers start from a cached bundle). */
async function bareBundle(cacheDir: string): Promise<WorkflowBundleWithSourceMap> {
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  const key = createHash('sha256').update(sdk.version).update(await readFile(BARE_WORKFLOWS)).digest('hex').slice(0, 24);
  const file = join(cacheDir, `bare-workflow-bundle-${key}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as WorkflowBundleWithSourceMap;
  } catch {
    const bundle = await bundleWorkflowCode({ workflowsPath: BARE_WORKFLOWS, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    await mkdir(cacheDir, { recursive: true });
    await writeFile(file, JSON.stringify(bundle));
    return bundle;
  }
}

async function main(): Promise<void> {
  const [kind, address, namespace, taskQueue, stateDir] = process.argv.slice(2) as [string, string, string, string, string];
  installQuietRuntime();
  const connection = await NativeConnection.connect({ address });
  const cacheDir = join(stateDir, 'cache');
  let run: () => Promise<void>;
  let shutdown: () => void;
  if (kind === 'guarded') {
    const telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-worker', env: process.env });
    const worker = await createWardenWorker({ connection, namespace, taskQueue, stateDir, cacheDir, ...(telemetry === undefined ? {} : { telemetry }) });
    run = async () => {
      try {
        await worker.run();
      } finally {
        await telemetry?.shutdown();
      }
    };
    shutdown = () => worker.worker.shutdown();
  } else {
    const worker = await Worker.create({ connection, namespace, taskQueue, workflowBundle: await bareBundle(cacheDir), activities: bareActivities });
    run = () => worker.run();
    shutdown = () => worker.shutdown();
  }
  process.once('SIGTERM', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.resume();
  const running = run();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await running;
  await connection.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench worker: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
