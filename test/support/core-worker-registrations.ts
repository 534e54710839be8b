/**
 * Which Core workers (the part of a Temporal Worker that polls) this test process registered, by
 * identity: the SDK's `Runtime.registerWorker`, which `Worker.create` calls, is wrapped once per
 * process. Used by the tests that a Warden worker which must not run registers none.
 */
import { Runtime } from '@temporalio/worker';

/** Identities every Core worker of this process was registered under, in order. */
const registered: string[] = [];

/** Starts recording (idempotent). Call after the Runtime is installed (e.g. `installQuietRuntime()`), before the worker is made. */
export function recordCoreWorkers(): void {
  const runtime = Runtime.instance() as unknown as { registerWorker(client: unknown, options: { identity?: string }): Promise<unknown>; recorded?: true };
  if (runtime.recorded === true) return;
  const register = runtime.registerWorker.bind(runtime);
  runtime.registerWorker = (client, options) => {
    registered.push(options.identity ?? '');
    return register(client, options);
  };
  runtime.recorded = true;
}

/** How many Core workers were registered under `identity` since {@link recordCoreWorkers}. */
export function coreWorkersRegistered(identity: string): number {
  return registered.filter((who) => who === identity).length;
}
