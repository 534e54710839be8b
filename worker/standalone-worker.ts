/**
 * Who a standalone `warden worker` is, as Temporal records its pollers, so `warden run` can tell
 * its own user's worker on its state folder (the same keys, grant stores and custody ledger) from
 * any other poller on the task queue, and start its task as a client only instead of building a
 * worker of its own.
 *
 * The identity is `warden-worker/<pid>@<host>/state-<hash>/<nonce>`: `<hash>` is the first 16 hex
 * digits of SHA-256 over the state folder's real path (it names the folder without writing the
 * path into the server's records), `<nonce>` 32 random hex digits. An identity is only a poller's
 * claim: anyone who reaches the server can poll under any identity. What `warden run` trusts is
 * the worker's record, `<stateDir>/standalone-workers/<nonce>.json`, which the worker creates
 * exclusively at start (mode 0600, in a 0700 folder of the state folder's owner): it holds the
 * worker's pid, its process start time (field 22 of /proc/<pid>/stat, so a reused pid does not
 * match) and the nonce. A poller is reused only when its identity names
 * a record that this user alone can have written, the pid in the identity is the record's, that
 * process is alive, owned by this user and started at the recorded time (see
 * {@link checkStandaloneWorker}). Only standalone workers carry such an identity; `warden run`'s
 * in-process worker, which stops when its own task ends, polls under `warden-run/<pid>@<host>/<nonce>`
 * ({@link runWorkerIdentity}) and is never reused; its record `<stateDir>/run-workers/<nonce>.json`
 * ({@link recordRunWorker}, which `warden mcp serve`'s worker writes too) only lets later runs
 * leave it out of their notes once it has ended.
 * Ended workers: the server lists a poller for about 90 s after its last poll, so every worker
 * Warden runs on a state folder leaves its record behind when it ends, its time and `endedAt` the
 * end (or, after a SIGKILL, its time its last refresh, every 30 s while it runs, and no
 * `endedAt`), for {@link RUN_RECORD_KEEP_MS}: a later run neither names it as a stranger nor
 * refuses it as a forger in that window, as long as the server saw its identity poll no later
 * than its end (one refresh later without `endedAt`): a later poll is a stranger's under the
 * copied identity ({@link isEndedWorker}). The server's time is when the latest poll arrived, and
 * a long poll stays open up to {@link SERVER_LONG_POLL_WINDOW_MS}: a poll that arrived within that
 * window before the end and may still be open is the worker's own last poll or a stranger's,
 * which nothing the server lists tells apart, so it is named in a note of its own
 * ({@link possiblyOpenPolls}). The record is pruned after the window.
 * Every other poller on the queue is named to the user ({@link unvouchedPollers}): Temporal cannot
 * keep it from being handed the task.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { processRuns, readProcStat } from '../process-stat';

const PREFIX = 'warden-worker/';
/** The folder of worker records inside the state folder. */
export const STANDALONE_RECORDS_DIR = 'standalone-workers';
const NONCE = /^[0-9a-f]{32}$/;

/** The state folder's fingerprint: 16 hex digits of SHA-256 over its real path (its resolved path when it does not exist yet). */
export function stateDirFingerprint(stateDir: string): string {
  let path: string;
  try {
    path = fs.realpathSync(stateDir);
  } catch {
    path = resolve(stateDir);
  }
  return createHash('sha256').update(path).digest('hex').slice(0, 16);
}

/** The Temporal identity of a standalone worker of process `pid` on `stateDir` whose record has `nonce`. */
export function standaloneWorkerIdentity(stateDir: string, nonce: string, pid = process.pid, host = hostname()): string {
  return `${PREFIX}${pid}@${host}/state-${stateDirFingerprint(stateDir)}/${nonce}`;
}

export interface StandaloneWorkerIdentity {
  pid: number;
  host: string;
  stateFingerprint: string;
  /** The record's nonce; undefined for an identity without one (a worker before records, or a forgery). */
  nonce: string | undefined;
}

/** Reads an identity made by {@link standaloneWorkerIdentity} (or the older one without a nonce); undefined for any other identity. */
export function parseStandaloneWorkerIdentity(identity: string): StandaloneWorkerIdentity | undefined {
  const match = /^warden-worker\/(\d+)@(.+)\/state-([0-9a-f]{16})(?:\/([0-9a-f]{32}))?$/.exec(identity);
  if (match === null) return undefined;
  return { pid: Number(match[1]), host: match[2]!, stateFingerprint: match[3]!, nonce: match[4] };
}

