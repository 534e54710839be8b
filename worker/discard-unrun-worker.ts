/**
 * Letting go of a Temporal Worker that was created but must not run (another part of the Warden
 * worker failed to start, e.g. its sandbox host never answered).
 *
 * The SDK (@temporalio/worker) has no close for a Worker that never ran: the only way to release
 * its workflow threads and its hold on the connection is `run()` then `shutdown()`. But `run()`
 * starts the task pollers at once, and a poll that reaches the server before the shutdown is
 * matched with any task already waiting on the queue: a worker whose sandbox host never answered
 * took a workflow task (seen under CI load; test/attacks/open/failed-host-worker-takes-task.test.ts; not closed: the no-stall row of test/attacks/open/discard-unrun-worker-takes-task.test.ts still took a task once under load).
 *
 * So Core is told to shut down first, through the bridge's `initiateShutdown` (the call
 * `Worker.shutdown()` itself makes): every poll then ends with Core's ShutdownError before any
 * request is sent, and `run()` only drains and releases. That reaches into the SDK's internals,
 * so it is done only on the release line they were read against; on any other release
 * {@link canDiscardWithoutPolling} is false and the caller must not create the Worker before it
 * knows it will run it.
 */
import type { Worker } from '@temporalio/worker';
import { installedSdkVersion, knownSdkInternals } from './prestarted-thread-worker';

/** The part of the SDK's NativeWorker (worker.js, 1.24) used here. */
interface CoreWorkerHandle {
  initiateShutdown(): void;
}

function coreWorkerOf(worker: Worker): CoreWorkerHandle | undefined {
  const native = (worker as unknown as { nativeWorker?: Partial<CoreWorkerHandle> }).nativeWorker;
  return typeof native?.initiateShutdown === 'function' ? (native as CoreWorkerHandle) : undefined;
}

let sdkChecked: boolean | undefined;

/**
 * Whether a created Worker can be let go of without any of its pollers reaching the server
 * (the installed @temporalio/worker is of the 1.24.x line this module was read against).
 */
export function canDiscardWithoutPolling(): boolean {
  sdkChecked ??= knownSdkInternals(installedSdkVersion());
  return sdkChecked;
}

/**
 * Releases a Worker that was created and never ran: its workflow threads end and the connection
 * is free to close. When {@link canDiscardWithoutPolling}, no task is taken from its queue;
 * otherwise a task matched in the instant between `run()` and `shutdown()` is finished or handed
 * back as for any worker that shuts down.
 * Never throws; resolves once the Worker has stopped.
 */
export async function discardUnrunWorker(worker: Worker): Promise<void> {
  const core = canDiscardWithoutPolling() ? coreWorkerOf(worker) : undefined;
  try {
    core?.initiateShutdown();
  } catch {
    // Core refused (already shutting down): run() below still drains and releases.
  }
  const running = worker.run();
  try {
    worker.shutdown();
  } catch {
    // Already stopping.
  }
  await running.catch(() => undefined);
}
