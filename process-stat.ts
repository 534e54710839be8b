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

/** True while a process `pid` exists, zombies and other users' processes included (`kill(pid, 0)`). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while `pid` exists and is not a zombie (a killed child its parent has not reaped yet). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // Another user's process exists; whether it is a zombie is not looked at.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}