/** What a standalone worker writes about itself in its state folder. */
export const StandaloneWorkerRecordSchema = z
  .object({
    pid: z.number().int().positive(),
    /** Field 22 of /proc/<pid>/stat: clock ticks since boot when the process started. */
    startTime: z.string().regex(/^\d+$/),
    nonce: z.string().regex(NONCE),
    /**
     * When the worker ended (ms since the epoch), written by its `ended()` once it no longer
     * polls; absent while it runs and after a SIGKILL or crash (its end then unknown: at most one
     * refresh after the record's time).
     */
    endedAt: z.number().int().positive().optional(),
  })
  .strict();
export type StandaloneWorkerRecord = z.infer<typeof StandaloneWorkerRecordSchema>;

/**
 * The start time of process `pid`: field 22 of /proc/<pid>/stat (starttime, clock ticks after boot;
 * proc(5)), as a decimal string; undefined when the process does not exist or /proc is not there.
 */
export function processStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}

function recordsDir(stateDir: string): string {
  return join(stateDir, STANDALONE_RECORDS_DIR);
}

const uid = (): number | undefined => process.getuid?.();

/**
 * Why a folder cannot vouch for a record: not a real folder, another user's, or writable by
 * group or others (`exact`: any group/other permission at all). undefined when it can.
 */
function folderProblem(dir: string, exact: boolean): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch {
    return `${dir} does not exist`;
  }
  if (!stat.isDirectory()) return `${dir} is not a folder`;
  if (stat.uid !== uid()) return `${dir} belongs to uid ${stat.uid}, not this user`;
  if ((stat.mode & (exact ? 0o077 : 0o022)) !== 0) return `${dir} is open to others (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * Makes `dir`, a folder of worker records, private (0700) without ever following a link: the
 * folder is made if missing, opened O_DIRECTORY | O_NOFOLLOW and the opened folder chmodded, so
 * a link planted in its place (to a folder of the user's, a file, nowhere) is refused and its
 * target's permissions are left alone. Used for every private record folder of this module.
 * Returns why the folder cannot hold records ({@link folderProblem}), undefined when it can.
 */
function makePrivateRecordsFolder(dir: string): string | undefined {
  // The state folder above may be missing (made as before); the last component is made alone, so an existing link stays a link.
  fs.mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') return `${dir} is not a folder`;
    throw error;
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.uid !== uid()) return `${dir} belongs to uid ${stat.uid}, not this user`;
    fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
  return folderProblem(dir, true);
}

/** A standalone worker's record, written by {@link writeStandaloneWorkerRecord}. */
export interface StandaloneWorkerRegistration {
  nonce: string;
  file: string;
  /**
   * Marks the worker as ended now (the record's time; call once it no longer polls) and stops
   * refreshing it; idempotent, and run at the process's exit. The record stays for
   * {@link RUN_RECORD_KEEP_MS}, so the next runs neither name nor refuse the ended worker the
   * server still lists.
   */
  ended(): void;
}

/**
 * Creates this process's record in `<stateDir>/standalone-workers/` (0700), exclusively (O_EXCL
 * and never following a link, then linked into place whole) and mode 0600, with a fresh 128-bit
 * nonce. Its time is refreshed every 30 s while this process runs and set at its end
 * ({@link StandaloneWorkerRegistration.ended}). Records of workers that ended (pid gone or reused:
 * start time differs) more than {@link RUN_RECORD_KEEP_MS} ago are removed on the way.
 * @throws Error when the folder cannot be made private or the record cannot be created.
 */
export function writeStandaloneWorkerRecord(stateDir: string, now = Date.now()): StandaloneWorkerRegistration {
  const dir = recordsDir(stateDir);
  const problem = makePrivateRecordsFolder(dir);
  if (problem !== undefined) throw new Error(`cannot record the standalone worker: ${problem}`);
  sweepEndedRecords(dir, now);
  const startTime = processStartTime(process.pid);
  if (startTime === undefined) throw new Error('cannot record the standalone worker: /proc/self/stat is not readable');
  const nonce = randomBytes(16).toString('hex');
  const record = { pid: process.pid, startTime, nonce };
  const file = writeRecordExclusively(dir, record);
  return { nonce, file, ended: keepRecordFresh(dir, record) };
}

/**
 * Writes `record` as `<dir>/<nonce>.json`, mode 0600, exclusively: under a temporary name (O_EXCL,
 * never following a link), then linked into place (link refuses an existing name), so a record is
 * complete whenever it exists and another process's sweep never takes it for garbage.
 */
function writeRecordExclusively(dir: string, record: StandaloneWorkerRecord): string {
  const file = join(dir, `${record.nonce}.json`);
  const tmp = join(dir, `${record.nonce}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, `${JSON.stringify(record)}\n`);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

