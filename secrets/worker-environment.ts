/**
 * Where a key is looked for: the worker's environment, which is `warden run`'s shell's only when
 * the run has its own worker (a newcomer set the key in the shell while a standalone worker, started
 * without it, ran the task, and read "not set").
 */
export const WHOSE_ENVIRONMENT = `in the environment of the worker that ran the call (pid ${process.pid}); a standalone \`warden worker\` has the environment it was started with, not the shell's of \`warden run\` (start it with the variable set, or run with --worker)`;
