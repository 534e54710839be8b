/**
 * Starts one program in the OS sandbox (bubblewrap) and owns its whole life.
 *
 * What the program gets (and nothing else):
 * - new user, mount, PID, IPC, UTS and network namespaces (cgroup too where the kernel has it); it
 *   runs as an unprivileged id with no capabilities and cannot create further user namespaces;
 * - the host's system folders read-only (`system-view.ts`), a private /tmp and HOME, a fresh /proc
 *   showing only its own processes, a minimal /dev;
 * - the task's workspace at /workspace: read-only, or through a kernel overlay whose upper layer
 *   is the task tree's copy-on-write folder, so every write lands where Warden's rollback and
 *   commit already look, and the real workspace is never written; a workspace that is, holds or
 *   lies in Warden's own resources or a kernel file system is never mounted, and the task's own
 *   controls (task file, policy packs) inside it are mounted read-only;
 * - no network at all, or, when hosts are granted, only Warden's egress proxy (same host rules as
 *   `http.fetch`) at HTTP_PROXY=http://127.0.0.1:3128;
 * - exactly the environment variables in `spec.env` plus PATH, HOME, TMPDIR, LANG (and the proxy
 *   variables): nothing of the worker's environment;
 * - limits on wall time, CPU time, memory, processes and file size (`resource-limits.ts`).
 *
 * Invariant: when the run ends (exit, limit, `kill`, or the worker dying: --die-with-parent), the
 * whole process tree is gone: killing bubblewrap ends the PID namespace's init, which makes the
 * kernel kill every process in the namespace; the control group is then emptied and removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { SandboxError } from '../../errors';
import { startEgressProxy, type EgressDecision, type EgressGate, type EgressProxy } from './egress-proxy';
import { OsSandboxSpecSchema, SANDBOX_HOME, SANDBOX_PROXY_PORT, SANDBOX_WORKSPACE, type OsSandboxSpec, type OsSandboxSpecInput } from './os-sandbox-spec';
import { createSandboxCgroup, enforcementOf, rlimitArgs, type LimitEnforcement, type SandboxCgroup } from './resource-limits';
import { systemView } from './system-view';
import { programView } from './program-view';
import { osSandboxProblem } from './os-sandbox-availability';

export { osSandboxProblem, taskNeedsOsSandbox } from './os-sandbox-availability';
import { createProtectedGuard, describeRefusal } from '../capabilities/protected-guard';
import { textTail } from '../../cut-text';
import { setLongTimeout } from '../../long-timer';

const SCRIPTS = path.join(__dirname, 'scripts');
const LAUNCHER = path.join(SCRIPTS, 'launch-sandbox.sh');
const FORWARDER = path.join(SCRIPTS, 'egress-forwarder.cjs');
/** Exit status the launcher and init script use for their own failures (with a "warden-sandbox:" line on stderr). */
const SETUP_FAILURE_STATUS = 125;
const CPU_POLL_MS = 100;
const STDERR_TAIL_BYTES = 16 * 1024;
/** Characters the kernel's overlay option parser treats specially. */
const OVERLAY_UNSAFE = /[,:\\\s]/;

/** Why a sandboxed run ended. */
export type SandboxEndReason = 'exited' | 'wall-time' | 'cpu-time' | 'memory' | 'killed' | 'setup-failed';

export interface SandboxExit {
  reason: SandboxEndReason;
  /** The program's exit status (bubblewrap reports 128 + n for a signal n); null when killed by Warden. */
  exitCode: number | null;
  durationMs: number;
  /** CPU time of the whole tree in ms, when a control group measured it. */
  cpuMs?: number;
  /** What the sandbox's stderr ended with (for setup failures and diagnostics). */
  stderrTail: string;
  /** How memory, process and CPU limits were enforced. */
  enforcement: LimitEnforcement;
  /** Requests made through the egress proxy. */
  egress: EgressDecision[];
}

export interface SandboxedProcess {
  readonly runId: string;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** The program's stderr. Read it, or it is drained into `stderrTail` only. */
  readonly stderr: Readable;
  /** Resolves once, when the run has ended and everything is cleaned up. Never rejects. */
  readonly exited: Promise<SandboxExit>;
  /** Kills the whole tree now (idempotent); resolves with the exit. */
  kill(reason?: SandboxEndReason): Promise<SandboxExit>;
}

let availability: string | undefined;

