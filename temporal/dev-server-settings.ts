/**
 * The dynamic config the embedded dev server starts with (`temporal server start-dev
 * --dynamic-config-value key=value`): the settings a single-machine server needs where Temporal's
 * defaults assume a cluster.
 *
 * Why: Temporal's history service moves a workflow's tasks to the matching service (and so to a
 * worker) by reading each history shard's task queues from persistence, and each read waits on a
 * per-shard rate limiter, `history.<queue>ProcessorMaxPollRPS`, default 20 reads a second with a
 * burst of 20 (server `common/dynamicconfig/constants.go`, `service/history/queues/reader.go`).
 * A cluster spreads a namespace over hundreds of shards; `start-dev` has exactly one
 * (`NumHistoryShards = 1`, temporalio/cli `devserver/server.go`), so the whole server gets 20
 * transfer-queue reads a second. One agent step needs two of them (the activity task, then the
 * workflow task that takes its result), so once the burst is spent every chain of steps on the
 * server was paced at 100 ms a step, whatever the worker did: measured (bare Temporal workflow,
 * one activity a step) 98 ms a cycle with 35-42 ms of each dispatch, against 20-41 ms and 3-7 ms
 * with these values. A dev server's one shard is the whole server, so it gets the reads a
 * cluster's namespace would: 1,000 a second, still a bound on a runaway loop.
 */

/** Key → value of each setting; values are JSON (numbers become ints, as start-dev converts them). */
export const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, number>> = Object.freeze({
  // Activity and workflow tasks, child workflows, signals and cancels to other workflows.
  'history.transferProcessorMaxPollRPS': 1000,
  // Timers, retries' backoff, timeouts firing.
  'history.timerProcessorMaxPollRPS': 1000,
  // Search attributes and status reaching `warden` list commands and the web UI.
  'history.visibilityProcessorMaxPollRPS': 1000,
});

/** `--dynamic-config-value key=value` flags for `temporal server start-dev`, one pair per setting. */
export function startDevDynamicConfigFlags(): string[] {
  return Object.entries(DEV_SERVER_DYNAMIC_CONFIG).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]);
}

/**
 * The `key=value` settings a running server's command line (`argv`, e.g. `/proc/<pid>/cmdline`
 * split on NUL) lacks: a server started by an older Warden keeps its old settings until restarted.
 */
export function missingDevServerSettings(argv: readonly string[]): string[] {
  const given = new Set(argv.filter((_, i) => i > 0 && argv[i - 1] === '--dynamic-config-value'));
  return Object.entries(DEV_SERVER_DYNAMIC_CONFIG)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .filter((setting) => !given.has(setting));
}
