/** Process exit codes of the `warden` CLI. */
export const EXIT = {
  /** The task completed (or the command succeeded). */
  ok: 0,
  /** The task ended in any state other than completed, or the command failed. */
  failed: 1,
  /** Bad usage or a bad task file: nothing was started. */
  usage: 2,
} as const;
