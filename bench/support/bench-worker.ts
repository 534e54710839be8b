/**
 * A worker process for the Temporal sections: `guarded` is what `warden worker` runs (telemetry
 * into the custody ledger, the agent workflows, the sandbox host); `bare` runs bare-workflow.ts.
 * Warden's modules come from `<wardenModules>`: build/ when the bench runs the compiled build
 * (this file then runs compiled too, without tsx: worker-runtime.ts), the repository root when it
 * runs the sources through tsx. Prints one JSON line (`WorkerReady`) once polling, and shuts down
 * on SIGTERM or when stdin closes.
 * Usage: bench-worker.(ts|js) <guarded|bare> <address> <namespace> <taskQueue> <stateDir> <wardenModules> <bareWorkflows>
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type * as ProcessTelemetry from '../../telemetry/process-telemetry';
import type * as CreateWardenWorker from '../../worker/create-warden-worker';
import * as bareActivities from './bare-activities';

/** The ready line: how the process runs, so the bench (and its tests) can tell compiled from tsx. */
export interface WorkerReady {
  ready: true;
  /** Node's own arguments (`process.execArgv`), which the SDK's workflow threads inherit. */
  execArgv: string[];
  /** Whether tsx is loaded in this process. */
  tsx: boolean;
  /** Whether source maps are on for stack traces (tsx turns them on process-wide). */
  sourceMaps: boolean;
  /** The file Warden's worker module was loaded from. */
  wardenWorkerModule: string;
}

/** The bare bundle, cached like Warden's own (so both workers start from a cached bundle). */
async function bareBundle(workflowsPath: string, cacheDir: string): Promise<WorkflowBundleWithSourceMap> {
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  const key = createHash('sha256').update(sdk.version).update(await readFile(workflowsPath)).digest('hex').slice(0, 24);
  const file = join(cacheDir, `bare-workflow-bundle-${key}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as WorkflowBundleWithSourceMap;
  } catch {
    const bundle = await bundleWorkflowCode({ workflowsPath, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    await mkdir(cacheDir, { recursive: true });
    await writeFile(file, JSON.stringify(bundle));
    return bundle;
  }
}

async function main(): Promise<void> {
  const [kind, address, namespace, taskQueue, stateDir, wardenModules, bareWorkflows] = process.argv.slice(2) as [string, string, string, string, string, string, string];
  const wardenWorkerModule = require.resolve(join(wardenModules, 'worker', 'create-warden-worker'));
  const { createWardenWorker, installQuietRuntime } = require(wardenWorkerModule) as typeof CreateWardenWorker;
  const { setupProcessTelemetry } = require(join(wardenModules, 'telemetry', 'process-telemetry')) as typeof ProcessTelemetry;
  installQuietRuntime();
  const connection = await NativeConnection.connect({ address });
  const cacheDir = join(stateDir, 'cache');
  let run: () => Promise<void>;
  let shutdown: () => void;
  if (kind === 'guarded') {
    const telemetry = setupProcessTelemetry({ stateDir, serviceName: 'warden-worker', env: process.env });
    const worker = await createWardenWorker({ connection, namespace, taskQueue, stateDir, cacheDir, ...(telemetry === undefined ? {} : { telemetry }) });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    run = async () => {
      try {
        await worker.run(stopped);
      } finally {
        await telemetry?.shutdown();
      }
    };
    shutdown = () => stop();
  } else {
    const worker = await Worker.create({ connection, namespace, taskQueue, workflowBundle: await bareBundle(bareWorkflows, cacheDir), activities: bareActivities });
    run = () => worker.run();
    shutdown = () => worker.shutdown();
  }
  process.once('SIGTERM', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.resume();
  const running = run();
  const ready: WorkerReady = {
    ready: true,
    execArgv: process.execArgv,
    tsx: Object.keys(require.cache).some((file) => /[\\/]node_modules[\\/]tsx[\\/]/.test(file)),
    sourceMaps: process.sourceMapsEnabled,
    wardenWorkerModule,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  await running;
  await connection.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench worker: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