/**
 * Checks once per process that bubblewrap, unshare and prlimit are installed and that namespaces
 * can be created; throws SandboxError ERR_OS_SANDBOX_UNAVAILABLE naming what is missing and how
 * to install it.
 */
export function assertOsSandboxAvailable(): void {
  availability ??= osSandboxProblem() ?? 'ok';
  if (availability !== 'ok') throw new SandboxError('ERR_OS_SANDBOX_UNAVAILABLE', availability);
}

/** What a run needs besides its spec (not data: callbacks). */
export interface SandboxedProcessOptions {
  /** Asked before the egress proxy opens each granted connection (the monitor's egress watch). */
  egressGate?: EgressGate;
  /** Told of each egress decision as it is made (a long-lived server's requests, attributed to the call in flight); the proxy then keeps no tally of its own (the caller caps, egress-tally.ts). */
  onEgress?: (decision: EgressDecision) => void;
  /** Told of bytes a decision told of before sent afterwards (with `onEgress`: the caller tallies, egress-tally.ts). */
  onEgressBytes?: (decision: EgressDecision, bytes: number) => void;
}

/**
 * Starts `spec` in a new sandbox. Throws TypeError for a malformed spec, SandboxError
 * ERR_OS_SANDBOX_UNAVAILABLE when bubblewrap is missing; failures after the start (including a
 * sandbox that could not be set up) come back in `exited` with reason `setup-failed`.
 */
