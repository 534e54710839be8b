/**
 * One attempt at a time acts on a tool call's records. Temporal schedules a call's next attempt
 * when the previous one overran its start-to-close timeout or missed heartbeats, but the earlier
 * attempt may still be running in a live worker (it learns of the timeout only at its next
 * heartbeat, then has to stop its sandbox call and undo). The call's per-call state (its overlay
 * undo records, an outside-isolate call's measured upper folder, the overlay copy's baseline, the
 * SQL journal it ships) must then never be touched by both: an undo of the newer attempt would
 * interleave with the older one's writes, and the older one's end (discarding or applying its
 * undo records) would destroy the newer one's.
 *
 * The lease, per call (task key + call id) and per machine (under the state folder, like the
 * overlay it guards):
 * - Every attempt takes a generation: the next free `gen-<n>.json`, created exclusively (a hard
 *   link of a flushed file), holding its pid, the pid's start time and its activity attempt. The
 *   highest generation is the call's current attempt: the latest to arrive, which is the one
 *   Temporal runs (an earlier one's result is moot).
 * - Taking a generation makes every older attempt stop: one in this process at once (its signal
 *   aborts with ERR_CALL_SUPERSEDED), one in another worker process within WATCH_MS (it watches
 *   the folder). The new attempt then waits until every older attempt has ended
 *   (`gen-<n>.ended`), or its process is gone (pid and start time no longer match), before it
 *   touches the call's records; after `waitMs` it fails ERR_CALL_ATTEMPT_STUCK (retryable).
 * - A superseded attempt is fenced: `assertCurrent()` throws ERR_CALL_SUPERSEDED, and it is called
 *   before each durable step an attempt takes on the call's records, so the older attempt leaves
 *   everything it wrote for the newer one to undo.
 * - The call's compensation (`kind: 'compensation'`) stops and waits out the call's attempts too,
 *   but fences none: an attempt it stopped still undoes its own writes (as a cancelled call does),
 *   before the compensation goes on.
 *
 * Files stay after the call (a few bytes per attempt): generations must never be reused while
 * any attempt of the call could still arrive.
 */
import { randomUUID } from 'node:crypto';
import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RecoveryError } from '../errors';
import { isProcessAlive, readProcStat } from '../process-stat';
import { fsyncFolder } from './atomic-file';
import { callLeaseDirOf } from './recovery-paths';

/** How long a newer attempt waits for an older one to stop (ms): past a sandbox call's stop and undo under load. */
export const SUPERSEDE_WAIT_MS = 30_000;
/** How often a waiting attempt looks whether the older ones ended (ms). */
const POLL_MS = 100;
/** How often a running attempt looks for a newer one taken in another worker process (ms). */
const WATCH_MS = 500;

const GenerationSchema = z.strictObject({
  callId: z.string(),
  attempt: z.number().int(),
  /** `compensation`: the call's compensation, which stops its attempts and waits them out but takes over none of their records. */
  kind: z.enum(['attempt', 'compensation']),
  pid: z.number().int(),
  startTime: z.string(),
  token: z.string(),
  at: z.string(),
});
type Generation = z.infer<typeof GenerationSchema>;

/** The attempts of this process that hold a generation, by `<lease folder>\0<generation>`: how their end is known without a file. */
const running = new Map<string, { controller: AbortController; generation: Generation; supersede: () => void }>();

/** One attempt's hold on its call. */
export interface CallLease {
  /** This attempt's generation (1 for the call's first attempt on this machine). */
  readonly generation: number;
  /** Aborts (reason: RecoveryError ERR_CALL_SUPERSEDED) when a newer attempt of the call takes over. */
  readonly signal: AbortSignal;
  /**
   * Call before each durable step on the call's records (undo, discard, journal shipping, overlay
   * copy sync, start undo).
   * @throws RecoveryError ERR_CALL_SUPERSEDED once a newer attempt took the call over
   */
  assertCurrent(): void;
  /** Marks this attempt ended (a waiting newer attempt goes on); idempotent, never throws. */
  release(): Promise<void>;
}

