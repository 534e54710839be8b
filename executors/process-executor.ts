/**
 * The `process` executor: `proc.run {command, args, cwd?, stdin?, timeout?}` starts one granted
 * program in the OS sandbox (sandbox/os/) and returns its exit status and bounded output.
 *
 * Invariants:
 * - the program is one the task grants by name (`grants.commands`), looked up only in the
 *   sandbox's read-only system folders, so nothing in the workspace can stand in for it; an
 *   absolute path is run only when granted as that exact path;
 * - it sees the workspace through the task tree's copy-on-write overlay (its writes are
 *   committed or rolled back with the task), reaches only the task's granted hosts through the
 *   egress proxy, and gets no environment variable of the worker;
 * - wall time is at most the task's tool timeout; memory, processes and CPU are bounded; the
 *   whole process tree is gone when the call returns.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { realpath } from 'node:fs/promises';
import { SandboxError, ToolError } from '../errors';
import { overlayPathsOf, taskKeyOf } from '../recovery/recovery-paths';
import { openOverlay } from '../recovery/workspace-overlay';
import { assertOverlayBounded, assertWithinWorkspaceQuota, workspaceLimitMbOf } from '../recovery/overlay-volume';
import type { EgressDecision, EgressGate } from '../sandbox/os/egress-proxy';
import { runSandboxed } from '../sandbox/os/run-sandboxed';
import { systemView } from '../sandbox/os/system-view';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';
import { PROCESS_LIMIT_DEFAULTS } from '../tools/process-tools';
import { captureUpper, listUpper, recordUpperChanges, removeAddedPaths } from '../recovery/overlay-undo';
import { textTail } from '../cut-text';

/** Default memory of a program's process tree, MiB (`limits.processMemoryMb`). */
export const DEFAULT_PROCESS_MEMORY_MB = PROCESS_LIMIT_DEFAULTS.memoryMb;
/** Default processes alive at once (`limits.processMaxProcesses`). */
export const DEFAULT_PROCESS_COUNT = PROCESS_LIMIT_DEFAULTS.maxProcesses;
/** Most bytes kept of stdout and of stderr each. */
export const MAX_PROCESS_OUTPUT_BYTES = 64 * 1024;

export interface ProcRunArgs {
  command: string;
  args?: string[];
  cwd?: string;
  stdin?: string;
  timeout?: string;
}

/** What `proc.run` returns to the agent. */
export interface ProcRunOutput {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean };
  /** Always `exited`: a program stopped by a limit fails the call instead (limitFailureOf). */
  reason: string;
  durationMs: number;
}

/**
 * Whether `command` may run under `task`: granted by exact name or path. Throws ToolError
 * ERR_COMMAND_NOT_GRANTED naming the grant to add.
 */
export function assertCommandGranted(task: Task, command: string): void {
  const granted = task.grants.commands ?? [];
  if (!granted.includes(command)) {
    throw new ToolError('ERR_COMMAND_NOT_GRANTED', `program "${command}" is not granted to this task (grants.commands: [${granted.join(', ')}])`, {
      details: { command, granted },
    });
  }
  if (!command.startsWith('/') && command.includes('/')) {
    throw new ToolError('ERR_COMMAND_NOT_GRANTED', `program "${command}" must be a bare name looked up on the sandbox's PATH, or an absolute path`);
  }
}

/** The absolute path of `command` in the sandbox's read-only system folders; ERR_COMMAND_NOT_FOUND when there is none. */
export function resolveCommand(command: string): string {
  const candidates = command.startsWith('/') ? [command] : systemView().path.map((folder) => path.join(folder, command));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  throw new ToolError('ERR_COMMAND_NOT_FOUND', `program "${command}" is not installed on this worker (looked in ${command.startsWith('/') ? command : systemView().path.join(':')})`, {
    details: { command },
  });
}

export interface ProcessCallInput {
  rootWorkflowId: string;
  rootRunId?: string;
  task: Task;
  args: ProcRunArgs;
  stateDir: string;
  /** What the program may never see or change (worker/warden-resources.ts `protectedSetOf`). */
  protected?: { folders: string[]; files: string[]; readOnly: string[] };
  /**
   * A sub-agent's call: where to record what its program changes in the overlay, so the change
   * can be undone on its own (recovery/overlay-undo.ts).
   */
  undoDir?: string;
  /** Asked before each granted connection of the program (the monitor's egress watch). */
  egressGate?: EgressGate;
  /** Told of the program's requests through the egress proxy once it has ended, before any limit or bound fails the call (the failure's details carry them: activities/call-outcome.ts). */
  reportEgress?: (decisions: EgressDecision[]) => void;
  /** The activity's cancellationSignal: on abort the program's tree is killed and the call throws the signal's reason. */
  signal?: AbortSignal;
}

