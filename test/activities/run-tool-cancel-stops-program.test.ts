/**
 * A task that ends while its tool runs stops the tool then, not when the program chooses to end:
 * the `runTool` activity is cancelled (a workflow cancel requests it; a terminate reaches it as
 * its heartbeat finds the workflow gone), its cancellationSignal kills the program's sandboxed
 * tree, and the activity ends as cancelled. Before the fix the program ran to its end (or to
 * `toolTimeout`) and the activity then completed with its output, for a workflow long closed.
 *
 * Observed from the worker itself: an activity interceptor records how `runTool` ended and which
 * processes of the program were alive at that moment, read from /proc (no timing assertion; on
 * the old code the activity ends only when the program's sleep does, and completes).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { parseTask } from '../../task/load-task-file';
import { processesWith, runToolWatchInterceptor, until, watchRunToolOf } from '../support/run-tool-watch';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [runToolWatchInterceptor] });
});
afterAll(async () => {
  await env?.close();
});

describe('a task ended while its tool runs', () => {
  // The program outlives any wait for a heartbeat, and ends on its own well before the suite's timeout.
  const program = { 'proc.run': (marker: string) => ({ command: 'sh', args: ['-c', `sleep 120; : ${marker}`] }) };
  const cases = (['cancel', 'terminate'] as const).flatMap((how) => Object.keys(program).map((tool) => [how, tool] as const));

  it.each(cases)('stops the running program (%s, %s)', async (how, tool) => {
    const marker = `warden-cancel-${randomUUID()}`;
    const task = parseTask(
      {
        user: 'sam@example.com',
        intent: 'run a long program',
        agent: { name: 'runner', model: { driver: 'scripted', script: [{ tool, args: program[tool as keyof typeof program](marker) }, { final: 'done' }] } },
        tools: { builtin: [tool] },
        grants: { tools: [tool], commands: ['sh', 'sleep'] },
        limits: { toolTimeout: '900s' },
      },
      'cancel-run.yaml',
      REPO_ROOT,
    );
    const workflowId = `cancel-run-${how}-${randomUUID()}`;
    const ended = watchRunToolOf(workflowId, marker);
    const handle = await env.start(task, workflowId);
    await until(() => processesWith(marker).length > 0, 'the program started');
    if (how === 'cancel') {
      await handle.cancel();
      // The workflow still settles the cancelled task (its saga ran): it fails ERR_TASK_CANCELLED with its result.
      const failure = await handle.result().then(() => undefined, (error: unknown) => (error instanceof WorkflowFailedError ? error.cause : undefined));
      expect(failure instanceof ApplicationFailure ? { type: failure.type, status: (failure.details?.[0] as { status?: string } | undefined)?.status } : failure).toEqual({ type: 'ERR_TASK_CANCELLED', status: 'cancelled' });
    } else {
      await handle.terminate('operator');
    }
    const end = await ended;
    expect(end).toEqual({ outcome: 'failed', error: 'CancelledFailure', alive: [] });
    expect(processesWith(marker)).toEqual([]);
  }, 600_000);
});