/** The record `<dir>/<nonce>.json`, or why it cannot be trusted. */
function readRecord(dir: string, nonce: string): StandaloneWorkerRecord | string {
  const file = join(dir, `${nonce}.json`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? `no worker record ${file}` : `cannot open the worker record ${file} (${(error as NodeJS.ErrnoException).code})`;
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return `the worker record ${file} is not a regular file`;
    if (stat.uid !== uid()) return `the worker record ${file} belongs to uid ${stat.uid}, not this user`;
    if ((stat.mode & 0o077) !== 0) return `the worker record ${file} is open to others (mode ${(stat.mode & 0o777).toString(8)})`;
    if (stat.size > 4096) return `the worker record ${file} is too large`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(fd, 'utf8'));
    } catch {
      return `the worker record ${file} is not JSON`;
    }
    const result = StandaloneWorkerRecordSchema.safeParse(parsed);
    if (!result.success || result.data.nonce !== nonce) return `the worker record ${file} is malformed`;
    return result.data;
  } finally {
    fs.closeSync(fd);
  }
}

/** Why process `pid` is not the live process of this user that started at `startTime`; undefined when it is. */
function processProblem(pid: number, startTime: string): string | undefined {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the process exists but is another user's, so it is not our worker.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? `process ${pid} belongs to another user` : `process ${pid} is not running`;
  }
  const procStat = readProcStat(pid);
  // A zombie has ended (it polls nothing) though its pid still answers kill(0).
  if (procStat?.state === 'Z') return `process ${pid} has ended (a zombie its parent has not reaped)`;
  let owner: number;
  try {
    owner = fs.statSync(`/proc/${pid}`).uid;
  } catch {
    return `process ${pid} is not running`;
  }
  if (owner !== uid()) return `process ${pid} belongs to uid ${owner}, not this user`;
  const actual = procStat?.startTime;
  if (actual !== startTime) return `process ${pid} started at ${actual ?? '?'}, not at the recorded ${startTime} (another process under a reused pid)`;
  return undefined;
}

/**
 * Whether the poller `identity` is this user's standalone worker on `stateDir` on this host:
 * undefined when it is, else why not (one line). Nothing the identity claims is trusted on its
 * own: it must name a record in `<stateDir>/standalone-workers/` that only this user can have
 * written (the state folder not writable by others, the records folder and file this user's and
 * private), whose pid is the identity's and whose process is alive, this user's and started at
 * the recorded time.
 */
export function checkStandaloneWorker(identity: string, stateDir: string, host = hostname()): string | undefined {
  const parsed = parseStandaloneWorkerIdentity(identity);
  if (parsed === undefined || parsed.host !== host || parsed.stateFingerprint !== stateDirFingerprint(stateDir)) return 'not a standalone worker of this state folder on this machine';
  if (parsed.nonce === undefined) return 'its identity names no worker record of this state folder';
  // The state folder may be named through a link (the user's choice); its real folder is checked.
  let realStateDir: string;
  try {
    realStateDir = fs.realpathSync(stateDir);
  } catch {
    return `${stateDir} does not exist`;
  }
  const stateProblem = folderProblem(realStateDir, false);
  if (stateProblem !== undefined) return stateProblem;
  const dir = recordsDir(realStateDir);
  const dirProblem = folderProblem(dir, true);
  if (dirProblem !== undefined) return dirProblem;
  const record = readRecord(dir, parsed.nonce);
  if (typeof record === 'string') return record;
  if (record.pid !== parsed.pid) return `its pid ${parsed.pid} is not the recorded worker's (${record.pid})`;
  return processProblem(record.pid, record.startTime);
}

/**
 * Whether `<stateDir>/standalone-workers/` (of the real state folder) holds a record that still
 * vouches for a worker: readable as {@link readRecord} requires, its process alive, this user's
 * and started at the recorded time (the check {@link checkStandaloneWorker} makes). Without one,
 * {@link checkStandaloneWorker} refuses every identity, so `warden run` starts its own worker
 * without waiting for the server's list of pollers (issue 17). A record left by a worker that did
 * not clean up (SIGKILL, a crash) counts for nothing and is not removed here (the next `warden
 * worker` sweeps it). A pre-filter, not a check: a poller is still reused only once
 * {@link liveStandaloneWorker} accepts it.
 */
