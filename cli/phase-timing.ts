/**
 * `WARDEN_TIMING=1`: one stderr line per start-up phase of a command, in milliseconds since the
 * process started (`performance.now()`, whose origin is the process's start), so where
 * `warden run`'s time goes can be read off one run. Silent (and free) otherwise.
 *
 * Lines look like `warden timing: 1234.5 ms  worker: sandbox host ready`; they go to stderr, so
 * `--json` output on stdout stays one JSON object.
 */
import { terminalWriter } from '../terminal-text';

const writeStderr = terminalWriter(process.stderr);

const enabled = (env: NodeJS.ProcessEnv = process.env): boolean => env.WARDEN_TIMING === '1';

/** Records that `phase` was reached now (when WARDEN_TIMING=1 in `env`, default process.env). */
export function markPhase(phase: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!enabled(env)) return;
  writeStderr(`warden timing: ${performance.now().toFixed(1).padStart(8)} ms  ${phase}\n`);
}

/** Runs `work` and records when it ended (with `phase`), passing its result or error through. */
export async function timedPhase<T>(phase: string, work: Promise<T>, env: NodeJS.ProcessEnv = process.env): Promise<T> {
  if (!enabled(env)) return work;
  try {
    return await work;
  } finally {
    markPhase(phase, env);
  }
}
