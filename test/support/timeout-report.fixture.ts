// Not a test of its own (no .test.ts): test/support-timeout-report.test.ts runs it through vitest.
import { readFile } from 'node:fs/promises';
import { it } from 'vitest';

it('waits past its timeout', async () => {
  void readFile('/proc/self/status');
  await new Promise((resolve) => setTimeout(resolve, 60_000));
}, 300);
