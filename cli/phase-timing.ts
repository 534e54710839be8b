/**
 * `WARDEN_TIMING=1`: one stderr line per start-up phase of a command, in milliseconds since the
 * process started (`performance.now()`, whose origin is the process's start), so where
 * `warden run`'s time goes can be read off one run. Silent (and free) otherwise.
 *
 * Lines look like `warden timing:   1234.5 ms  cpu    980 ms (main thread    720 ms)  worker: sandbox
 * host ready`; they go to stderr, so `--json` output on stdout stays one JSON object. The CPU
 * figures (user + system since the process started: all its threads, and the main thread alone
 * where /proc has it) say what a phase cost on a loaded machine, where wall time mostly says how
 * long it waited for a core; the main thread's is what runs serially before the task starts.
 */
import { readFileSync } from 'node:fs';
import { terminalWriter } from '../terminal-text';

const writeStderr = terminalWriter(process.stderr);

const enabled = (env: NodeJS.ProcessEnv = process.env): boolean => env.WARDEN_TIMING === '1';

/** Clock ticks per second of /proc/<pid>/task/<tid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU ms (user + system) of this process's main thread, from /proc; undefined without it. */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** The CPU columns of a timing line: the whole process's, and the main thread's where known. */
function cpuColumns(): string {
  const { user, system } = process.cpuUsage();
  const main = mainThreadCpuMs();
  return `cpu ${((user + system) / 1000).toFixed(0).padStart(6)} ms${main === undefined ? '' : ` (main thread ${main.toFixed(0).padStart(6)} ms)`}`;
}

/** Records that `phase` was reached now (when WARDEN_TIMING=1 in `env`, default process.env). */
export function markPhase(phase: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!enabled(env)) return;
  writeStderr(`warden timing: ${performance.now().toFixed(1).padStart(8)} ms  ${cpuColumns()}  ${phase}\n`);
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
