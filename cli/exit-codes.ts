/** Process exit codes of the `warden` CLI. */
import type { ErrorCode } from '../errors';

export const EXIT = {
  /** The task completed (or the command succeeded). */
  ok: 0,
  /** The task ended in any state other than completed, or the command failed. */
  failed: 1,
  /** Bad usage or a bad task file: nothing was started. */
  usage: 2,
} as const;

/**
 * The exit code of a command that failed with a Warden error `error`: 2 (usage) for an error in
 * what the user gave ({@link USAGE_ERROR_CODES}: TEMPORAL_NAMESPACE is configuration, like a bad
 * task file; an approver key file, the signing key file, a task results file), else `otherwise` (default 1).
 */
export function exitCodeOfError(error: { code: string }, otherwise: number = EXIT.failed): number {
  return USAGE_ERROR_CODES.has(error.code as ErrorCode) ? EXIT.usage : otherwise;
}

/**
 * Errors that mean what the user gave is wrong, whichever command meets them: a namespace the
 * server does not have, an approver key that is missing or not a key file, a
 * `WARDEN_SIGNING_KEY_FILE` that cannot be used, a `--from` results file that holds no task
 * results, a file to write that cannot be written there (`--out`, `--export`), a file to read that
 * cannot be read. Each exits 2, as a bad flag or file does (`warden kill` exited 1 on a missing key where
 * `approve` and `console` exit 2; `warden worker` and `warden baseline learn --from` exited 1 on a
 * bad file of theirs).
 */
const USAGE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ERR_TEMPORAL_NAMESPACE_NOT_FOUND', 'ERR_APPROVER_INVALID', 'ERR_SIGNING_KEY_FILE_INVALID', 'ERR_TASK_RESULTS_FILE_INVALID', 'ERR_WORKFLOW_ID_INVALID', 'ERR_OUTPUT_FILE_INVALID', 'ERR_INPUT_FILE_UNREADABLE']);

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;
/** The signals that stop a task-running command as Ctrl-C does, with their exit codes (128 + the signal's number). */
export const INTERRUPT_EXIT_CODES = { SIGINT: EXIT_INTERRUPTED, SIGTERM: 143, SIGHUP: 129 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_EXIT_CODES;
