/**
 * One attempt at a time acts on a tool call's records. Temporal schedules a call's next attempt
 * when the previous one overran its start-to-close timeout or missed heartbeats, but the earlier
 * attempt may still be running in a live worker (it learns of the timeout only at its next
 * heartbeat, then has to stop its sandbox call and undo). The call's per-call state (its overlay
 * undo records, an outside-isolate call's measured upper folder, the overlay copy's baseline, the
 * SQL journal it ships, its start record) must then never be touched by both: an undo of the
 * newer attempt would interleave with the older one's writes, and the older one's end (discarding
 * or applying its undo records) would destroy the newer one's.
 *
 * The lease, per call (task key + call id) and per machine (under the state folder, like the
 * overlay it guards), in `<stateDir>/call-leases/<taskKey>/` (one flat folder per task):
 * - Every attempt takes a generation: the next free `<stem>.<n>` (stem: a digest of the call id),
 *   created with O_CREAT|O_EXCL, holding its pid, the pid's start time and its activity attempt.
 *   The highest generation is the call's current attempt: the latest to arrive, which is the one
 *   Temporal runs (an earlier one's result is moot). The common case, a call's first attempt on
 *   this machine, is one exclusive create of `<stem>.1` (the folder is listed only when it exists).
 * - Taking a generation makes every older attempt stop: one in this process at once (its signal
 *   aborts with ERR_CALL_SUPERSEDED), one in another worker process within WATCH_MS (it looks
 *   whether `<stem>.<n+1>` exists). The new attempt then waits until every older attempt has ended
 *   (its record made read-only: one chmod, cheaper than a marker file), or its process is gone
 *   (pid and start time no longer match), before it
 *   touches the call's records; after `waitMs` it fails ERR_CALL_ATTEMPT_STUCK (retryable).
 * - A superseded attempt is fenced: `assertCurrent()` rejects with ERR_CALL_SUPERSEDED, and it is
 *   awaited before each durable step an attempt takes on the call's records, so the older attempt
 *   leaves everything it wrote for the newer one to undo. It looks at the disk each time (a newer
 *   attempt may be in another process): whether `<stem>.<n+1>` exists and its own record still does.
 * - The call's compensation (`kind: 'compensation'`) stops and waits out the call's attempts too,
 *   but fences none: an attempt it stopped still undoes its own writes (as a cancelled call does),
 *   before the compensation goes on.
 * - The folder goes with the task's overlay when the task ends (removeCallLeases, from
 *   recovery/workspace-overlay.ts). An attempt still running then finds its record gone and is
 *   fenced (the safe side): the task it would write for is over.
 *
 * No fsync (of a file or of the folder) and no temporary file: the lease only ever guards attempts
 * that are alive. After the machine crashes none of its attempts runs, so a record lost or torn by
 * the crash has nothing left to guard; a record a live process is writing is read as torn for a
 * moment at most (the create and the one small write are not one step), which is taken for a
 * running attempt for TORN_GRACE_MS by an attempt waiting on it, and for a newer attempt (fenced)
 * by an older one: both the safe side.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RecoveryError } from '../errors';
import { ownProcessStartTime, processRuns } from '../process-stat';
import { callLeaseDirOf, callLeaseStemOf } from './recovery-paths';

/** A record's start time where /proc gives none: processRuns then checks the pid alone, so such a live attempt is waited for rather than taken for ended. */
const UNKNOWN_START = 'unknown';

/** How long a newer attempt waits for an older one to stop (ms): past a sandbox call's stop and undo under load. */
export const SUPERSEDE_WAIT_MS = 30_000;
/** How often a waiting attempt looks whether the older ones ended (ms). */
const POLL_MS = 100;
/** How often a running attempt looks for a newer one taken in another worker process (ms). */
const WATCH_MS = 500;
/** How long an unreadable record counts as an attempt still writing it (ms); after, as one that died writing it. */
const TORN_GRACE_MS = 1000;

