/**
 * The one cross-process lock file of Warden (the keystore's `.lock`, the Temporal CLI build lock,
 * the embedded server's `start.lock`). Invariant: at most one live process holds a lock file at a
 * time, and a lock is only ever taken from a holder that no longer runs (process-stat.ts
 * `processRuns`: gone, a zombie, its pid now another process's or a thread's id).
 *
 * Record format (written from now on): one JSON object,
 *   `{"v":1,"pid":<int>,"startTime":"<field 22 of /proc/<pid>/stat>","token":"<uuid>","createdAt":"<ISO>"}`
 * (`startTime` absent without /proc). It is written whole under a temporary name and hard-linked
 * into place (link fails with EEXIST like O_EXCL), so a reader never sees a half-written record.
 * Records of older Wardens are still read and honoured or cleared as they were:
 * - JSON `{pid, startTime?, token, createdAt}` (temporal/temporal-cli.ts);
 * - text `<pid>:<start time>:<token>` and the older `<pid>:<token>` (identity/keystore.ts).
 * A record that parses as none of these (torn by an older writer, or corrupt) is stale once its
 * file is older than {@link UNREADABLE_GRACE_MS}.
 *
 * No time rule for a live holder: the keystore used to clear any lock older than 60 s even when its
 * holder still ran, while the Temporal locks never did. A live holder can legitimately hold longer
 * (a slow disk, a stopped debugger, a CLI build taking minutes), and taking its lock lets two
 * processes write the same files at once; waiting costs at most a typed, retryable timeout. So the
 * safer rule is kept: only a holder that no longer runs loses its lock.
 *
 * Race-free takeover: clearing a stale record is itself exclusive. A taker that judged record R
 * stale must first create the breaker `<file>.break-<R>-<n>` (O_EXCL, its own pid and start time
 * in it), R being the stale record's inode and content digest. Generation n+1 may only be created
 * once generation n's creator no longer runs, so among the takers of one stale record at most one
 * live one holds a breaker. Holding it, it re-reads the lock file: still R, so nobody else can
 * remove it now (its holder is gone and every other remover needs the breaker), and it unlinks it;
 * otherwise it leaves it. Then it removes its breakers and tries the exclusive create again, where
 * two takers still only ever get one lock. (The keystore's earlier rename-aside-and-put-back and the
 * CLI lock's re-read-then-unlink could both hand one lock to two takers.) Breakers left by a taker
 * that died mid-takeover stay behind until the next takeover of the same record removes them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { link, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ownProcessStartTime, processRuns } from './process-stat';
import { longDelay } from './long-timer';

/** An unreadable record (an older Warden's record being written, or a corrupt one) counts as held this long after its file's last change. */
export const UNREADABLE_GRACE_MS = 10_000;

export interface FileLockOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Wait this long between attempts (default 500 ms); `pollJitterMs` adds up to that much at random. */
  pollMs?: number;
  pollJitterMs?: number;
  /** File mode of the lock file (default 0600). */
  mode?: number;
  /** Called once, when the lock is found held by a live process. */
  onWait?: (holderPid: number | undefined) => void;
  /** The error to throw when the lock cannot be had within `timeoutMs` (the caller's typed error with its stable code). */
  timeoutError: () => Error;
}

/** What a lock file says about its holder, whichever format wrote it. */
export interface LockHolder {
  pid: number;
  /** Absent in records written before start times were kept. */
  startTime?: string;
  token: string;
}

/** Parses a lock record of any format Warden wrote; undefined when it is none (torn or corrupt). */
export function parseLockRecord(text: string): LockHolder | undefined {
  if (text.startsWith('{')) {
    try {
      const record = JSON.parse(text) as Record<string, unknown>;
      if (typeof record.pid !== 'number' || typeof record.token !== 'string') return undefined;
      return { pid: record.pid, token: record.token, ...(typeof record.startTime === 'string' ? { startTime: record.startTime } : {}) };
    } catch {
      return undefined;
    }
  }
  // identity/keystore.ts before: `<pid>:<start time>:<token>`, earlier `<pid>:<token>`.
  const fields = text.split(':');
  if ((fields.length !== 2 && fields.length !== 3) || !/^\d+$/.test(fields[0]!)) return undefined;
  const pid = Number(fields[0]);
  return fields.length === 3 ? { pid, startTime: fields[1]!, token: fields[2]! } : { pid, token: fields[1]! };
}

