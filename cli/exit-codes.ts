/** Process exit codes of the `warden` CLI. */
export const EXIT = {
  /** The task completed (or the command succeeded). */
  ok: 0,
  /** The task ended in any state other than completed, or the command failed. */
  failed: 1,
  /** Bad usage or a bad task file: nothing was started. */
  usage: 2,
} as const;

/**
 * The exit code of a command that failed with a Warden error `error`: 2 (usage) for a namespace
 * the Temporal server does not have (TEMPORAL_NAMESPACE is configuration, like a bad task file),
 * else `otherwise` (default 1).
 */
export function exitCodeOfError(error: { code: string }, otherwise: number = EXIT.failed): number {
  return error.code === 'ERR_TEMPORAL_NAMESPACE_NOT_FOUND' ? EXIT.usage : otherwise;
}

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;
/** The signals that stop a task-running command as Ctrl-C does, with their exit codes (128 + the signal's number). */
export const INTERRUPT_EXIT_CODES = { SIGINT: EXIT_INTERRUPTED, SIGTERM: 143, SIGHUP: 129 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_EXIT_CODES;
