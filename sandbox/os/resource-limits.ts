/**
 * Resource limits of one sandboxed process tree: a control group of its own when the host lets
 * Warden create one (cgroup v2, or v1's memory, pids and cpuacct hierarchies), and POSIX rlimits
 * on every process in any case.
 *
 * Why both: rlimits are per process (a fork bomb of small processes passes RLIMIT_DATA, and
 * RLIMIT_NPROC does not bind a tree whose host user is root), while a control group bounds the
 * whole tree. Without a writable cgroup hierarchy the rlimits are what remains, and
 * `enforcement` says so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OsSandboxLimits } from './os-sandbox-spec';

/** How each limit is enforced for a run (reported with its result). */
export interface LimitEnforcement {
  memory: 'cgroup' | 'rlimit';
  processes: 'cgroup' | 'rlimit';
  cpu: 'cgroup' | 'rlimit';
}

export interface SandboxCgroup {
  readonly version: 1 | 2;
  /** `cgroup.procs` files the launcher writes its own pid into before it starts the sandbox. */
  readonly procsFiles: readonly string[];
  /** CPU time used by the tree so far, in ms. */
  cpuUsageMs(): number | undefined;
  /** Whether the kernel's OOM killer ended a process of the tree. */
  oomKilled(): boolean;
  /** SIGKILLs every process still in the group. */
  killAll(): void;
  /** Kills what is left and removes the group (waits up to ~2 s for the processes to go). */
  remove(): Promise<void>;
}

const V2_ROOT = '/sys/fs/cgroup';
const BASE_NAME = 'warden';

let detected: { version: 1; mounts: Record<'memory' | 'pids' | 'cpuacct', string> } | { version: 2 } | null | undefined;

function detect(): typeof detected {
  if (detected !== undefined) return detected;
  detected = null;
  try {
    const controllers = fs.readFileSync(path.join(V2_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/);
    if (controllers.includes('memory') && controllers.includes('pids')) detected = { version: 2 };
    return detected;
  } catch {
    // not a pure cgroup v2 host
  }
  try {
    const mounts: Partial<Record<'memory' | 'pids' | 'cpuacct', string>> = {};
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, where, type, options] = line.split(' ');
      if (type !== 'cgroup' || where === undefined || options === undefined) continue;
      const names = options.split(',');
      for (const controller of ['memory', 'pids', 'cpuacct'] as const) if (names.includes(controller)) mounts[controller] ??= where;
    }
    if (mounts.memory !== undefined && mounts.pids !== undefined && mounts.cpuacct !== undefined) {
      detected = { version: 1, mounts: mounts as Record<'memory' | 'pids' | 'cpuacct', string> };
    }
  } catch {
    // no cgroups at all
  }
  return detected;
}

/**
 * A new control group for run `id` with the memory and process limits set, or undefined when the
 * host does not let this process create one (then only rlimits apply).
 */
export function createSandboxCgroup(id: string, limits: OsSandboxLimits): SandboxCgroup | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new TypeError(`not a cgroup name: ${id}`);
  const found = detect();
  if (found === null || found === undefined) return undefined;
  const memoryBytes = String(limits.memoryMb * 1024 * 1024);
  try {
    if (found.version === 2) return createV2(id, memoryBytes, limits.maxProcesses);
    return createV1(found.mounts, id, memoryBytes, limits.maxProcesses);
  } catch {
    return undefined;
  }
}

function createV2(id: string, memoryBytes: string, maxProcesses: number): SandboxCgroup {
  const base = path.join(V2_ROOT, BASE_NAME);
  if (!fs.existsSync(base)) {
    writeIfPossible(path.join(V2_ROOT, 'cgroup.subtree_control'), '+memory +pids +cpu');
    fs.mkdirSync(base, { recursive: true });
  }
  writeIfPossible(path.join(base, 'cgroup.subtree_control'), '+memory +pids +cpu');
  const dir = path.join(base, id);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'memory.max'), memoryBytes);
  writeIfPossible(path.join(dir, 'memory.swap.max'), '0');
  fs.writeFileSync(path.join(dir, 'pids.max'), String(maxProcesses));
  const procs = path.join(dir, 'cgroup.procs');
  return {
    version: 2,
    procsFiles: [procs],
    cpuUsageMs() {
      const match = /usage_usec (\d+)/.exec(readOr(path.join(dir, 'cpu.stat'), ''));
      return match === null ? undefined : Number(match[1]) / 1000;
    },
    oomKilled() {
      const match = /oom_kill (\d+)/.exec(readOr(path.join(dir, 'memory.events'), ''));
      return match !== null && Number(match[1]) > 0;
    },
    killAll() {
      if (!writeIfPossible(path.join(dir, 'cgroup.kill'), '1')) killListed([procs]);
    },
    remove: () => removeGroups([dir], [procs], () => writeIfPossible(path.join(dir, 'cgroup.kill'), '1') || killListed([procs])),
  };
}

