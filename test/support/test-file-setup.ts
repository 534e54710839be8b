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
import { mkdirSync, symlinkSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, TEST_STATE_DIR } from './warden-test-env';

const SHARED = join(REPO_ROOT, '.warden-test');

mkdirSync(TEST_STATE_DIR, { recursive: true, mode: 0o700 });
for (const name of ['temporal', 'cache']) {
  mkdirSync(join(SHARED, name), { recursive: true });
  const link = join(TEST_STATE_DIR, name);
  try {
    lstatSync(link);
  } catch {
    try {
      symlinkSync(join('..', name), link);
    } catch (error) {
      // Another file of this worker id made it first (an earlier run's worker, same id).
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

const poolId = process.env.VITEST_POOL_ID ?? '1';
const runQueue = process.env.WARDEN_TEST_RUN_TASK_QUEUE ?? process.env.WARDEN_TASK_QUEUE;
if (runQueue !== undefined) {
  process.env.WARDEN_TEST_RUN_TASK_QUEUE = runQueue;
  process.env.WARDEN_TASK_QUEUE = `${runQueue}-pool-${poolId}`;
}