export function hasStandaloneWorkerRecords(stateDir: string): boolean {
  let dir: string;
  let names: string[];
  try {
    dir = recordsDir(fs.realpathSync(stateDir));
    names = fs.readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((name) => {
    const match = /^([0-9a-f]{32})\.json$/.exec(name);
    if (match === null) return false;
    const record = readRecord(dir, match[1]!);
    return typeof record !== 'string' && processProblem(record.pid, record.startTime) === undefined;
  });
}

/** Whether `identity` claims to be a standalone worker on `stateDir` on this host (a claim only: see {@link checkStandaloneWorker}). */
export function claimsStandaloneWorker(identity: string, stateDir: string, host = hostname()): boolean {
  const parsed = parseStandaloneWorkerIdentity(identity);
  return parsed !== undefined && parsed.host === host && parsed.stateFingerprint === stateDirFingerprint(stateDir);
}

/**
 * Among `pollers` (identities Temporal saw poll recently, see cli/temporal-client.ts), the first
 * that {@link checkStandaloneWorker} accepts, and why each other poller claiming to be a
 * standalone worker of this folder on this machine was refused (all of them, also after the one
 * picked), but for this folder's own standalone workers that ended at most
 * {@link RUN_RECORD_KEEP_MS} ago and not seen polling since ({@link endedStandaloneWorkerLastPoll}): neither picked nor refused. A
 * worker on another machine is never picked: its process cannot be checked from here.
 */
export function liveStandaloneWorker(pollers: readonly Poller[], stateDir: string, host = hostname(), now = Date.now()): { worker: string | undefined; refused: { identity: string; reason: string }[] } {
  const refused: { identity: string; reason: string }[] = [];
  let worker: string | undefined;
  // Every claimant is checked, also after the one picked: a forged one still polls the queue.
  for (const poller of pollers) {
    const identity = poller.identity;
    if (!claimsStandaloneWorker(identity, stateDir, host)) continue;
    const reason = checkStandaloneWorker(identity, stateDir, host);
    if (reason === undefined) {
      worker ??= identity;
      continue;
    }
    const ended = endedStandaloneWorkerLastPoll(identity, stateDir, host, now);
    // This folder's own worker that has stopped, still listed by the server: no forger, and gone
    // (a poll of it that may still be open is named by possiblyOpenPolls).
    if (isEndedWorker(poller.lastPolledAt, ended, now)) continue;
    refused.push({
      identity,
      reason:
        ended === undefined
          ? reason
          : `the server saw it poll at ${new Date(poller.lastPolledAt).toISOString()}, after this state folder's worker of that identity ended (${new Date(ended.lastPossiblePoll).toISOString()} at the latest): someone polls under its copied identity`,
    });
  }
  return { worker, refused };
}

/** Pollers that are standalone workers on another state folder (their tasks' keys and ledger are not this run's). */
export function otherStateWorkers(pollers: readonly string[], stateDir: string): string[] {
  const fingerprint = stateDirFingerprint(stateDir);
  return pollers.filter((identity) => {
    const parsed = parseStandaloneWorkerIdentity(identity);
    return parsed !== undefined && parsed.stateFingerprint !== fingerprint;
  });
}

/**
 * The identity `warden run`'s in-process worker polls under: `warden-run/<pid>@<host>/<nonce>`,
 * 32 random hex digits of nonce, so no other poller can have listed itself under it before this
 * run's worker polled. It vouches for nothing: {@link parseStandaloneWorkerIdentity} does not read
 * it, and such a worker is never reused.
 */
export function runWorkerIdentity(pid = process.pid, host = hostname()): string {
  return `warden-run/${pid}@${host}/${randomBytes(16).toString('hex')}`;
}

/**
 * A poller as the server lists it (DescribeTaskQueue): the identity it claims and when the server
 * last saw it poll (its `lastAccessTime`, ms since the epoch). An ended worker's record vouches
 * for an identity only up to the worker's end ({@link isEndedWorker}).
 */
export interface Poller {
  identity: string;
  lastPolledAt: number;
}

const RUN_WORKER_IDENTITY = /^warden-run\/([1-9][0-9]{0,9})@([^/]+)\/([0-9a-f]{32})$/;

/** The folder of `warden run` (and `warden mcp serve`) worker records inside the state folder. */
export const RUN_RECORDS_DIR = 'run-workers';
/**
 * How long after a worker of this state folder was last known alive (a run's, an `mcp serve`'s or
 * a standalone worker's) its record still vouches for it as an ended worker: the server lists a
 * poller for about 90 s after its last poll, and a live worker refreshes its record's time every
 * {@link RUN_RECORD_REFRESH_MS} (so a SIGKILLed worker's time is at most that old).
 */
export const RUN_RECORD_KEEP_MS = 90_000 + 30_000;
const RUN_RECORD_REFRESH_MS = 30_000;

/** A `warden run` worker's record, written by {@link recordRunWorker}. */
export interface RunWorkerRegistration {
  file: string;
  /** Marks the run as ended now (the record's time) and stops refreshing it; idempotent. */
  ended(): void;
}

/**
 * Keeps the modification time of `record`'s file in `dir` the time its worker was last known
 * alive: refreshed every {@link RUN_RECORD_REFRESH_MS} while this process runs; the returned
 * `ended` (idempotent; also run at the process's exit) stops the refresh and rewrites the record
 * whole with its end, `endedAt` ({@link markRecordEnded}).
 */
function keepRecordFresh(dir: string, record: StandaloneWorkerRecord): () => void {
  const file = join(dir, `${record.nonce}.json`);
  const touch = () => {
    try {
      const at = new Date();
      fs.utimesSync(file, at, at);
    } catch {
      // Removed by hand: the worker is then simply noted by later runs.
    }
  };
  const refresh = setInterval(touch, RUN_RECORD_REFRESH_MS);
  refresh.unref();
  let done = false;
  const ended = () => {
    if (done) return;
    done = true;
    clearInterval(refresh);
    process.off('exit', ended);
    if (!markRecordEnded(dir, { ...record, endedAt: Date.now() })) touch();
  };
  process.once('exit', ended);
  return ended;
}

/**
 * Replaces the record `<dir>/<nonce>.json` with `record` (its end written) whole: a temporary
 * file (O_EXCL, never following a link, 0600) renamed over it, so a reader sees the old record or
 * the new one. False when it cannot (the folder gone or changed): the record's time is then
 * refreshed only, as a killed worker's.
 */
function markRecordEnded(dir: string, record: StandaloneWorkerRecord): boolean {
  const tmp = join(dir, `${record.nonce}.tmp`);
  try {
    if (!fs.existsSync(join(dir, `${record.nonce}.json`))) return false;
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, `${JSON.stringify(record)}\n`);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, join(dir, `${record.nonce}.json`));
    return true;
  } catch {
    fs.rmSync(tmp, { force: true });
    return false;
  }
}