let ownStartTime: string | undefined;
function startTimeOf(): string {
  ownStartTime ??= readProcStat(process.pid)?.startTime ?? 'unknown';
  return ownStartTime;
}

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
  const dir = callLeaseDirOf(options.stateDir, options.taskKey, options.callId);
  const self: Generation = { callId: options.callId, attempt: options.attempt, kind: options.kind ?? 'attempt', pid: process.pid, startTime: startTimeOf(), token: randomUUID(), at: new Date().toISOString() };
  const generation = await takeGeneration(dir, self);
  const controller = new AbortController();
  const key = `${dir}\0${generation}`;
  running.set(key, { controller, generation: self, supersede: () => supersede() });
  let released = false;
  let watch: NodeJS.Timeout | undefined;
  const release = async () => {
    if (released) return;
    released = true;
    if (watch !== undefined) clearInterval(watch);
    running.delete(key);
    // For attempts in other processes; this process's own know from `running`.
    await fsp.writeFile(join(dir, `gen-${generation}.ended`), '', { mode: 0o600 }).catch(() => undefined);
  };
  // Set once a newer attempt (not a compensation) took the call over: from then on this one is fenced.
  let fencedBy: RecoveryError | undefined;
  const supersede = () => {
    if (fencedBy !== undefined) return;
    const newer = newestAbove(dir, generation);
    if (newer === undefined) return;
    const error = supersededError(self, generation, newer);
    if (newer.kind === 'attempt' || newerAttemptAbove(dir, generation)) fencedBy = error;
    if (!controller.signal.aborted) controller.abort(error);
  };
  // Older attempts of this process stop now; those of other processes see the new generation (their watch).
  for (const [other, held] of running) {
    const [otherDir, otherGeneration] = other.split('\0');
    if (otherDir === dir && Number(otherGeneration) < generation) held.supersede();
  }
  const lease: CallLease = {
    generation,
    signal: controller.signal,
    assertCurrent() {
      supersede();
      if (fencedBy !== undefined) throw fencedBy;
    },
    release,
  };
  try {
    await waitForOlder(dir, generation, self, lease, options.signal, options.waitMs ?? SUPERSEDE_WAIT_MS);
  } catch (error) {
    await release();
    throw error;
  }
  watch = setInterval(supersede, WATCH_MS);
  watch.unref();
  return lease;
}

/** Creates the next free `gen-<n>.json` exclusively; returns n. */
async function takeGeneration(dir: string, self: Generation): Promise<number> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${self.token}.tmp`);
  const handle = await fsp.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(self)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    for (;;) {
      const next = Math.max(0, ...generationsIn(dir)) + 1;
      try {
        // Exclusive: two attempts arriving at once never share a generation.
        await fsp.link(temp, join(dir, `gen-${next}.json`));
        await fsyncFolder(dir);
        return next;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  } finally {
    await fsp.rm(temp, { force: true });
  }
}

function generationsIn(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names.map((n) => /^gen-(\d+)\.json$/.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number);
}

function readGeneration(dir: string, generation: number): Generation | undefined {
  try {
    return GenerationSchema.parse(JSON.parse(readFileSync(join(dir, `gen-${generation}.json`), 'utf8')));
  } catch {
    // Torn or foreign: it names no process that could still be running the call.
    return undefined;
  }
}

/** The newest generation above `generation`, with its record; undefined when this one is the newest. */
function newestAbove(dir: string, generation: number): (Generation & { generation: number }) | undefined {
  const newest = Math.max(0, ...generationsIn(dir));
  if (newest <= generation) return undefined;
  const record = readGeneration(dir, newest);
  // Unreadable: taken for an attempt (fenced), the safe side.
  return { generation: newest, ...(record ?? { callId: '', attempt: 0, kind: 'attempt' as const, pid: 0, startTime: '', token: '', at: '' }) };
}

/** Whether an attempt (not a compensation) holds a generation above `generation`. */
function newerAttemptAbove(dir: string, generation: number): boolean {
  return generationsIn(dir).some((g) => g > generation && (readGeneration(dir, g)?.kind ?? 'attempt') === 'attempt');
}

/** Whether the attempt of `generation` may still be running: not ended, its process (same start time) alive. */
function stillRunning(dir: string, generation: number): Generation | undefined {
  if (existsSync(join(dir, `gen-${generation}.ended`))) return undefined;
  const record = readGeneration(dir, generation);
  if (record === undefined) return undefined;
  if (record.pid === process.pid && record.startTime === startTimeOf()) return running.has(`${dir}\0${generation}`) ? record : undefined;
  // A reused pid is another process: the attempt's worker died.
  return isProcessAlive(record.pid) && readProcStat(record.pid)?.startTime === record.startTime ? record : undefined;
}

async function waitForOlder(dir: string, generation: number, self: Generation, lease: CallLease, signal: AbortSignal | undefined, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let older: (Generation & { generation: number }) | undefined;
    for (let g = generation - 1; g >= 1 && older === undefined; g--) {
      const record = stillRunning(dir, g);
      if (record !== undefined) older = { generation: g, ...record };
    }
    if (older === undefined) return;
    lease.assertCurrent();
    signal?.throwIfAborted();
    if (Date.now() >= deadline) {
      throw new RecoveryError(
        'ERR_CALL_ATTEMPT_STUCK',
        `attempt ${self.attempt} of call ${self.callId} cannot take the call over: its earlier attempt ${older.attempt} (pid ${older.pid}, started ${older.at}) was told to stop and has not ended after ${waitMs} ms; the call's records are left to it`,
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
