/**
 * Vitest setup file: runs in each vitest worker before each test file. Test files run in
 * parallel (vitest.config.ts), so what one file writes must not reach another mid-test:
 * - each worker has its own state folder, `.warden-test/pool-<VITEST_POOL_ID>` (TEST_STATE_DIR), in
 *   which `temporal/` (the run's embedded server record, written by global-setup.ts) and `cache/`
 *   (workflow bundles, written atomically) link to `.warden-test/`'s: every file's `warden`
 *   children find the run's server as their own, as they did with one shared folder;
 * - commands the tests run (`warden run`, `warden mcp serve`) use a task queue of this worker's
 *   own, so two files' `warden run` workers never take each other's tasks.
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach } from 'vitest';
// Not warden-test-env: it loads Warden's modules, which a test file that mocks them must load first.
import { REPO_ROOT, TEST_STATE_DIR } from './test-state-dir';

const SHARED = join(REPO_ROOT, '.warden-test');

mkdirSync(TEST_STATE_DIR, { recursive: true, mode: 0o700 });
for (const name of ['temporal', 'cache']) {
  mkdirSync(join(SHARED, name), { recursive: true });
  try {
    symlinkSync(join('..', name), join(TEST_STATE_DIR, name));
  } catch (error) {
    // An earlier file of this worker id (this run's or an earlier run's) made it.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

const poolId = process.env.VITEST_POOL_ID ?? '1';
const runQueue = process.env.WARDEN_TEST_RUN_TASK_QUEUE ?? process.env.WARDEN_TASK_QUEUE;
if (runQueue !== undefined) {
  process.env.WARDEN_TEST_RUN_TASK_QUEUE = runQueue;
  process.env.WARDEN_TASK_QUEUE = `${runQueue}-pool-${poolId}`;
}

// A test that times out leaves what it waited on behind: name it, so a rare hang in a full run
// (seen once in recovery-cli.test.ts, never reproduced alone) says where to look next time.
beforeEach((context) => {
  context.onTestFailed(({ task }) => {
    const timedOut = (task.result?.errors ?? []).some((error) => /timed out/i.test(String(error?.message ?? '')));
    if (!timedOut) return;
    process.stderr.write(`warden test: "${task.name}" (${task.file?.name ?? '?'}) timed out; still pending in this test process: ${pendingResources()}\n`);
  });
});

/** `process.getActiveResourcesInfo()` counted by kind, e.g. `FSReqCallback x2, Timeout x1`. */
function pendingResources(): string {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${kind} x${n}`).join(', ') || 'nothing';
}
