/**
 * Who a standalone `warden worker` is, as Temporal records its pollers, so `warden run` can tell
 * a worker that shares its state folder (the same keys, grant stores and custody ledger) from any
 * other worker on the task queue, and start its task as a client only instead of building a
 * worker of its own.
 *
 * The identity is `warden-worker/<pid>@<host>/state-<hash>`, where `<hash>` is the first 16 hex
 * digits of SHA-256 over the state folder's real path: it names the folder without writing the
 * path into the server's records. Only standalone workers carry it; `warden run`'s in-process
 * worker, which stops when its own task ends, keeps the SDK's default identity and is never reused.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';

const PREFIX = 'warden-worker/';

/** The state folder's fingerprint: 16 hex digits of SHA-256 over its real path (its resolved path when it does not exist yet). */
export function stateDirFingerprint(stateDir: string): string {
  let path: string;
  try {
    path = realpathSync(stateDir);
  } catch {
    path = resolve(stateDir);
  }
  return createHash('sha256').update(path).digest('hex').slice(0, 16);
}

/** The Temporal identity of a standalone worker of this process on `stateDir`. */
export function standaloneWorkerIdentity(stateDir: string, pid = process.pid, host = hostname()): string {
  return `${PREFIX}${pid}@${host}/state-${stateDirFingerprint(stateDir)}`;
}

export interface StandaloneWorkerIdentity {
  pid: number;
  host: string;
  stateFingerprint: string;
}

/** Reads an identity made by {@link standaloneWorkerIdentity}; undefined for any other identity. */
export function parseStandaloneWorkerIdentity(identity: string): StandaloneWorkerIdentity | undefined {
  const match = /^warden-worker\/(\d+)@(.+)\/state-([0-9a-f]{16})$/.exec(identity);
  if (match === null) return undefined;
  return { pid: Number(match[1]), host: match[2]!, stateFingerprint: match[3]! };
}

/** Whether process `pid` exists on this machine (signal 0 checks without sending anything). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The first of `pollers` (identities Temporal saw poll recently, see cli/temporal-client.ts) that
 * is a standalone worker on this machine, on the state folder `stateDir`, whose process still runs.
 * A worker on another machine is never picked: its process cannot be checked from here.
 */
export function liveStandaloneWorker(pollers: readonly string[], stateDir: string, host = hostname()): string | undefined {
  const fingerprint = stateDirFingerprint(stateDir);
  return pollers.find((identity) => {
    const parsed = parseStandaloneWorkerIdentity(identity);
    return parsed !== undefined && parsed.host === host && parsed.stateFingerprint === fingerprint && processExists(parsed.pid);
  });
}

/** Pollers that are standalone workers on another state folder (their tasks' keys and ledger are not this run's). */
export function otherStateWorkers(pollers: readonly string[], stateDir: string): string[] {
  const fingerprint = stateDirFingerprint(stateDir);
  return pollers.filter((identity) => {
    const parsed = parseStandaloneWorkerIdentity(identity);
    return parsed !== undefined && parsed.stateFingerprint !== fingerprint;
  });
}