const GenerationSchema = z.strictObject({
  callId: z.string(),
  attempt: z.number().int(),
  /** `compensation`: the call's compensation, which stops its attempts and waits them out but takes over none of their records. */
  kind: z.enum(['attempt', 'compensation']),
  pid: z.number().int(),
  startTime: z.string(),
  at: z.string(),
});
type Generation = z.infer<typeof GenerationSchema>;
/** What an unreadable record (being written, or foreign) stands for: an attempt, the safe side, naming no process. */
const UNREADABLE: Generation = { callId: '', attempt: 0, kind: 'attempt', pid: 0, startTime: '', at: '' };

/** An attempt of this process holding a generation: how a newer one in this process stops it without the disk. */
interface Held {
  supersede(newer: Generation & { generation: number }): void;
}

/** The attempts of this process that hold a generation, by `<lease folder>/<stem>`, then by generation. */
const running = new Map<string, Map<number, Held>>();

/** One attempt's hold on its call. */
export interface CallLease {
  /** This attempt's generation (1 for the call's first attempt on this machine). */
  readonly generation: number;
  /** Aborts (reason: RecoveryError ERR_CALL_SUPERSEDED) when a newer attempt of the call takes over. */
  readonly signal: AbortSignal;
  /**
   * Await before each durable step on the call's records (undo, discard, overlay copy sync, start
   * undo). Steps that hand over rather than destroy (recording what an outside-isolate call changed,
   * shipping the SQL journal) a superseded attempt still takes: the newer one needs them. Looks at the disk (two stats; a folder listing only once a newer
   * generation exists).
   * @throws RecoveryError ERR_CALL_SUPERSEDED once a newer attempt took the call over, or the
   *   lease record is gone (the task ended and its per-machine state was removed)
   */
  assertCurrent(): Promise<void>;
  /** Marks this attempt ended (a waiting newer attempt goes on); idempotent, never throws. */
  release(): Promise<void>;
}

/** A call's lease files: `<dir>/<stem>.<n>`, generation n's record (mode RUNNING_MODE while its attempt runs, ENDED_MODE after). */
interface CallFiles {
  dir: string;
  stem: string;
}
const recordOf = (call: CallFiles, generation: number) => join(call.dir, `${call.stem}.${generation}`);
const RUNNING_MODE = 0o600;
const ENDED_MODE = 0o400;

/**
 * Takes the call over for this attempt: the older attempts still running are made to stop, and
 * this returns once they all ended.
 * @param options.attempt the activity's attempt number (for messages and records)
 * @param options.signal the attempt's own stop (cancel, deadline): aborts the wait
 * @param options.waitMs how long to wait for older attempts (default SUPERSEDE_WAIT_MS)
 * @throws RecoveryError ERR_CALL_ATTEMPT_STUCK (retryable) naming the call and the older attempt
 *   when it has not ended after `waitMs`; ERR_CALL_SUPERSEDED when a still newer attempt arrived
 *   meanwhile; the signal's reason when it aborts.
 */