function createV1(mounts: Record<'memory' | 'pids' | 'cpuacct', string>, id: string, memoryBytes: string, maxProcesses: number): SandboxCgroup {
  const dirs = { memory: path.join(mounts.memory, BASE_NAME, id), pids: path.join(mounts.pids, BASE_NAME, id), cpuacct: path.join(mounts.cpuacct, BASE_NAME, id) };
  const unique = [...new Set(Object.values(dirs))];
  for (const dir of unique) fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dirs.memory, 'memory.limit_in_bytes'), memoryBytes);
  writeIfPossible(path.join(dirs.memory, 'memory.memsw.limit_in_bytes'), memoryBytes);
  fs.writeFileSync(path.join(dirs.pids, 'pids.max'), String(maxProcesses));
  const procsFiles = unique.map((dir) => path.join(dir, 'cgroup.procs'));
  return {
    version: 1,
    procsFiles,
    cpuUsageMs() {
      const text = readOr(path.join(dirs.cpuacct, 'cpuacct.usage'), '').trim();
      return text === '' ? undefined : Number(text) / 1e6;
    },
    oomKilled() {
      const match = /oom_kill (\d+)/.exec(readOr(path.join(dirs.memory, 'memory.oom_control'), ''));
      if (match !== null) return Number(match[1]) > 0;
      return Number(readOr(path.join(dirs.memory, 'memory.failcnt'), '0').trim()) > 0;
    },
    killAll() {
      killListed(procsFiles);
    },
    remove: () => removeGroups(unique, procsFiles, () => killListed(procsFiles)),
  };
}

/** SIGKILLs every pid listed in `procsFiles`; returns true (it always tried). */
function killListed(procsFiles: readonly string[]): boolean {
  for (const file of procsFiles) {
    for (const pid of readOr(file, '').split('\n').filter((l) => /^\d+$/.test(l))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  return true;
}

async function removeGroups(dirs: readonly string[], procsFiles: readonly string[], kill: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const alive = procsFiles.some((file) => readOr(file, '').trim() !== '');
    if (!alive) break;
    kill();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const dir of dirs) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // still busy (a process in uninterruptible sleep) or already gone: left for the next clean-up
    }
  }
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function writeIfPossible(file: string, value: string): boolean {
  try {
    fs.writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * `prlimit` options for every process of the tree. CPU seconds are rounded up (RLIMIT_CPU has
 * second granularity; the tree-wide limit is checked in ms when a cgroup exists). Memory is
 * bounded per process only when no cgroup bounds the tree.
 */
export function rlimitArgs(limits: OsSandboxLimits, cgroup: SandboxCgroup | undefined): string[] {
  const cpuSeconds = Math.max(1, Math.ceil(limits.cpuTimeMs / 1000));
  const args = [
    `--cpu=${cpuSeconds}:${cpuSeconds + 1}`,
    '--core=0',
    `--fsize=${limits.maxFileMb * 1024 * 1024}`,
    '--nofile=1024',
    `--nproc=${limits.maxProcesses + 8}`,
  ];
  if (cgroup === undefined) args.push(`--data=${limits.memoryMb * 1024 * 1024}`);
  return args;
}

export function enforcementOf(cgroup: SandboxCgroup | undefined): LimitEnforcement {
  return cgroup === undefined ? { memory: 'rlimit', processes: 'rlimit', cpu: 'rlimit' } : { memory: 'cgroup', processes: 'cgroup', cpu: 'cgroup' };
}
