/**
 * Where a test process keeps Warden's state: light on purpose (node:path only), as the vitest setup
 * file (test-file-setup.ts) reads it before every test file, and a file that mocks Warden's
 * modules (vi.mock) must be the first to load them.
 */
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..');

/**
 * The state folder of this test process: one per vitest worker (`VITEST_POOL_ID`), since test
 * files run in parallel and each file's ledger, keys and records must not see another file's
 * writes mid-test (pool 1 outside vitest's pool). `test-file-setup.ts` makes it, with the run's
 * Temporal server record and workflow-bundle cache shared (`temporal`, `cache` link to `.warden-test/`).
 */
export const TEST_STATE_DIR = join(REPO_ROOT, '.warden-test', `pool-${process.env.VITEST_POOL_ID ?? '1'}`);