export async function acquireCallLease(options: { stateDir: string; taskKey: string; callId: string; attempt: number; kind?: 'attempt' | 'compensation'; signal?: AbortSignal; waitMs?: number }): Promise<CallLease> {
  const call: CallFiles = { dir: callLeaseDirOf(options.stateDir, options.taskKey), stem: callLeaseStemOf(options.callId) };
  const self: Generation = { callId: options.callId, attempt: options.attempt, kind: options.kind ?? 'attempt', pid: process.pid, startTime: ownProcessStartTime() ?? UNKNOWN_START, at: new Date().toISOString() };
  const generation = await takeGeneration(call, self);
  const controller = new AbortController();
  const callKey = join(call.dir, call.stem);
  // Set once a newer attempt (not a compensation) took the call over, or the record is gone: from then on this one is fenced.
  let fencedBy: RecoveryError | undefined;
  const stopBy = (error: RecoveryError, fence: boolean) => {
    if (fence) fencedBy ??= error;
    if (!controller.signal.aborted) controller.abort(error);
  };
  const held: Held = { supersede: (newer) => stopBy(supersededError(self, generation, newer), newer.kind === 'attempt') };
  const siblings = running.get(callKey) ?? new Map<number, Held>();
  running.set(callKey, siblings);
  // Older attempts of this process stop now; those of other processes see the new generation (their watch).
  for (const [other, older] of siblings) if (other < generation) older.supersede({ ...self, generation });
  siblings.set(generation, held);

  let checking: Promise<void> | undefined;
  /** Looks at the disk for a newer generation or a lost record (one look at a time). */
  const checkDisk = () =>
    (checking ??= (async () => {
      try {
        if (fencedBy !== undefined) return;
        const [own, next] = await Promise.all([exists(recordOf(call, generation)), exists(recordOf(call, generation + 1))]);
        if (!own) return stopBy(goneError(self, generation), true);
        if (!next) return;
        // Rare: a newer generation exists; which kind decides whether this one is fenced or only stopped.
        const newer = await newerThan(call, generation);
        if (newer.length === 0) return;
        const newest = newer[newer.length - 1]!;
        stopBy(supersededError(self, generation, newest), newer.some((g) => g.kind === 'attempt'));
      } finally {
        checking = undefined;
      }
    })());

  let released = false;
  let watch: NodeJS.Timeout | undefined;
  const release = async () => {
    if (released) return;
    released = true;
    if (watch !== undefined) clearInterval(watch);
    siblings.delete(generation);
    if (siblings.size === 0 && running.get(callKey) === siblings) running.delete(callKey);
    // For attempts in other processes; this process's own know from `running`. A record removed
    // with the task is not made again.
    await fsp.chmod(recordOf(call, generation), ENDED_MODE).catch(() => undefined);
  };
  const lease: CallLease = {
    generation,
    signal: controller.signal,
    async assertCurrent() {
      if (fencedBy === undefined) await checkDisk();
      if (fencedBy !== undefined) throw fencedBy;
    },
    release,
  };
  try {
    if (generation > 1) await waitForOlder(call, generation, self, lease, options.signal, options.waitMs ?? SUPERSEDE_WAIT_MS);
  } catch (error) {
    await release();
    throw error;
  }
  watch = setInterval(() => void checkDisk().catch(() => undefined), WATCH_MS);
  watch.unref();
  return lease;
}

/**
 * Creates the next free generation's record exclusively; returns its number. First tries
 * generation 1 without listing the folder (a call's first attempt); lists it only on EEXIST.
 */
async function takeGeneration(call: CallFiles, self: Generation): Promise<number> {
  const body = `${JSON.stringify(self)}\n`;
  let next = 1;
  let madeFolder = false;
  for (;;) {
    try {
      // Exclusive (O_CREAT|O_EXCL, which never follows a link): two attempts arriving at once never share a generation.
      await fsp.writeFile(recordOf(call, next), body, { flag: 'wx', mode: RUNNING_MODE });
      return next;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !madeFolder) {
        // The task's first leased call on this machine.
        await fsp.mkdir(call.dir, { recursive: true, mode: 0o700 });
        madeFolder = true;
        continue;
      }
      if (code !== 'EEXIST') throw error;
      next = Math.max(next, ...(await generationsOf(call))) + 1;
    }
  }
}

async function generationsOf(call: CallFiles): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(call.dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const prefix = `${call.stem}.`;
  return names.filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length))).map((n) => Number(n.slice(prefix.length)));
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

