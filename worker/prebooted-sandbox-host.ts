/**
 * A worker's sandbox host booted before the worker is created (issue 17: `warden run`'s start-up).
 *
 * The host is a process of its own (isolated-vm and the host's modules load there); a worker
 * boots it once its stores and credential authority are open, and it had become the last part a
 * `warden run` waited for. Booted by the command as it starts, it loads while the main thread
 * checks the task and loads the worker's modules. The worker uses it only when it would boot its
 * own host with exactly the same options (the same state folder's keys and stores, no shared
 * database, no key source); otherwise it is closed and the worker boots its own. Either way the
 * worker still waits for the host's start-up probe before anything polls.
 */
import { isDeepStrictEqual } from 'node:util';
import { SandboxClient, type SandboxClientOptions } from '../sandbox/sandbox-client';

export interface BootedSandboxHost {
  client: SandboxClient;
  /** Resolves once the host answered its start-up probe; rejects when it could not start. */
  ready: Promise<void>;
}

export interface PrebootedSandboxHost {
  /**
   * The host, when it was booted with exactly `options` and not taken yet (the taker owns it from
   * then on and closes it); else undefined, and a host booted otherwise is closed.
   */
  take(options: SandboxClientOptions): Promise<BootedSandboxHost | undefined>;
  /** Closes the host unless it was taken. */
  discard(): Promise<void>;
}

/** Boots a sandbox host now with `options`, for a worker created later in this process. */
export function prebootSandboxHost(options: SandboxClientOptions): PrebootedSandboxHost {
  const booted = SandboxClient.boot(options);
  // Awaited by the worker that takes it; a host nobody takes is closed without its failure being thrown.
  booted.ready.catch(() => undefined);
  let taken = false;
  const discard = async () => {
    if (taken) return;
    taken = true;
    await booted.client.close();
  };
  return {
    async take(wanted) {
      if (taken) return undefined;
      if (!isDeepStrictEqual(wanted, options)) {
        await discard();
        return undefined;
      }
      taken = true;
      return booted;
    },
    discard,
  };
}