interface Observed {
  /** Identity of this very record: its inode and a digest of its content. */
  id: string;
  holder?: LockHolder;
  mtimeMs: number;
}

async function observe(file: string): Promise<Observed | undefined> {
  let text: string;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    const handle = await open(file, 'r');
    try {
      [text, info] = await Promise.all([handle.readFile('utf8'), handle.stat()]);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // released meanwhile
    throw error;
  }
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const holder = parseLockRecord(text);
  return { id: `${info.ino}-${digest}`, mtimeMs: info.mtimeMs, ...(holder === undefined ? {} : { holder }) };
}

function isStale(seen: Observed): boolean {
  return seen.holder !== undefined ? !processRuns(seen.holder.pid, seen.holder.startTime) : Date.now() - seen.mtimeMs > UNREADABLE_GRACE_MS;
}

/** Writes `content` whole and links it in as `file`; false when `file` exists. */
async function createWhole(file: string, content: string, mode: number): Promise<boolean> {
  const temp = `${file}.${randomUUID()}.tmp`;
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
  try {
    await link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

function ownRecord(token: string): string {
  const startTime = ownProcessStartTime();
  return JSON.stringify({ v: 1, pid: process.pid, ...(startTime === undefined ? {} : { startTime }), token, createdAt: new Date().toISOString() });
}

/**
 * Removes the stale record `seen` from `file` unless it changed meanwhile, exclusively among takers
 * (see the module header). Returns whether the caller should try to create the lock at once.
 */
async function clearStale(file: string, seen: Observed, mode: number): Promise<boolean> {
  const prefix = `${basename(file)}.break-${seen.id}-`;
  const created: string[] = [];
  try {
    for (let generation = 1; ; generation += 1) {
      const breaker = join(dirname(file), `${prefix}${generation}`);
      if (await createWhole(breaker, ownRecord(randomUUID()), mode)) {
        created.push(breaker);
        break;
      }
      const other = await observe(breaker);
      if (other === undefined) {
        generation -= 1; // removed meanwhile: try this generation again
        continue;
      }
      if (!isStale(other)) return false; // another live taker is clearing it
    }
    const now = await observe(file);
    if (now?.id === seen.id) await unlink(file).catch(() => {});
    // Every generation of this record's breakers: those below ours belong to takers that no longer run.
    for (const entry of await readdir(dirname(file))) {
      if (entry.startsWith(prefix) && /^\d+$/.test(entry.slice(prefix.length))) await unlink(join(dirname(file), entry)).catch(() => {});
    }
    return true;
  } catch (error) {
    for (const breaker of created) await unlink(breaker).catch(() => {});
    throw error;
  }
}

/**
 * Takes the exclusive lock `file`: created whole, with this process's pid and start time, only when
 * absent or held by a process that no longer runs. Resolves to the release function, which removes
 * the file only while it is still this holder's.
 * @throws the error `options.timeoutError()` makes, when a live holder keeps it past `timeoutMs`.
 */
export async function acquireFileLock(file: string, options: FileLockOptions): Promise<() => Promise<void>> {
  const token = randomUUID();
  const mode = options.mode ?? 0o600;
  const deadline = Date.now() + options.timeoutMs;
  let waited = false;
  for (;;) {
    if (await createWhole(file, ownRecord(token), mode)) {
      return async () => {
        const current = await observe(file).catch(() => undefined);
        if (current?.holder?.token === token) await unlink(file).catch(() => {});
      };
    }
    const seen = await observe(file);
    if (seen === undefined) continue;
    if (isStale(seen) && (await clearStale(file, seen, mode))) continue;
    if (Date.now() >= deadline) throw options.timeoutError();
    if (!waited) {
      waited = true;
      options.onWait?.(seen.holder?.pid);
    }
    await longDelay((options.pollMs ?? 500) + Math.floor(Math.random() * (options.pollJitterMs ?? 0)));
  }
}

/** Runs `fn` holding lock `file` ({@link acquireFileLock}), releasing it however `fn` ends. */
export async function withFileLock<T>(file: string, options: FileLockOptions, fn: () => Promise<T>): Promise<T> {
  const release = await acquireFileLock(file, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}
