/**
 * process-stat.ts: one parser of /proc/<pid>/stat (proc(5)). The command name (field 2) is in
 * parentheses and may hold spaces, "(" and ")": every other field is read after the LAST ")".
 * Checked on synthetic lines and on a real process whose executable is named that way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownProcessStartTime, parseProcStat, processRuns, readProcStat } from '../process-stat';
import { processStartTime } from '../worker/standalone-worker';
import { makeZombie, startThreadedProcess, type Zombie } from './support/zombie-process';

/** A stat line as the kernel writes it: pid (comm) state ppid ... with utime 14, stime 15, starttime 22. */
function statLine(comm: string, { state = 'S', ppid = 41, utime = 1234, stime = 56, start = '987654' } = {}): string {
  const after = [state, String(ppid), '7', '7', '0', '-1', '4194560', '100', '0', '0', '0', String(utime), String(stime), '0', '0', '20', '0', '1', '0', start, '123456789', '2000'];
  return `4242 (${comm}) ${after.join(' ')} ${Array.from({ length: 30 }, () => '0').join(' ')}\n`;
}

describe('parseProcStat', () => {
  it.each([
    ['a plain name', 'node'],
    ['a name with spaces', 'my worker 1'],
    ['a name with ")"', 'a) b'],
    ['a name that looks like the fields after it', 'x) R 1 2 3 4'],
    ['a name of parentheses only', ')()('],
    ['an empty name', ''],
  ])('reads the fields after %s', (_label, comm) => {
    expect(parseProcStat(statLine(comm, { state: 'Z', ppid: 17, utime: 300, stime: 25, start: '5550001' }))).toEqual({ comm, state: 'Z', ppid: 17, utime: 300, stime: 25, startTime: '5550001' });
  });

  it.each([
    ['an empty text', ''],
    ['no parenthesised name', '4242 node S 1 2 3'],
    ['too few fields', '4242 (node) S 1 2 3'],
    ['a start time that is no number', statLine('node', { start: 'x1' })],
  ])('refuses %s', (_label, text) => {
    expect(parseProcStat(text)).toBeUndefined();
  });
});

describe('on real processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-proc-stat-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads this process: its start time is the standalone worker record\'s', () => {
    const stat = readProcStat(process.pid);
    expect(stat?.ppid).toBe(process.ppid);
    expect(stat?.state).not.toBe('Z');
    expect(processStartTime(process.pid)).toBe(stat?.startTime);
    expect(processRuns(process.pid)).toBe(true);
    expect(ownProcessStartTime()).toBe(stat?.startTime);
  });

  it('reads a process whose executable name holds spaces and ")"', async () => {
    // The kernel's comm is the executable's file name, cut to 15 bytes.
    const exe = join(dir, 's) (p a) ce');
    copyFileSync('/bin/sleep', exe);
    chmodSync(exe, 0o755);
    const child = spawn(exe, ['300'], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    try {
      const stat = readProcStat(child.pid!);
      expect(stat).toMatchObject({ comm: 's) (p a) ce', ppid: process.pid });
      expect(stat?.startTime).toMatch(/^\d+$/);
      expect(processStartTime(child.pid!)).toBe(stat?.startTime);
      expect(processRuns(child.pid!)).toBe(true);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    expect(readProcStat(child.pid!)).toBeUndefined();
    expect(processRuns(child.pid!)).toBe(false);
  });

  it('says no for pids that cannot be a process', () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(processRuns(pid)).toBe(false);
    expect(readProcStat('self/../nope')).toBeUndefined();
  });
});

/**
 * processRuns is the one answer to "does the process that holds X still run" (call leases, worker
 * records, the keystore's and the embedded server's locks): a zombie has ended, and a pid the
 * kernel gave to a later process is not the recorded one.
 */
describe('processRuns', () => {
  let live: ChildProcess;
  let stopped: ChildProcess;
  let zombie: Zombie;
  let reaped: number;
  let threaded: ChildProcess;
  let thread: number;
  const startOf = (pid: number) => readProcStat(pid)!.startTime;
  const later = (startTime: string) => String(BigInt(startTime) + 1n);

  beforeAll(async () => {
    live = spawn('sleep', ['600'], { stdio: 'ignore' });
    stopped = spawn('sleep', ['600'], { stdio: 'ignore' });
    await Promise.all([live, stopped].map((child) => new Promise((resolve) => child.once('spawn', resolve))));
    stopped.kill('SIGSTOP');
    zombie = await makeZombie();
    const gone = spawn('true', [], { stdio: 'ignore' });
    await new Promise((resolve) => gone.once('exit', resolve));
    reaped = gone.pid!;
    // A process with threads besides its main one (node's own: libuv, V8).
    ({ process: threaded, thread } = await startThreadedProcess());
  });
  afterAll(() => {
    live.kill('SIGKILL');
    stopped.kill('SIGKILL');
    zombie.close();
    threaded.kill('SIGKILL');
  });

  type Row = [label: string, args: () => [pid: number, startTime?: string], runs: boolean];
  it.each<Row>([
    ['a live process', () => [live.pid!], true],
    ['a live process, its recorded start time', () => [live.pid!, startOf(live.pid!)], true],
    ['a live pid under another start time (the pid reused)', () => [live.pid!, later(startOf(live.pid!))], false],
    ['a stopped process (SIGSTOP)', () => [stopped.pid!, startOf(stopped.pid!)], true],
    ['a zombie (ended, not reaped)', () => [zombie.pid], false],
    ['a zombie, its recorded start time', () => [zombie.pid, zombie.startTime], false],
    ['an ended and reaped process', () => [reaped], false],
    ['this process', () => [process.pid, ownProcessStartTime()], true],
    // kill(tid, 0) answers and /proc/<tid>/stat is readable for any thread: a pid of a recorded
    // holder later given to a thread of another process is not that process (nor the holder).
    ['a thread of a live process (its id, not the process\'s pid)', () => [thread], false],
    ['a thread of a live process, its own start time', () => [thread, startOf(thread)], false],
    // A holder without /proc (another platform, a container without it) records 'unknown'
    // (ownProcessStartTime): no start time to compare, so the pid alone answers, as for a lock
    // written before start times were kept; before, every such live holder counted as gone.
    ['a live process whose holder could not read its start time (\'unknown\')', () => [live.pid!, 'unknown'], true],
    ['a reaped process whose holder could not read its start time', () => [reaped, 'unknown'], false],
  ])('%s', (_label, args, runs) => {
    const [pid, startTime] = args();
    expect(processRuns(pid, startTime)).toBe(runs);
  });
});
