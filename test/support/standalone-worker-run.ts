/**
 * A task file run by `warden run` through a standalone `warden worker` on its own queue, as a
 * user runs one: the worker is spawned first, the run starts once it polls. The worker is left
 * running (the caller stops it, e.g. stopChildren) so its log can be read after the run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { collectOutput, waitForOutput, type CollectedOutput } from './child-output';
import { REPO_ROOT } from './warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');

export interface StandaloneWorkerRun {
  worker: ChildProcess;
  workerOutput: CollectedOutput;
  /** `warden run`'s exit code and output (code 0 when it succeeded). */
  run: { code: number; stdout: string; stderr: string };
}

/** Spawns `warden worker --task-queue <taskQueue>` in `cwd` with `env`, waits for it to poll, then runs `warden run <taskFile>` on that queue. */
export async function runThroughStandaloneWorker(options: { cwd: string; env: NodeJS.ProcessEnv; taskQueue: string; taskFile: string }): Promise<StandaloneWorkerRun> {
  const { cwd, env, taskQueue, taskFile } = options;
  const worker = spawn(process.execPath, [BIN, 'worker', '--task-queue', taskQueue], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const workerOutput = collectOutput(worker);
  await waitForOutput(worker, workerOutput, 'stderr', `worker polling ${taskQueue}`);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'run', taskFile, '--task-queue', taskQueue], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
    return { worker, workerOutput, run: { code: 0, stdout, stderr } };
  } catch (error) {
    return { worker, workerOutput, run: error as { code: number; stdout: string; stderr: string } };
  }
}