/**
 * Records `identity` (made by {@link runWorkerIdentity}, of a live process of this user) as a
 * `warden run` or `warden mcp serve` worker of `stateDir`: `<stateDir>/run-workers/<nonce>.json`
 * (0700 folder, file 0600, created exclusively and linked into place whole), holding the
 * identity's pid, that process's start time and the nonce. The file's modification time is when
 * the worker was last known alive: refreshed every 30 s while this process runs and at its exit,
 * so {@link unvouchedPollers} can skip the identity as an ended worker's for
 * {@link RUN_RECORD_KEEP_MS} after, and no longer. Records past that whose process has ended are
 * removed on the way, in this folder and in `standalone-workers/`.
 * @throws Error when the identity is not a run worker's of a live process, or the folder cannot
 * be made private or the record cannot be created.
 */
export function recordRunWorker(stateDir: string, identity: string, now = Date.now()): RunWorkerRegistration {
  const match = RUN_WORKER_IDENTITY.exec(identity);
  if (match === null) throw new Error(`cannot record the run worker: ${identity} is not a run worker identity`);
  const pid = Number(match[1]);
  const nonce = match[3]!;
  const dir = join(stateDir, RUN_RECORDS_DIR);
  const problem = makePrivateRecordsFolder(dir);
  if (problem !== undefined) throw new Error(`cannot record the run worker: ${problem}`);
  sweepEndedRecords(dir, now);
  // Ended standalone workers' records are pruned here too: a user may never start another.
  if (folderProblem(recordsDir(stateDir), true) === undefined) sweepEndedRecords(recordsDir(stateDir), now);
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new Error(`cannot record the run worker: /proc/${pid}/stat is not readable`);
  const record = { pid, startTime, nonce };
  const file = writeRecordExclusively(dir, record);
  return { file, ended: keepRecordFresh(dir, record) };
}

/**
 * Removes the records of `dir` that cannot be read, and those whose process has ended and whose
 * time is past {@link RUN_RECORD_KEEP_MS} or ahead of now (written before the clock stepped back:
 * such a record vouches for nothing, {@link isEndedWorker}).
 */
