/**
 * Attack: the sandbox's uid 1000 is the host's Warden user (root on CI) mapped into a user
 * namespace, so the kernel treats it as the owner of root-owned files. /etc is masked and
 * /proc/sys, /proc/irq, /proc/bus are covered read-only, but the fresh /proc still serves the
 * root-only (0400) kernel files: /proc/slabinfo (kernel heap layout, the first input of a slab
 * exploitation), /proc/timer_list (host-wide timers), /proc/vmallocinfo, /proc/pagetypeinfo.
 * No unprivileged user of the host can read them. (Low: information for a kernel exploit, since
 * there is no seccomp filter either.)
 *
 * Expected: what the sandbox reads of /proc is what an unprivileged host user reads (mask the
 * root-only entries as system-view.ts does for /etc).
 */
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runSandboxed } from '../../sandbox/os/run-sandboxed';

const LIMITS = { wallTimeMs: 20_000, cpuTimeMs: 10_000, memoryMb: 128, maxProcesses: 16 };
const ROOT_ONLY = ['/proc/slabinfo', '/proc/timer_list', '/proc/vmallocinfo', '/proc/pagetypeinfo'].filter((f) => {
  try {
    return (fs.statSync(f).mode & 0o044) === 0;
  } catch {
    return false;
  }
});

describe('root-only /proc files', () => {
  it.each(ROOT_ONLY)('%s is not readable in the sandbox', async (file) => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', `head -c 200 ${file} | wc -c`], limits: LIMITS });
    expect(Number(run.stdout.trim())).toBe(0);
  });
});
