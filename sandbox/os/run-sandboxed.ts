/**
 * Runs a program in the OS sandbox to its end and returns its exit status and (bounded) output:
 * what `proc.run` returns, and what attestation re-runs tests with.
 *
 * Invariant: output beyond `maxOutputBytes` per stream is dropped (the run goes on; `truncated`
 * says so), so a chatty or hostile program cannot grow the worker's memory or the workflow history.
 * Once `signal` aborts (the activity was cancelled: its task cancelled or terminated), the
 * program's whole tree is killed then, not when the program chooses to end.
 */
import type { SandboxEndReason, SandboxExit, SandboxedProcessOptions } from './sandboxed-process';
import { startSandboxedProcess } from './sandboxed-process';
import type { OsSandboxSpecInput } from './os-sandbox-spec';

export interface SandboxedRunOptions extends SandboxedProcessOptions {
  /** Written to the program's stdin, which is then closed. */
  stdin?: string;
  /** Most bytes kept of stdout and of stderr each. Default 64 KiB. */
  maxOutputBytes?: number;
  /**
   * The caller gave up (an activity's cancellationSignal): an aborted signal starts nothing and
   * throws its reason; one that aborts during the run kills the tree (reason `killed`).
   */
  signal?: AbortSignal;
}

export interface SandboxedRunResult {
  /** Why it ended: `exited` (see exitCode) or a limit Warden enforced. */
  reason: SandboxEndReason;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Which streams were cut at maxOutputBytes. */
  truncated: { stdout: boolean; stderr: boolean };
  durationMs: number;
  cpuMs?: number;
  exit: SandboxExit;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;

/**
 * Starts `spec`, feeds `stdin`, collects bounded output and waits for the end (never rejects after
 * the start). Throws `options.signal`'s reason when it aborted before the start.
 */
export async function runSandboxed(spec: OsSandboxSpecInput, options: SandboxedRunOptions = {}): Promise<SandboxedRunResult> {
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const { signal } = options;
  signal?.throwIfAborted();
  const run = await startSandboxedProcess(spec, options.egressGate === undefined ? {} : { egressGate: options.egressGate });
  // Aborted while the sandbox was being set up: the kill goes to what was started.
  const stop = () => void run.kill('killed');
  if (signal?.aborted === true) stop();
  else signal?.addEventListener('abort', stop, { once: true });
  const stdout = boundedCollector(max);
  const stderr = boundedCollector(max);
  run.stdout.on('data', stdout.push);
  run.stderr.on('data', stderr.push);
  run.stdin.end(options.stdin ?? '');
  const exit = await run.exited.finally(() => signal?.removeEventListener('abort', stop));
  const err = stderr.text();
  return {
    reason: exit.reason,
    exitCode: exit.exitCode,
    stdout: stdout.text(),
    // A setup failure's message is on the sandbox's stderr: keep it even if the program wrote nothing.
    stderr: err,
    truncated: { stdout: stdout.truncated(), stderr: stderr.truncated() },
    durationMs: exit.durationMs,
    ...(exit.cpuMs === undefined ? {} : { cpuMs: exit.cpuMs }),
    exit,
  };
}

function boundedCollector(max: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  return {
    push: (chunk: Buffer) => {
      if (size >= max) {
        cut = true;
        return;
      }
      const room = max - size;
      if (chunk.length > room) cut = true;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(kept);
      size += kept.length;
    },
    // A cut may split a UTF-8 sequence: the decoder replaces the partial character.
    text: () => Buffer.concat(chunks).toString('utf8'),
    truncated: () => cut,
  };
}