function sweepEndedRecords(dir: string, now: number): void {
  for (const name of fs.readdirSync(dir)) {
    const match = /^([0-9a-f]{32})\.json$/.exec(name);
    if (match === null) continue;
    const read = readRecord(dir, match[1]!);
    if (typeof read === 'string') {
      fs.rmSync(join(dir, name), { force: true });
      continue;
    }
    const stat = fs.lstatSync(join(dir, name), { throwIfNoEntry: false });
    if (stat !== undefined && !recordTimeVouches(stat.mtimeMs, read, now) && !processRuns(read.pid, read.startTime)) fs.rmSync(join(dir, name), { force: true });
  }
}

/**
 * Whether a record whose file time is `mtimeMs` (and end, if written, `record.endedAt`) still
 * vouches for its worker at `now`: at most {@link RUN_RECORD_KEEP_MS} old and neither time ahead
 * of now (a time in the future, written before the wall clock stepped back, vouches for nothing).
 */
function recordTimeVouches(mtimeMs: number, record: StandaloneWorkerRecord, now: number): boolean {
  return mtimeMs <= now + FILE_TIME_SLACK_MS && now - mtimeMs <= RUN_RECORD_KEEP_MS && (record.endedAt === undefined || record.endedAt <= now);
}

/**
 * How far ahead of `Date.now()` a record's file time may read and still count as now: file times
 * carry nanoseconds where `Date.now()` is whole milliseconds, so a record written in the
 * millisecond of the check reads up to 1 ms ahead (the pruning of a just-ended run's record was
 * seen to fail this way). A clock stepped back by more still vouches for nothing.
 */
const FILE_TIME_SLACK_MS = 1;

/**
 * When the worker the record `<folder>/<nonce>.json` of the state folder `stateDir` names, of
 * process `pid`, ended at most {@link RUN_RECORD_KEEP_MS} ago, the latest time it can have polled:
 * the record's `endedAt` or, for a record whose end was never written (SIGKILL, a crash), its time
 * plus one refresh ({@link RUN_RECORD_REFRESH_MS}). Undefined when the record vouches for no such
 * worker: the state folder writable by others, the records folder or the record not this user's
 * and private, the record's pid not `pid`, its process not ended (gone, or its pid reused), its
 * time past the window or ahead of `now`. A poll the server saw after that time is not the ended
 * worker's but someone's under its copied identity (in the server's poller list and in every
 * history it ran): {@link isEndedWorker}. The caller has checked that the identity names this host
 * (and, for a standalone worker, this state folder).
 */
function endedWorkerLastPoll(stateDir: string, folder: string, nonce: string, pid: number, now: number): EndedWorker | undefined {
  let realStateDir: string;
  try {
    realStateDir = fs.realpathSync(stateDir);
  } catch {
    return undefined;
  }
  const dir = join(realStateDir, folder);
  if (folderProblem(realStateDir, false) !== undefined || folderProblem(dir, true) !== undefined) return undefined;
  const record = readRecord(dir, nonce);
  if (typeof record === 'string' || record.pid !== pid) return undefined;
  const stat = fs.lstatSync(join(dir, `${record.nonce}.json`), { throwIfNoEntry: false });
  if (stat === undefined || !recordTimeVouches(stat.mtimeMs, record, now) || processRuns(record.pid, record.startTime)) return undefined;
  return record.endedAt === undefined ? { lastPossiblePoll: stat.mtimeMs + RUN_RECORD_REFRESH_MS, earliestEnd: stat.mtimeMs, killed: true } : { lastPossiblePoll: record.endedAt, earliestEnd: record.endedAt, killed: false };
}

/**
 * An ended worker as its record tells it ({@link endedWorkerLastPoll}): the latest time it can
 * have polled (its `endedAt`, or for a killed worker its record's time plus one refresh), the
 * earliest time it can have ended (its `endedAt`, or its record's time), and whether its end was
 * never written (SIGKILL, a crash).
 */
interface EndedWorker {
  lastPossiblePoll: number;
  earliestEnd: number;
  killed: boolean;
}

/**
 * How long a poll may stay open after it arrived, in ms. The server's `lastAccessTime` of a
 * poller is when its latest poll ARRIVED, not when it ended: the server holds a long poll up to
 * its `matching.longPollExpirationInterval` (1 min by default, dynamic config), and SDK Core, the
 * TypeScript SDK's worker, gives each poll a 70 s deadline (`LONG_POLL_TIMEOUT`,
 * sdk-core crates/client/src/lib.rs). A server configured with a longer interval holds polls
 * longer than this window.
 */
