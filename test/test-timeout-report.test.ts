/**
 * The test setup (test/support/test-file-setup.ts) names what a timed-out test left pending, so a
 * rare hang in a full run can be traced: run through vitest itself on a fixture that times out.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from './support/test-state-dir';

function runFixture(fixture: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-timeout-report-'));
  try {
    const config = join(dir, 'vitest.config.mjs');
    writeFileSync(config, `export default { test: { root: ${JSON.stringify(REPO_ROOT)}, include: [${JSON.stringify(fixture)}], setupFiles: ['test/support/test-file-setup.ts'], pool: 'forks' } };\n`);
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', config], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
    return { status: run.status, stderr: `${run.stderr}${run.stdout}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('a test that times out is reported with what it left pending', () => {
  const run = runFixture('test/support/timeout-report.fixture.ts');
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(/warden test: "waits past its timeout" \(.*timeout-report\.fixture\.ts\) timed out; still pending in this test process: .*Timeout x\d/);
});
