/**
 * The sandbox's /proc shows what an unprivileged user of the host reads, no more. The sandbox's
 * uid 1000 is the host's Warden user (root on CI) in a user namespace, so the kernel treats it as
 * the owner of root-owned files: without masks the fresh /proc serves the root-only (0400) kernel
 * files, /proc/slabinfo (kernel heap layout, the first input of a slab exploit), /proc/timer_list,
 * /proc/vmallocinfo, /proc/pagetypeinfo (found by the issue-11 attack).
 *
 * The kind: every root-only entry of /proc outside the per-process folders, found by the same
 * scan the sandbox uses and checked independently with `find` here, reads as empty inside.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runSandboxed } from '../../../sandbox/os/run-sandboxed';
import { unreadableProcEntries } from '../../../sandbox/os/system-view';

const LIMITS = { wallTimeMs: 20_000, cpuTimeMs: 10_000, memoryMb: 128, maxProcesses: 16 };
const EXAMPLES = ['/proc/slabinfo', '/proc/timer_list', '/proc/vmallocinfo', '/proc/pagetypeinfo'].filter((f) => {
  try {
    return (fs.statSync(f).mode & 0o044) === 0;
  } catch {
    return false;
  }
});

/** Root-only files and folders of /proc by `find` (outside per-process folders and /proc/sys, covered read-only as a whole). */
function rootOnlyByFind(): string[] {
  const found = spawnSync(
    'find',
    ['/proc', '-mindepth', '1', '-maxdepth', '4', '(', '-regex', '/proc/[0-9]+', '-o', '-path', '/proc/sys', '-o', '-path', '/proc/self', '-o', '-path', '/proc/thread-self', ')', '-prune', '-o', '!', '-type', 'l', '!', '-perm', '-o=r', '-print'],
    { encoding: 'utf8' },
  );
  // A process that exits while find walks /proc can be reported by its folder's path although the
  // folder is pruned (CI once listed /proc/27575): per-process folders are never what this looks for.
  return found.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('/proc/sysrq-trigger') && !/^\/proc\/[0-9]+(\/|$)/.test(line));
}

describe('root-only /proc entries', () => {
  it.each(EXAMPLES)('%s is not readable in the sandbox', async (file) => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', `head -c 200 ${file} | wc -c`], limits: LIMITS });
    expect(Number(run.stdout.trim())).toBe(0);
  });

  it('the sandbox masks every entry find reports as root-only', () => {
    const masked = new Set(unreadableProcEntries().map((e) => e.absolute));
    const missing = rootOnlyByFind().filter((entry) => ![...masked].some((m) => entry === m || entry.startsWith(`${m}/`)));
    expect(missing).toEqual([]);
  });

  it('none of them can be read or listed inside', async () => {
    const entries = unreadableProcEntries();
    expect(entries.length).toBeGreaterThan(0);
    const script = entries.map((e) => (e.folder ? `ls -A ${e.absolute} 2>/dev/null` : `head -c 64 ${e.absolute} 2>/dev/null`)).join('; ');
    const run = await runSandboxed({ command: 'sh', args: ['-c', `{ ${script}; } | wc -c`], limits: LIMITS });
    expect(Number(run.stdout.trim())).toBe(0);
  });

  it('what others may read stays readable (the masks are not a blanket)', async () => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', 'head -c 16 /proc/meminfo | wc -c; head -c 16 /proc/cpuinfo | wc -c'], limits: LIMITS });
    expect(run.stdout.trim().split('\n').map(Number)).toEqual([16, 16]);
  });
});