/** A finished `proc.run` call: what the agent gets, and what the program did on the network (for the monitor, never the agent). */
export interface ProcessCallResult {
  output: ProcRunOutput;
  /** Every request through the egress proxy: host, method, bytes sent, allowed or held. */
  egress: EgressDecision[];
}

/**
 * The executables a task's programs may start: every program `grants.commands` names that is
 * installed (absolute host paths). The sandbox shows only these (sandbox/os/program-view.ts).
 */
export function grantedPrograms(task: Task): string[] {
  const found: string[] = [];
  for (const command of task.grants.commands ?? []) {
    try {
      found.push(resolveCommand(command));
    } catch {
      // not installed: nothing to show
    }
  }
  return found;
}

/**
 * Runs one `proc.run` call to its end, or until `input.signal` aborts: then the program's tree is
 * killed and the call throws the signal's reason (an activity's CancelledFailure), not the
 * program's partial output.
 */
export async function executeProcessCall(input: ProcessCallInput): Promise<ProcessCallResult> {
  const { task, args } = input;
  assertCommandGranted(task, args.command);
  const executable = resolveCommand(args.command);
  const taskTimeoutMs = durationToMs(task.limits.toolTimeout);
  const wallTimeMs = Math.min(args.timeout === undefined ? taskTimeoutMs : durationToMs(args.timeout), taskTimeoutMs);
  let workspace: { mode: 'overlay'; root: string; overlayDir: string; protected?: ProcessCallInput['protected'] } | undefined;
  if (task.resources.workspace !== undefined) {
    const root = await realpath(task.resources.workspace).catch(() => {
      throw new ToolError('ERR_PATH_NOT_FOUND', `the workspace ${task.resources.workspace} does not exist`);
    });
    const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
    await openOverlay({ stateDir: input.stateDir, taskKey, workspace: root, volumeMb: workspaceLimitMbOf(task), owner: input.rootRunId === undefined ? undefined : { workflowId: input.rootWorkflowId, runId: input.rootRunId } });
    // The tree's bound on disk (recovery/overlay-volume.ts): no program runs over an unbounded overlay.
    await assertOverlayBounded(input.stateDir, taskKey, task, `proc.run ${args.command}`);
    workspace = { mode: 'overlay', root, overlayDir: overlayPathsOf(input.stateDir, taskKey).dir, ...(input.protected === undefined ? {} : { protected: input.protected }) };
  }
  const upper = workspace === undefined || input.undoDir === undefined ? undefined : overlayPathsOf(input.stateDir, taskKeyOf(input.rootWorkflowId, input.rootRunId)).upper;
  const captured = upper === undefined ? undefined : await captureUpper(upper);
  // A root task's program is measured by its activity (activities/run-tool.ts `beginOutsideUndo`), which
  // undoes a failed call; what it adds is also taken back out here if it runs into the bound (a caller without that measure).
  const rootUpper = workspace === undefined || input.undoDir !== undefined ? undefined : overlayPathsOf(input.stateDir, taskKeyOf(input.rootWorkflowId, input.rootRunId)).upper;
  const listed = rootUpper === undefined ? undefined : listUpper(rootUpper);
  let run;
  try {
    run = await runSandboxed(
      {
        command: executable,
        args: args.args ?? [],
        programs: grantedPrograms(task),
        cwd: args.cwd ?? '.',
        ...(workspace === undefined ? {} : { workspace }),
        allowedHosts: task.grants.hosts.filter((h) => task.resources.hosts.includes(h)),
        limits: {
          wallTimeMs,
          cpuTimeMs: wallTimeMs,
          memoryMb: task.limits.processMemoryMb ?? DEFAULT_PROCESS_MEMORY_MB,
          maxProcesses: task.limits.processMaxProcesses ?? DEFAULT_PROCESS_COUNT,
        },
      },
      { ...(args.stdin === undefined ? {} : { stdin: args.stdin }), maxOutputBytes: MAX_PROCESS_OUTPUT_BYTES, ...(input.egressGate === undefined ? {} : { egressGate: input.egressGate }), ...(input.signal === undefined ? {} : { signal: input.signal }) },
    );
  } catch (error) {
    if (error instanceof TypeError) throw new ToolError('ERR_TOOL_INPUT_INVALID', `proc.run: ${error.message}`);
    throw error;
  } finally {
    if (upper !== undefined && captured !== undefined) await recordUpperChanges(upper, input.undoDir!, captured);
  }
  // What it did on the network counts however the call ends from here (a limit, the bound, a cancel).
  input.reportEgress?.(run.exit.egress);
  // Cancelled: the activity ends as cancelled, and the workflow's saga takes back what it wrote.
  input.signal?.throwIfAborted();
  // A program that ran into the bound fails its step, and what it added is taken back out.
  // A sub-agent's call is undone by its records (activities/run-tool.ts); a root task's loses what it added.
  if (workspace !== undefined) {
    try {
      assertWithinWorkspaceQuota(input.stateDir, taskKeyOf(input.rootWorkflowId, input.rootRunId), task, `proc.run ${args.command}`);
    } catch (error) {
      if (rootUpper === undefined || listed === undefined || !(error instanceof ToolError)) throw error;
      const undone = await removeAddedPaths(rootUpper, listed);
      throw undone.length === 0 ? error : new ToolError(error.code, error.message, { details: { ...error.details, undone: undone.slice(0, 100), undoneCount: undone.length } });
    }
  }
  if (run.reason === 'setup-failed' && /^bwrap: Can't chdir to /m.test(run.stderr)) {
    throw new ToolError('ERR_PATH_NOT_FOUND', `proc.run: the working folder ${JSON.stringify(args.cwd ?? '.')} does not exist in the workspace`);
  }
  if (run.reason === 'setup-failed') {
    throw new SandboxError('ERR_OS_SANDBOX_UNAVAILABLE', `the OS sandbox could not start ${args.command}: ${textTail(run.stderr.trim(), 500)}`);
  }
  const limitFailure = limitFailureOf(args.command, run, {
    wallTimeMs,
    taskTimeout: task.limits.toolTimeout,
    callTimeout: args.timeout,
    memoryMb: task.limits.processMemoryMb ?? DEFAULT_PROCESS_MEMORY_MB,
  });
  if (limitFailure !== undefined) {
    // Like a call over the workspace bound: a root task's program loses what it added.
    if (rootUpper === undefined || listed === undefined) throw limitFailure;
    const undone = await removeAddedPaths(rootUpper, listed);
    throw undone.length === 0 ? limitFailure : new SandboxError(limitFailure.code, limitFailure.message, { details: { ...limitFailure.details, undone: undone.slice(0, 100), undoneCount: undone.length } });
  }
  return {
    output: {
      exitCode: run.exitCode,
      stdout: run.stdout,
      stderr: run.stderr,
      truncated: run.truncated,
      reason: run.reason,
      durationMs: run.durationMs,
    },
    egress: run.exit.egress,
  };
}

