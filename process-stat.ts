/**
 * What the kernel says about a process, for the code that must tell a live process from a dead
 * one or a reused pid (lock holders, the embedded Temporal server, standalone worker records, the
 * bench's CPU figures). One parser of /proc/<pid>/stat (proc(5)), because its second field, the
 * command name, is in parentheses and may itself hold spaces and ")": the other fields are found
 * after the LAST ")", never by splitting the whole line.
 */
import { readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat Warden reads (proc(5) field numbers). */
export interface ProcStat {
  /** Field 2, without its parentheses: up to 15 bytes of the executable's name, any characters. */
  comm: string;
  /** Field 3: R, S, D, Z (zombie), T, t, X, I, ... */
  state: string;
  /** Field 4: the parent's pid. */
  ppid: number;
  /** Fields 14 and 15: CPU time in user and kernel mode, in clock ticks (USER_HZ). */
  utime: number;
  stime: number;
  /** Field 22: clock ticks after boot when the process started, as the decimal string the kernel wrote. */
  startTime: string;
}

/** The fields of one /proc/<pid>/stat line; undefined when it is not one (no parenthesised name, too few fields). */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open === -1 || close < open) return undefined;
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const fields = text.slice(close + 2).split(' ');
  const startTime = fields[19];
  if (fields.length < 20 || startTime === undefined || !/^\d+$/.test(startTime)) return undefined;
  return { comm: text.slice(open + 1, close), state: fields[0]!, ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]), startTime };
}

/** /proc/<pid>/stat of `pid` parsed, or undefined when the process is gone or /proc is not there. */
export function readProcStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

let ownStartTime: string | null | undefined;

/**
 * This process's start time ({@link ProcStat.startTime}), read once: what a record or lock this
 * process holds stores beside its pid, so {@link processRuns} can tell it from a later process
 * under the same pid. Undefined without /proc: a lock then records the pid alone, since a start
 * time no check can read would make every reader take the lock for its holder's end.
 */
export function ownProcessStartTime(): string | undefined {
  if (ownStartTime === undefined) ownStartTime = readProcStat(process.pid)?.startTime ?? null;
  return ownStartTime ?? undefined;
}

/**
 * Whether process `pid` still runs: it exists and is not a zombie (a process that ended and whose
 * parent has not reaped it yet runs no code and holds nothing but its pid), and, when `startTime`
 * is given (field 22 of /proc/<pid>/stat, {@link ProcStat.startTime}), it started then, so a pid
 * the kernel reused for another process does not count. Another user's process is read the same
 * way (/proc/<pid>/stat is world-readable); where /proc hides it (`hidepid`), only its existence
 * (`kill(pid, 0)`, EPERM) is known, which is enough without `startTime` and never with it.
 * A thread's id is not a process: kill(tid, 0) answers and /proc/<tid>/ reads as its process's
 * (the command line too), but a holder's recorded pid later given to a thread of another process
 * names neither (and kill(tid, sig) would signal that whole other process).
 * A `startTime` that is no start time (not decimal digits: 'unknown', which a holder without
 * /proc records, {@link ownProcessStartTime}) is none recorded: the pid alone answers, as for a
 * record written before start times were kept, rather than every such live holder counting as gone.
 * Not an integer above 0: false. Every check of "is the process that holds X still there" in
 * Warden (call leases, worker records, file locks, the embedded server) asks this one.
 */
export function processRuns(pid: number, startTime?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const recorded = startTime !== undefined && /^\d+$/.test(startTime) ? startTime : undefined;
  if (!signalable(pid)) return false;
  if (process.platform !== 'linux') return recorded === undefined;
  const stat = readProcStat(pid);
  // No /proc entry: gone since the signal check, or another user's hidden by `hidepid` (asked again).
  if (stat === undefined) return recorded === undefined && signalable(pid);
  if (stat.state === 'Z' || stat.state === 'X' || (recorded !== undefined && stat.startTime !== recorded)) return false;
  return threadGroupOf(pid) === pid;
}

/** The process (thread group) thread `tid` belongs to: /proc/<tid>/status `Tgid`; undefined when it cannot be read (gone meanwhile). */
function threadGroupOf(tid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${tid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^Tgid:\s*(\d+)$/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** True while a process (or thread) `pid` exists, another user's included: `kill(pid, 0)` succeeds or says EPERM. */
function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
