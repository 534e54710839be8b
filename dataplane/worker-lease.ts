/**
 * A worker id's lease: at most one data plane (one state folder: its overlays, grants and sandbox
 * host) holds a worker id, and so polls `<taskQueue>@<id>`, at a time. Two workers of different
 * state folders under one id would split a task's calls between two overlays (every task failing
 * `ERR_OVERLAY_MISSING`), so the second is refused at start (`ERR_WORKER_ID_IN_USE`).
 *
 * The holder is the state folder, named by a random id kept in it (`<stateDir>/state-folder-id`):
 * several processes of one state folder (a `warden worker` and `warden run`s beside it) share one
 * data plane and may share the id; two containers with the same host name and state path, but
 * their own volumes, are different holders.
 *
 * Where the lease lives: with `WARDEN_DATABASE_URL`, a row of `warden_worker_leases` (schema
 * version 5), taken by one conditional upsert, so of two workers racing exactly one wins; else a
 * file `workers/<id>.lease.json` in the shared folder, read and written under a lock folder
 * (`mkdir` is atomic, on NFS too). The lease is renewed every `renewMs` (10 s) and lasts `ttlMs`
 * (30 s): a worker that crashed frees its id 30 s later at most; a clean stop frees it at once.
 * A worker whose renewal finds another holder (it stalled past expiry and was replaced) reports
 * the lease lost, and the worker stops polling rather than share the id.
 *
 * Times are this machine's clock (`Date.now()`): clocks of the workers must agree to within a
 * few seconds (NTP), as for JWT expiry.
 */
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, DataPlaneError, type WardenError } from '../errors';
import type { SqlDatabase } from '../state/sql-database';
import { toSafeInteger } from '../state/sql-database';
import { WORKER_ID_ENV } from './shared-storage';
import { setLongTimeout, type LongTimeout } from '../long-timer';

export const LEASE_TTL_MS = 30_000;
export const LEASE_RENEW_MS = 10_000;

export interface WorkerLeaseOptions {
  workerId: string;
  stateDir: string;
  /** The shared folder (file leases); unused with `db`. */
  sharedDir: string;
  /** The shared state database: the lease is a row there. */
  db?: SqlDatabase;
  ttlMs?: number;
  renewMs?: number;
  now?: () => number;
}

export interface WorkerLease {
  workerId: string;
  /** This process's nonce. */
  instance: string;
  /** The state folder's id (the holder). */
  holder: string;
  /** Settles with the reason once the lease is lost (another holder took the id); never rejects. */
  lost: Promise<WardenError>;
  /** Stops renewing and frees the id (when this process wrote the lease last). */
  release(): Promise<void>;
}

const LeaseRecordSchema = z.object({
  workerId: z.string(),
  holder: z.string(),
  instance: z.string(),
  description: z.string(),
  expiresAt: z.number().int(),
});
type LeaseRecord = z.infer<typeof LeaseRecordSchema>;

/** The id of state folder `stateDir`, created once (race-free). */
export async function stateFolderId(stateDir: string): Promise<string> {
  const file = join(stateDir, 'state-folder-id');
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const fresh = randomUUID();
  try {
    await fsp.writeFile(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const text = (await fsp.readFile(file, 'utf8')).trim();
    if (/^[0-9a-f-]{36}$/.test(text)) return text;
    await new Promise((r) => setTimeout(r, 20)); // being written by another process right now
  }
  throw new DataPlaneError('ERR_SHARED_STORAGE', `${file} does not hold a state-folder id; remove it`, { details: { file } });
}

function inUse(workerId: string, held: { description: string; expiresAt: number }, where: string): WardenError {
  return new ConfigError(
    'ERR_WORKER_ID_IN_USE',
    `worker id "${workerId}" is held by another live worker (${held.description}) until ${new Date(held.expiresAt).toISOString()} (lease in ${where}): ` +
      `two workers of different state folders under one id would split tasks between two data planes. Give this worker its own id (${WORKER_ID_ENV}), ` +
      `or stop the other; a worker that crashed frees its id when its lease expires (${LEASE_TTL_MS / 1000} s after its last renewal).`,
    { details: { workerId, holder: held.description, expiresAt: new Date(held.expiresAt).toISOString() } },
  );
}

/**
 * Takes worker id `workerId` for this state folder, renewing it until `release()`.
 * @throws WardenError ERR_WORKER_ID_IN_USE naming the other holder and when its lease ends
 */
export async function acquireWorkerLease(options: WorkerLeaseOptions): Promise<WorkerLease> {
  const ttlMs = options.ttlMs ?? LEASE_TTL_MS;
  const renewMs = options.renewMs ?? LEASE_RENEW_MS;
  const now = options.now ?? Date.now;
  const holder = await stateFolderId(options.stateDir);
  const instance = randomUUID();
  const description = `host ${hostname()}, pid ${process.pid}, state folder ${options.stateDir}, instance ${instance}`;
  const store = options.db === undefined ? new FileLeaseStore(options.sharedDir) : new DatabaseLeaseStore(options.db);
  const mine = (): LeaseRecord => ({ workerId: options.workerId, holder, instance, description, expiresAt: now() + ttlMs });
  const first = await store.take(mine(), now());
  if (first !== undefined) throw inUse(options.workerId, first, store.where);

  let onLost!: (error: WardenError) => void;
  const lost = new Promise<WardenError>((resolve) => (onLost = resolve));
  let stopped = false;
  let timer: LongTimeout | undefined;
  let renewing: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setLongTimeout(() => {
      renewing = (async () => {
        try {
          const other = await store.take(mine(), now());
          if (stopped) return;
          if (other !== undefined) {
            stopped = true;
            onLost(inUse(options.workerId, other, store.where));
            return;
          }
        } catch {
          // The store is unreachable for now: keep polling on the lease we hold and try again; it
          // only expires for others after ttlMs, by which time a renewal has normally succeeded.
        }
        if (!stopped) schedule();
      })();
    }, renewMs);
    timer.unref();
  };
  schedule();
  return {
    workerId: options.workerId,
    instance,
    holder,
    lost,
    async release() {
      if (stopped) return;
      stopped = true;
      timer?.clear();
      await renewing;
      await store.free(options.workerId, instance).catch(() => undefined);
    },
  };
}