/** Most characters of each stream a limit failure keeps in its details (what the program said before it was stopped). */
const LIMIT_FAILURE_OUTPUT_CHARS = 2000;

/**
 * The failure of a program Warden stopped, or undefined when it exited on its own (whatever its
 * status: a non-zero exit, or a signal it raised itself, is the program's answer, not a limit).
 * A program stopped at a limit did not finish its work, so the call fails with the limit's code
 * and value: ERR_SANDBOX_TIMEOUT (wall time, CPU time), ERR_SANDBOX_MEMORY, or
 * ERR_SANDBOX_CRASHED (killed by Warden otherwise). Details: `limit`, its value (`limitMs` or
 * `limitMb`), `durationMs`, and the tails of stdout and stderr.
 */
export function limitFailureOf(
  command: string,
  run: { reason: string; durationMs: number; stdout: string; stderr: string },
  limits: { wallTimeMs: number; taskTimeout: string; callTimeout?: string | undefined; memoryMb: number },
): SandboxError | undefined {
  const output = { stdout: textTail(run.stdout, LIMIT_FAILURE_OUTPUT_CHARS), stderr: textTail(run.stderr, LIMIT_FAILURE_OUTPUT_CHARS) };
  const ran = { durationMs: run.durationMs, ...output };
  const timeoutSource = limits.callTimeout !== undefined && durationToMs(limits.callTimeout) < durationToMs(limits.taskTimeout) ? `the call's timeout ${limits.callTimeout}` : `limits.toolTimeout ${limits.taskTimeout}`;
  switch (run.reason) {
    case 'exited':
      return undefined;
    case 'wall-time':
      return new SandboxError('ERR_SANDBOX_TIMEOUT', `proc.run ${command}: stopped at its wall-time limit of ${limits.wallTimeMs} ms (${timeoutSource}) after ${run.durationMs} ms`, {
        details: { limit: 'wall-time', limitMs: limits.wallTimeMs, ...ran },
      });
    case 'cpu-time':
      return new SandboxError('ERR_SANDBOX_TIMEOUT', `proc.run ${command}: stopped at its CPU-time limit of ${limits.wallTimeMs} ms (${timeoutSource})`, {
        details: { limit: 'cpu-time', limitMs: limits.wallTimeMs, ...ran },
      });
    case 'memory':
      return new SandboxError('ERR_SANDBOX_MEMORY', `proc.run ${command}: stopped at its memory limit of ${limits.memoryMb} MiB (limits.processMemoryMb)`, {
        details: { limit: 'memory', limitMb: limits.memoryMb, ...ran },
      });
    default:
      return new SandboxError('ERR_SANDBOX_CRASHED', `proc.run ${command}: killed by the sandbox (${run.reason}) after ${run.durationMs} ms`, {
        details: { limit: run.reason, ...ran },
      });
  }
}
