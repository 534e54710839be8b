/**
 * Attack on issue 16's close-as-Failed: `warden cancel` (waiting, as by default) reads the
 * cancelled task's result with `handle.result()`. A cancelled task now closes as a Failed workflow
 * (`ERR_TASK_CANCELLED`, its result as the failure's detail), so the command must still return the
 * task's result (status `cancelled`, its compensations), not throw the workflow failure.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cancelTask } from '../../cli/commands/cancel';
import { parseTask } from '../../task/load-task-file';
import { taskStateQuery } from '../../workflows/definitions';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);

afterAll(async () => env?.close());

describe('warden cancel of a task that closes as Failed', () => {
  it('returns the cancelled task\'s result', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-cancel-'));
    const task = parseTask(
      {
        user: 'eve@example.com',
        intent: 'write a file, held for approval',
        agent: { name: 'held', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x.txt', content: 'hi' } }, { final: 'x' }] } },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        policies: ['never use fs.write without approval'],
        resources: { workspace },
      },
      'task.yaml',
      REPO_ROOT,
    );
    const handle = await env.start(task);
    await vi.waitFor(async () => expect((await handle.query(taskStateQuery)).pendingApprovals).toHaveLength(1), { timeout: 30_000, interval: 100 });
    const outcome = await cancelTask(env.client, handle.workflowId, { wait: true });
    expect(outcome).toMatchObject({ workflowId: handle.workflowId, requested: true, waited: true, result: { status: 'cancelled' } });
  });
});