interface LeaseStore {
  readonly where: string;
  /** Writes `record` unless another holder's lease is unexpired at `at`; returns that lease then. */
  take(record: LeaseRecord, at: number): Promise<LeaseRecord | undefined>;
  /** Deletes the lease when `instance` wrote it last. */
  free(workerId: string, instance: string): Promise<void>;
}

class DatabaseLeaseStore implements LeaseStore {
  readonly where: string;
  constructor(private readonly db: SqlDatabase) {
    this.where = `the shared database ${db.description}`;
  }

  async take(record: LeaseRecord, at: number): Promise<LeaseRecord | undefined> {
    // One statement: the database serialises two workers racing for the same id.
    const changed = await this.db.run(
      `INSERT INTO warden_worker_leases (worker_id, holder, instance, description, expires_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (worker_id) DO UPDATE SET holder = excluded.holder, instance = excluded.instance, description = excluded.description, expires_at = excluded.expires_at
       WHERE warden_worker_leases.holder = excluded.holder OR warden_worker_leases.expires_at < $6`,
      [record.workerId, record.holder, record.instance, record.description, record.expiresAt, at],
    );
    if (changed > 0) return undefined;
    const row = await this.db.get<{ holder: string; instance: string; description: string; expires_at: unknown }>(
      'SELECT holder, instance, description, expires_at FROM warden_worker_leases WHERE worker_id = $1',
      [record.workerId],
    );
    if (row === undefined) return this.take(record, at); // freed in between
    return { workerId: record.workerId, holder: row.holder, instance: row.instance, description: row.description, expiresAt: toSafeInteger(row.expires_at, 'expires_at') };
  }

  async free(workerId: string, instance: string): Promise<void> {
    await this.db.run('DELETE FROM warden_worker_leases WHERE worker_id = $1 AND instance = $2', [workerId, instance]);
  }
}

const LOCK_STALE_MS = 15_000;

class FileLeaseStore implements LeaseStore {
  readonly where: string;
  private readonly dir: string;
  constructor(sharedDir: string) {
    this.dir = join(sharedDir, 'workers');
    this.where = `the shared folder ${sharedDir}`;
  }

  private file(workerId: string): string {
    return join(this.dir, `${workerId}.lease.json`);
  }

  /** Runs `fn` holding `<id>.lease.lock` (a folder: mkdir is atomic); a lock left by a crash is broken after 15 s. */
  private async locked<T>(workerId: string, fn: () => Promise<T>): Promise<T> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const lock = join(this.dir, `${workerId}.lease.lock`);
    for (let attempt = 0; ; attempt += 1) {
      try {
        await fsp.mkdir(lock, { mode: 0o700 });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const stat = await fsp.stat(lock).catch(() => undefined);
        if (stat !== undefined && Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
          // Break it by renaming to a unique name: of several breakers one renames it.
          const aside = `${lock}.stale-${randomUUID()}`;
          await fsp.rename(lock, aside).then(() => fsp.rm(aside, { recursive: true, force: true }), () => undefined);
          continue;
        }
        await new Promise((r) => setTimeout(r, Math.min(200, 10 + attempt * 10)));
      }
    }
    try {
      return await fn();
    } finally {
      await fsp.rm(lock, { recursive: true, force: true });
    }
  }

  private async read(workerId: string): Promise<LeaseRecord | undefined> {
    const text = await fsp.readFile(this.file(workerId), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined) return undefined;
    try {
      return LeaseRecordSchema.parse(JSON.parse(text));
    } catch {
      return undefined; // not a lease we can read (cut short by a crash): no holder
    }
  }

  async take(record: LeaseRecord, at: number): Promise<LeaseRecord | undefined> {
    return this.locked(record.workerId, async () => {
      const held = await this.read(record.workerId);
      if (held !== undefined && held.holder !== record.holder && held.expiresAt >= at) return held;
      const tmp = `${this.file(record.workerId)}.${record.instance}.tmp`;
      await fsp.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      await fsp.rename(tmp, this.file(record.workerId));
      return undefined;
    });
  }

  async free(workerId: string, instance: string): Promise<void> {
    await this.locked(workerId, async () => {
      const held = await this.read(workerId);
      if (held?.instance === instance) await fsp.rm(this.file(workerId), { force: true });
    });
  }
}