export async function startSandboxedProcess(input: OsSandboxSpecInput, options: SandboxedProcessOptions = {}): Promise<SandboxedProcess> {
  const parsed = OsSandboxSpecSchema.safeParse(input);
  if (!parsed.success) throw new TypeError(`invalid sandbox spec: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')}`);
  const spec = parsed.data;
  assertOsSandboxAvailable();
  const readOnlyInWorkspace = spec.workspace === undefined ? [] : checkedWorkspace(spec.workspace);
  const runId = randomUUID().replace(/-/g, '').slice(0, 16);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-run-'));
  const cleanups: (() => void | Promise<void>)[] = [() => fs.rmSync(runDir, { recursive: true, force: true })];
  try {
    const overlay = prepareOverlay(spec, runId, runDir, cleanups);
    // Only granted programs may run: everything writable (and the workspace) is mounted noexec by the launcher.
    const scratch = spec.programs === undefined ? undefined : path.join(runDir, 'scratch');
    if (scratch !== undefined) fs.mkdirSync(scratch, { mode: 0o700 });
    let readOnlyWorkspace: string | undefined;
    if (scratch !== undefined && spec.workspace?.mode === 'read-only') {
      const source = fs.realpathSync(spec.workspace.root);
      readOnlyWorkspace = path.join(runDir, 'workspace');
      if (OVERLAY_UNSAFE.test(source)) throw new SandboxError('ERR_OS_SANDBOX_UNAVAILABLE', `the workspace path ${JSON.stringify(source)} contains ",", ":", "\\" or white space`);
      fs.mkdirSync(readOnlyWorkspace, { mode: 0o700 });
      readOnlyWorkspace = `${source}:${readOnlyWorkspace}`;
    }
    let proxy: EgressProxy | undefined;
    if (spec.allowedHosts.length > 0) {
      proxy = await startEgressProxy({ socketPath: path.join(runDir, 'egress.sock'), allowedHosts: spec.allowedHosts, ...(options.egressGate === undefined ? {} : { gate: options.egressGate }), ...(options.onEgress === undefined ? {} : { onDecision: options.onEgress, tally: false }), ...(options.onEgressBytes === undefined ? {} : { onBytes: options.onEgressBytes }) });
      const started = proxy;
      cleanups.unshift(() => started.close());
    }
    const cgroup = createSandboxCgroup(`w${runId}`, spec.limits);
    if (cgroup !== undefined) cleanups.unshift(() => cgroup.remove());
    const args = [
      cgroup === undefined ? '-' : cgroup.procsFiles.join(':'),
      overlay === undefined ? '-' : overlay.launchArg,
      scratch ?? '-',
      readOnlyWorkspace ?? '-',
      ...bubblewrapArgs(spec, overlay?.merged ?? (readOnlyWorkspace === undefined ? undefined : path.join(runDir, 'workspace')), scratch, readOnlyInWorkspace),
    ];
    const child = spawn('/bin/sh', [LAUNCHER, ...args], {
      // fd 3: bubblewrap's JSON status (it reports the child's pid once the sandbox is set up);
      // fd 4: bubblewrap waits on it before it starts the program (limits and egress are set up then).
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    return supervise(child, spec, runId, cgroup, proxy, cleanups);
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
}

interface PreparedOverlay {
  merged: string;
  launchArg: string;
}

/** Creates the overlay's upper folder, a work folder for this run and the mount point. */
function prepareOverlay(spec: OsSandboxSpec, runId: string, runDir: string, cleanups: (() => void | Promise<void>)[]): PreparedOverlay | undefined {
  const workspace = spec.workspace;
  if (workspace === undefined || workspace.mode !== 'overlay') return undefined;
  const lower = fs.realpathSync(workspace.root);
  fs.mkdirSync(path.join(workspace.overlayDir, 'upper'), { recursive: true, mode: 0o700 });
  const overlayDir = fs.realpathSync(workspace.overlayDir);
  const upper = path.join(overlayDir, 'upper');
  // The kernel needs a work folder on the upper layer's file system; one per run, removed after.
  const work = path.join(overlayDir, `work-${runId}`);
  const merged = path.join(runDir, 'workspace');
  for (const [name, value] of [['workspace', lower], ['overlay folder', overlayDir], ['run folder', runDir]] as const) {
    if (OVERLAY_UNSAFE.test(value)) throw new SandboxError('ERR_OS_SANDBOX_UNAVAILABLE', `the ${name} path ${JSON.stringify(value)} contains a character a kernel overlay cannot name (",", ":", "\\" or white space)`);
  }
  fs.mkdirSync(work, { mode: 0o700 });
  fs.mkdirSync(merged, { mode: 0o700 });
  cleanups.push(() => removeWorkFolder(work));
  const xattr = process.getuid?.() === 0 ? 'trusted' : 'user';
  return { merged, launchArg: [lower, upper, work, merged, xattr].join(':') };
}

/** The overlay's work folder holds a mode-000 folder the kernel made; open it up before removing. */
function removeWorkFolder(work: string): void {
  try {
    for (const entry of fs.readdirSync(work)) fs.chmodSync(path.join(work, entry), 0o700);
  } catch {
    // absent or already open
  }
  fs.rmSync(work, { recursive: true, force: true });
}

/**
 * Refuses (SandboxError ERR_RESOURCE_PROTECTED) a workspace that would show Warden's own
 * resources or a kernel file system to the program, checked on the folder as it is now (by device
 * and inode); returns the task's controls inside it (real paths), to be mounted read-only.
 */
function checkedWorkspace(workspace: NonNullable<OsSandboxSpec['workspace']>): string[] {
  const guard = createProtectedGuard(workspace.protected ?? { folders: [], files: [] });
  let root: string;
  try {
    root = fs.realpathSync(workspace.root);
  } catch {
    return []; // the launcher reports a missing workspace
  }
  const refusal = guard.refusalOfFolder(root);
  if (refusal !== undefined) throw new SandboxError('ERR_RESOURCE_PROTECTED', `the workspace is not mounted: ${describeRefusal(root, refusal)}`, { details: { workspace: root } });
  return guard.readOnlyInside(root).map((item) => path.relative(root, item)).filter((rel) => rel !== '' && !rel.startsWith('..'));
}

function bubblewrapArgs(spec: OsSandboxSpec, mountedWorkspace: string | undefined, scratch: string | undefined, readOnlyInWorkspace: readonly string[] = []): string[] {
  const system = systemView();
  const args = [
    '--unshare-user',
    '--unshare-ipc',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--uid', '1000',
    '--gid', '1000',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--json-status-fd', '3',
    '--block-fd', '4',
    '--hostname', 'warden-sandbox',
    '--clearenv',
    ...system.args,
    ...(spec.programs === undefined ? [] : programView(spec.programs, system.shown, [system.nodeBin], system.emptyFile).args),
    '--proc', '/proc',
    // Root-only kernel files (slab layout, timers, vmalloc areas): what an unprivileged host user reads, no more.
    ...system.procMasks,
    // The sandbox's user maps to the host's Warden user (root on CI): kernel settings and the
    // SysRq trigger check only file modes, so they are covered read-only (bubblewrap's own cover
    // skips /proc/sys when its mode already looks read-only).
    '--ro-bind-try', '/proc/sys', '/proc/sys',
    '--ro-bind-try', '/proc/sysrq-trigger', '/proc/sysrq-trigger',
    '--dev', '/dev',
    // The scratch folder is a noexec tmpfs the launcher mounted (runs limited to granted programs).
    ...(scratch === undefined
      ? ['--tmpfs', '/tmp', '--tmpfs', '/run', '--tmpfs', '/home', '--dir', SANDBOX_HOME]
      : ['--bind', path.join(scratch, 'tmp'), '/tmp', '--bind', path.join(scratch, 'run'), '/run', '--bind', path.join(scratch, 'home'), '/home', '--bind', path.join(scratch, 'shm'), '/dev/shm', '--remount-ro', '/dev']),
  ];
  for (const folder of spec.readOnlyPaths) args.push('--ro-bind', folder, folder);
  const workspace = spec.workspace;
  if (workspace !== undefined) {
    if (mountedWorkspace !== undefined) args.push(workspace.mode === 'overlay' ? '--bind' : '--ro-bind', mountedWorkspace, SANDBOX_WORKSPACE);
    else args.push('--ro-bind', workspace.root, SANDBOX_WORKSPACE);
    // The task's own controls (task file, policy packs) stay as the user wrote them: read-only
    // over the workspace, from the real workspace (so not even the overlay's copy can differ).
    for (const rel of readOnlyInWorkspace) args.push('--ro-bind', path.join(fs.realpathSync(workspace.root), rel), path.posix.join(SANDBOX_WORKSPACE, rel.split(path.sep).join('/')));
  }
  // Everything is mounted: the root folder itself becomes read-only too.
  args.push('--remount-ro', '/');
  const env: Record<string, string> = {
    ...spec.env,
    PATH: [...spec.pathPrepend, ...system.path].join(':'),
    HOME: SANDBOX_HOME,
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
  };
  if (spec.allowedHosts.length > 0) {
    const address = `http://127.0.0.1:${SANDBOX_PROXY_PORT}`;
    for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) env[name] = address;
    env['NO_PROXY'] = '';
    env['no_proxy'] = '';
  }
  for (const [name, value] of Object.entries(env)) args.push('--setenv', name, value);
  const cwd = workspace === undefined ? '/tmp' : path.posix.resolve(SANDBOX_WORKSPACE, spec.cwd);
  if (workspace !== undefined && cwd !== SANDBOX_WORKSPACE && !cwd.startsWith(`${SANDBOX_WORKSPACE}/`)) {
    throw new TypeError(`the working folder ${JSON.stringify(spec.cwd)} is outside the workspace`);
  }
  args.push('--chdir', cwd, '--', spec.command, ...spec.args);
  return args;
}

function supervise(
  child: ChildProcess,
  spec: OsSandboxSpec,
  runId: string,
  cgroup: SandboxCgroup | undefined,
  proxy: EgressProxy | undefined,
  cleanups: (() => void | Promise<void>)[],
): SandboxedProcess {
  const started = Date.now();
  let stderrTail = '';
  const stderr = child.stderr!;
  stderr.on('data', (chunk: Buffer) => {
    stderrTail = textTail(stderrTail + chunk.toString('utf8'), STDERR_TAIL_BYTES);
  });
  // A program that never reads stdin must not make our writes throw.
  child.stdin!.on('error', () => undefined);
  let sandboxStarted = false;
  let statusText = '';
  const status = child.stdio[3] as Readable | undefined;
  const release = child.stdio[4] as Writable | undefined;
  release?.on('error', () => undefined);
  status?.on('data', (chunk: Buffer) => {
    if (sandboxStarted) return;
    statusText += chunk.toString('utf8');
    const pid = /"child-pid": ?(\d+)/.exec(statusText);
    if (pid === null) return;
    sandboxStarted = true;
    // bubblewrap holds the program back (--block-fd 4) until its limits and egress are in place.
    prepareStart(Number(pid[1]), spec, cgroup, proxy, cleanups).then(
      () => release?.end('go'),
      (error: Error) => {
        stderrTail += `warden-sandbox: ${error.message}\n`;
        killTree('setup-failed');
      },
    );
  });
  status?.on('error', () => undefined);
  let forcedReason: SandboxEndReason | undefined;
  let gone = false;
  const killTree = (reason: SandboxEndReason) => {
    forcedReason ??= reason;
    if (!gone) {
      try {
        // The launcher became bubblewrap in the same process group; --die-with-parent and the
        // PID namespace take the rest.
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    cgroup?.killAll();
  };
  // The wall time may be a task's tool timeout (up to 30 days): a bare timer fires at once past 2^31 - 1 ms.
  const wallTimer = setLongTimeout(() => killTree('wall-time'), spec.limits.wallTimeMs);
  const cpuTimer =
    cgroup === undefined
      ? undefined
      : setInterval(() => {
          const used = cgroup.cpuUsageMs();
          if (used !== undefined && used > spec.limits.cpuTimeMs) killTree('cpu-time');
        }, CPU_POLL_MS);
  const exited = new Promise<SandboxExit>((resolve) => {
    let settled = false;
    const finish = async (code: number | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      gone = true;
      wallTimer.clear();
      if (cpuTimer !== undefined) clearInterval(cpuTimer);
      // Whatever is left of the tree goes now (the namespace normally took it with bubblewrap).
      cgroup?.killAll();
      const cpuMs = cgroup?.cpuUsageMs();
      const oom = cgroup?.oomKilled() ?? false;
      await new Promise((r) => setImmediate(r));
      await runCleanups(cleanups);
      let reason: SandboxEndReason = forcedReason ?? 'exited';
      if (spawnError !== undefined) reason = 'setup-failed';
      else if (reason === 'exited' && (!sandboxStarted || (code === SETUP_FAILURE_STATUS && /^warden-sandbox: /m.test(stderrTail)))) reason = 'setup-failed';
      // bubblewrap's own last step before the program: entering the working folder.
      else if (reason === 'exited' && code === 1 && /^bwrap: Can't chdir to /m.test(stderrTail)) reason = 'setup-failed';
      if (oom && (reason === 'exited' || reason === 'killed')) reason = 'memory';
      resolve({
        reason,
        exitCode: forcedReason === undefined || forcedReason === 'exited' ? code : null,
        durationMs: Date.now() - started,
        ...(cpuMs === undefined ? {} : { cpuMs: Math.round(cpuMs) }),
        stderrTail: spawnError === undefined ? stderrTail : `${stderrTail}${spawnError.message}`,
        enforcement: enforcementOf(cgroup),
        egress: proxy === undefined ? [] : [...proxy.decisions],
      });
    };
    child.once('error', (error) => void finish(null, error));
    // 'close', not 'exit': every pipe has delivered its last bytes (the status pipe included).
    child.once('close', (code, signal) => void finish(code ?? (signal === null ? null : 128 + (os.constants.signals[signal] ?? 0))));
  });
  return {
    runId,
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr,
    exited,
    kill(reason = 'killed') {
      killTree(reason);
      return exited;
    },
  };
}

/**
 * What happens between bubblewrap setting the sandbox up and the program starting: the rlimits
 * are set on the sandbox's first process (inherited by every process of the tree; set inside the
 * sandbox's user namespace, so RLIMIT_NPROC counts only the sandbox's own processes), and with
 * granted hosts the egress forwarder starts listening on the sandbox's loopback (it joins only
 * the sandbox's network namespace, so nothing inside can see or start the Node running it).
 */
async function prepareStart(pid: number, spec: OsSandboxSpec, cgroup: SandboxCgroup | undefined, proxy: EgressProxy | undefined, cleanups: (() => void | Promise<void>)[]): Promise<void> {
  await runToEnd('prlimit', ['--pid', String(pid), ...rlimitArgs(spec.limits, cgroup)]);
  if (proxy === undefined) return;
  const enter = process.getuid?.() === 0 ? ['--net'] : ['--user', '--net', '--preserve-credentials'];
  const forwarder = spawn('nsenter', ['--target', String(pid), ...enter, '--', process.execPath, FORWARDER, proxy.socketPath, String(SANDBOX_PROXY_PORT)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  cleanups.unshift(() => {
    forwarder.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let errors = '';
    forwarder.stderr!.on('data', (chunk: Buffer) => (errors = textTail(errors + chunk.toString('utf8'), 2000)));
    forwarder.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString('utf8').includes('ready')) resolve();
    });
    forwarder.once('error', reject);
    forwarder.once('exit', (code) => reject(new Error(`the egress forwarder did not start (exit ${code}): ${errors.trim()}`)));
  });
}

function runToEnd(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const run = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    let errors = '';
    run.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')));
    run.once('error', reject);
    run.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} failed (exit ${code}): ${errors.trim()}`))));
  });
}

async function runCleanups(cleanups: (() => void | Promise<void>)[]): Promise<void> {
  for (const cleanup of cleanups.splice(0)) {
    try {
      await cleanup();
    } catch {
      // best effort: a cleanup failing must not hide the run's outcome
    }
  }
}
