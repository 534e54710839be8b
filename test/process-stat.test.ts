/**
 * process-stat.ts: one parser of /proc/<pid>/stat (proc(5)). The command name (field 2) is in
 * parentheses and may hold spaces, "(" and ")": every other field is read after the LAST ")".
 * Checked on synthetic lines and on a real process whose executable is named that way.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessAlive, parseProcStat, processExists, readProcStat } from '../process-stat';
import { processStartTime } from '../worker/standalone-worker';

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
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(processExists(process.pid)).toBe(true);
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
      expect(isProcessAlive(child.pid!)).toBe(true);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    expect(readProcStat(child.pid!)).toBeUndefined();
    expect(isProcessAlive(child.pid!)).toBe(false);
    expect(processExists(child.pid!)).toBe(false);
  });

  it('says no for pids that cannot be a process', () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(isProcessAlive(pid)).toBe(false);
    expect(readProcStat('self/../nope')).toBeUndefined();
  });
});