export const SERVER_LONG_POLL_WINDOW_MS = 70_000;

/**
 * What the server's last poll of an identity (`lastPolledAt`, its `lastAccessTime`) says beside
 * the record of this state folder's ended worker of that identity (`ended`, undefined when no
 * record vouches for one), at `now`:
 * - `after-end`: it arrived after the worker's end: someone polls under its copied identity;
 * - `may-be-open`: it arrived within {@link SERVER_LONG_POLL_WINDOW_MS} before the end and less
 *   than that window ago, so it may still be open: the worker's own last poll (closed with its
 *   connection at its end) or a stranger's under the copied identity, opened before the end.
 *   The server keeps only the latest arrival per identity, so nothing it lists tells the two
 *   apart; `warden run` names it ({@link possiblyOpenPolls});
 * - `ended`: it arrived at least one window before the end (closed by the end), or more than one
 *   window ago (closed now, whoever opened it): the ended worker, vouched for;
 * - undefined: no record vouches for the identity.
 */
function endedWorkerPoll(lastPolledAt: number, ended: EndedWorker | undefined, now: number): 'ended' | 'may-be-open' | 'after-end' | undefined {
  if (ended === undefined) return undefined;
  if (lastPolledAt > ended.lastPossiblePoll) return 'after-end';
  return lastPolledAt < ended.earliestEnd - SERVER_LONG_POLL_WINDOW_MS || lastPolledAt < now - SERVER_LONG_POLL_WINDOW_MS ? 'ended' : 'may-be-open';
}

/** Whether `lastPolledAt` is a poll of the ended worker the record names ({@link endedWorkerPoll}): not after its end (one that may still be open is named by {@link possiblyOpenPolls} instead). */
function isEndedWorker(lastPolledAt: number, ended: EndedWorker | undefined, now: number): boolean {
  const verdict = endedWorkerPoll(lastPolledAt, ended, now);
  return verdict === 'ended' || verdict === 'may-be-open';
}

/**
 * Whether `identity` is the worker of a `warden run` or `warden mcp serve` of `stateDir` on this
 * machine that has ended at most {@link RUN_RECORD_KEEP_MS} ago: the server lists a poller for
 * about 90 s after its last poll, so every run soon after another would otherwise name the earlier
 * one's worker. The identity alone proves nothing (anyone can poll under
 * `warden-run/<dead pid>@<host>/<any hex>`): it must name a record {@link recordRunWorker} wrote in
 * this state folder, and the server must have seen it poll no later than that worker's end
 * ({@link isEndedWorker}): a stranger polling under an ended worker's copied identity is named. A
 * stranger with the server's poller list can still copy a live worker's identity, this run's own
 * included: while the genuine worker polls too, the list shows one poller.
 */
function isEndedRunWorker({ identity, lastPolledAt }: Poller, stateDir: string, host: string, now: number): boolean {
  return isEndedWorker(lastPolledAt, endedRunWorkerLastPoll(identity, stateDir, host, now), now);
}

/** The ended run worker on this host whose record in `run-workers/` vouches for `identity` ({@link endedWorkerLastPoll}); undefined for any other identity. */
function endedRunWorkerLastPoll(identity: string, stateDir: string, host: string, now: number): EndedWorker | undefined {
  const match = RUN_WORKER_IDENTITY.exec(identity);
  return match !== null && match[2] === host ? endedWorkerLastPoll(stateDir, RUN_RECORDS_DIR, match[3]!, Number(match[1]), now) : undefined;
}

/**
 * When `identity` is a standalone worker of `stateDir` on this machine that has ended (Ctrl-C,
 * SIGTERM, or killed) at most {@link RUN_RECORD_KEEP_MS} ago, the latest time it can have polled:
 * its record in `standalone-workers/` is kept for that window ({@link writeStandaloneWorkerRecord}),
 * and checked as a run's is ({@link endedWorkerLastPoll}). Undefined for any other identity.
 */
function endedStandaloneWorkerLastPoll(identity: string, stateDir: string, host: string, now: number): EndedWorker | undefined {
  const parsed = parseStandaloneWorkerIdentity(identity);
  if (parsed === undefined || parsed.nonce === undefined || parsed.host !== host || parsed.stateFingerprint !== stateDirFingerprint(stateDir)) return undefined;
  return endedWorkerLastPoll(stateDir, STANDALONE_RECORDS_DIR, parsed.nonce, parsed.pid, now);
}

