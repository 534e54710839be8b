import { defineConfig } from 'vitest/config';

/** The reproductions of open findings only (test/attacks/open/README.md): each fails while its finding is open. */
export default defineConfig({
  test: {
    include: ['test/attacks/open/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/test-file-setup.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