/** Generation `generation`'s record; 'torn' when unreadable (being written, or foreign), 'gone' when missing. */
async function readGeneration(call: CallFiles, generation: number): Promise<Generation | 'torn' | 'gone'> {
  let text: string;
  try {
    text = await fsp.readFile(recordOf(call, generation), 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'torn';
  }
  try {
    return GenerationSchema.parse(JSON.parse(text));
  } catch {
    return 'torn';
  }
}

/** The generations above `generation`, oldest first; an unreadable one is taken for an attempt (fenced), the safe side. */
async function newerThan(call: CallFiles, generation: number): Promise<(Generation & { generation: number })[]> {
  const above = (await generationsOf(call)).filter((g) => g > generation).sort((a, b) => a - b);
  const out: (Generation & { generation: number })[] = [];
  for (const g of above) {
    const record = await readGeneration(call, g);
    out.push({ generation: g, ...(typeof record === 'string' ? UNREADABLE : record) });
  }
  return out;
}

/** Whether the attempt of `generation` may still be running: not ended, its process (same start time) alive. */
async function stillRunning(call: CallFiles, generation: number): Promise<Generation | undefined> {
  const stat = await fsp.stat(recordOf(call, generation)).catch(() => undefined);
  // Gone (the task's state was removed), or ended.
  if (stat === undefined || (stat.mode & 0o777) === ENDED_MODE) return undefined;
  const record = await readGeneration(call, generation);
  if (record === 'gone') return undefined;
  if (record === 'torn') {
    // Created a moment ago and not yet written: its attempt is alive. Unreadable for longer: it died writing it.
    return Date.now() - stat.mtimeMs < TORN_GRACE_MS ? UNREADABLE : undefined;
  }
  if (record.pid === process.pid && record.startTime === (ownProcessStartTime() ?? UNKNOWN_START)) return running.get(join(call.dir, call.stem))?.has(generation) === true ? record : undefined;
  // A reused pid is another process: the attempt's worker died.
  return processRuns(record.pid, record.startTime) ? record : undefined;
}

async function waitForOlder(call: CallFiles, generation: number, self: Generation, lease: CallLease, signal: AbortSignal | undefined, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let older: (Generation & { generation: number }) | undefined;
    for (let g = generation - 1; g >= 1 && older === undefined; g--) {
      const record = await stillRunning(call, g);
      if (record !== undefined) older = { generation: g, ...record };
    }
    if (older === undefined) return;
    await lease.assertCurrent();
    signal?.throwIfAborted();
    if (Date.now() >= deadline) {
      throw new RecoveryError(
        'ERR_CALL_ATTEMPT_STUCK',
        `attempt ${self.attempt} of call ${self.callId} cannot take the call over: its earlier attempt ${older.attempt} (pid ${older.pid}, started ${older.at || 'unknown'}) was told to stop and has not ended after ${waitMs} ms; the call's records are left to it`,
        { details: { callId: self.callId, attempt: self.attempt, olderAttempt: older.attempt, olderPid: older.pid, waitedMs: waitMs }, retryable: true },
      );
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

function supersededError(self: Generation, generation: number, newer: Generation & { generation: number }): RecoveryError {
  return new RecoveryError(
    'ERR_CALL_SUPERSEDED',
    newer.kind === 'compensation'
      ? `attempt ${self.attempt} of call ${self.callId} is stopped: the call's compensation started (pid ${newer.pid})`
      : `attempt ${self.attempt} of call ${self.callId} was superseded by a newer attempt (${newer.attempt === 0 ? 'unreadable record' : `attempt ${newer.attempt}, pid ${newer.pid}`}): it stops and leaves the call's records to it`,
    { details: { callId: self.callId, attempt: self.attempt, generation, newerAttempt: newer.attempt, newerGeneration: newer.generation }, retryable: true },
  );
}

function goneError(self: Generation, generation: number): RecoveryError {
  return new RecoveryError(
    'ERR_CALL_SUPERSEDED',
    `attempt ${self.attempt} of call ${self.callId} is fenced: its lease record is gone (the task ended and its state on this machine was removed); it leaves the call's records alone`,
    { details: { callId: self.callId, attempt: self.attempt, generation, leaseGone: true }, retryable: true },
  );
}

/** Removes a task's call leases (all its calls' generations); with the task's overlay, when the task ends. Idempotent. */
export async function removeCallLeases(stateDir: string, taskKey: string): Promise<void> {
  await fsp.rm(callLeaseDirOf(stateDir, taskKey), { recursive: true, force: true });
}
