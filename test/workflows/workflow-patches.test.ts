/**
 * `patched()` is asked only in the workflow's first activation (workflows/workflow-patches.ts).
 * Asked later, the original run and a replay from scratch can place the question in different
 * workflow tasks (a slow local activity makes the server start a new one), and the replay fails
 * with "patch marker encountered ... but there is no corresponding change command". This scans
 * every workflow module so a new `patched()` call elsewhere fails here, before it fails in
 * production on a worker restart.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const WORKFLOWS = join(REPO_ROOT, 'workflows');

describe('workflow patches', () => {
  it('are decided only in workflow-patches.ts', () => {
    const offenders = readdirSync(WORKFLOWS)
      .filter((f) => f.endsWith('.ts') && f !== 'workflow-patches.ts')
      .filter((f) => /\b(patched|deprecatePatch)\s*\(/.test(readFileSync(join(WORKFLOWS, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('are decided before anything else the run sets up uses them', () => {
    const agentRun = readFileSync(join(WORKFLOWS, 'agent-run.ts'), 'utf8');
    const decided = agentRun.indexOf('decidePatches(');
    expect(decided).toBeGreaterThan(0);
    for (const user of ['new TaskSaga(', 'new ApprovalGate(']) expect(agentRun.indexOf(user)).toBeGreaterThan(decided);
  });
});