/**
 * Among `pollers`, those no other note of `warden run` names and that are neither vouched for nor
 * `own` (this run's worker identities): every identity except one that claims to be a standalone
 * worker of this state folder on this machine ({@link liveStandaloneWorker} vouches for it or says
 * why not) or of another state folder ({@link otherStateWorkers}), and an ended run's or
 * `mcp serve`'s worker of this folder ({@link isEndedRunWorker}). That is the SDK's default
 * `<pid>@<host>`, another run's worker, a standalone worker of this folder claiming another
 * machine, anything. Temporal cannot keep them off the queue: any of them may be handed the task's
 * workflow task, its input with it.
 */
export function unvouchedPollers(pollers: readonly Poller[], stateDir: string, own: readonly string[] = [], host = hostname(), now = Date.now()): string[] {
  const fingerprint = stateDirFingerprint(stateDir);
  return pollers
    .filter((poller) => {
      if (own.includes(poller.identity)) return false;
      if (isEndedRunWorker(poller, stateDir, host, now)) return false;
      const parsed = parseStandaloneWorkerIdentity(poller.identity);
      return parsed === undefined || (parsed.stateFingerprint === fingerprint && parsed.host !== host);
    })
    .map((poller) => poller.identity);
}

/** A poll under the identity of this state folder's ended worker that may still be open ({@link possiblyOpenPolls}). */
export interface PossiblyOpenPoll {
  identity: string;
  /** When the server saw the poll arrive (its `lastAccessTime`, ms since the epoch). */
  arrivedAt: number;
  /** The worker's end (`endedAt`), or for a killed worker the latest it can have ended (ms since the epoch). */
  endedAt: number;
  /** The worker was killed (no end written): `endedAt` is its latest possible end. */
  killed: boolean;
}

/**
 * Among `pollers`, those listed under the identity of an ended worker of this state folder on
 * this machine (a run's, an `mcp serve`'s, a standalone worker's) whose latest poll arrived
 * within {@link SERVER_LONG_POLL_WINDOW_MS} before that worker's end and less than that window
 * before `now`: it may still be open, and it is the worker's own last poll or a stranger's under
 * the copied identity, which the server's list cannot tell apart (see {@link endedWorkerPoll}).
 * Neither {@link unvouchedPollers} nor {@link liveStandaloneWorker} names these: `warden run`
 * names each once ({@link possiblyOpenPollNote}).
 */
export function possiblyOpenPolls(pollers: readonly Poller[], stateDir: string, host = hostname(), now = Date.now()): PossiblyOpenPoll[] {
  const found: PossiblyOpenPoll[] = [];
  for (const { identity, lastPolledAt } of pollers) {
    const ended = RUN_WORKER_IDENTITY.test(identity) ? endedRunWorkerLastPoll(identity, stateDir, host, now) : endedStandaloneWorkerLastPoll(identity, stateDir, host, now);
    if (ended !== undefined && endedWorkerPoll(lastPolledAt, ended, now) === 'may-be-open') found.push({ identity, arrivedAt: lastPolledAt, endedAt: ended.lastPossiblePoll, killed: ended.killed });
  }
  return found;
}

/** `warden run`'s one line (without `note: `) for a poll that may still be open ({@link possiblyOpenPolls}); the caller escapes it (`terminalLine`). */
export function possiblyOpenPollNote({ identity, arrivedAt, endedAt, killed }: PossiblyOpenPoll): string {
  const seconds = Math.max(0, Math.round((endedAt - arrivedAt) / 1_000));
  const end = killed ? `was killed (by ${new Date(endedAt).toISOString()} at the latest)` : `ended at ${new Date(endedAt).toISOString()}`;
  return `poller ${identity}: this state folder's worker of that identity ${end}, but this poll arrived ${seconds} s before ${killed ? 'that' : 'its end'} and may still be open; Warden cannot tell it from a stranger's poll under that identity, which may be handed this task's work`;
}

/** The pollers of `lists` (the same queue's workflow and activity pollers, ...), each identity once, with the latest time the server saw it poll. */
export function latestPolls(...lists: readonly (readonly Poller[])[]): Poller[] {
  const latest = new Map<string, number>();
  for (const { identity, lastPolledAt } of lists.flat()) latest.set(identity, Math.max(lastPolledAt, latest.get(identity) ?? lastPolledAt));
  return [...latest].map(([identity, lastPolledAt]) => ({ identity, lastPolledAt }));
}
