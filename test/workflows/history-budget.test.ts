/**
 * Histories that stay under Temporal's limits on the original loop (issue 12 item 4): a task
 * whose history would pass the server's hard limit ends itself with ERR_HISTORY_LIMIT while its
 * saga still fits, and rolls back, instead of being terminated by the server with no
 * compensation and no result. The server's limit is lowered for the task through the start
 * input's `flow` (as a server configured with lower limits would be told); on the old code the
 * same task ran on until the server's limit.
 */
import { Worker } from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { historyBudgetReason, TEMPORAL_HISTORY_BYTES_LIMIT, TEMPORAL_HISTORY_EVENT_LIMIT } from '../../workflows/history-budget';
import { workflowBundle } from '../../worker/workflow-bundle';
import { makeNotesWorkspace } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

describe('historyBudgetReason: when a run must end to keep room for its saga', () => {
  const MiB = 1024 * 1024;
  const cases: [string, { events: number; bytes: number; compensations: number }, { maxHistoryEvents?: number; maxHistoryBytes?: number }, RegExp | undefined][] = [
    ['a young run', { events: 100, bytes: 100_000, compensations: 3 }, {}, undefined],
    ['just under the default event room', { events: TEMPORAL_HISTORY_EVENT_LIMIT - 1_000 - 6 * 10 - 1, bytes: MiB, compensations: 10 }, {}, undefined],
    ['at the default event room', { events: TEMPORAL_HISTORY_EVENT_LIMIT - 1_000 - 6 * 10, bytes: MiB, compensations: 10 }, {}, /has 50140 events.*limit of 51200/],
    ['many compensations take room', { events: 40_000, bytes: MiB, compensations: 2_000 }, {}, /2000 compensations/],
    ['past the limit already', { events: 60_000, bytes: MiB, compensations: 0 }, {}, /ERR_HISTORY_LIMIT/],
    ['at the default size room', { events: 1_000, bytes: TEMPORAL_HISTORY_BYTES_LIMIT - 4 * MiB, compensations: 0 }, {}, /bytes.*limit of 52428800 bytes/],
    ['just under the default size room', { events: 1_000, bytes: TEMPORAL_HISTORY_BYTES_LIMIT - 4 * MiB - 1, compensations: 0 }, {}, undefined],
    ['a lower server limit keeps a quarter as room', { events: 150, bytes: 10_000, compensations: 0 }, { maxHistoryEvents: 200 }, /limit of 200/],
    ['under a lower server limit', { events: 149, bytes: 10_000, compensations: 0 }, { maxHistoryEvents: 200 }, undefined],
    ['a lower size limit', { events: 10, bytes: 200_000, compensations: 1 }, { maxHistoryBytes: 256 * 1024 }, /limit of 262144 bytes/],
  ];
  it.each(cases)('%s', (_what, use, options, expected) => {
    const reason = historyBudgetReason(use, options);
    if (expected === undefined) expect(reason).toBeUndefined();
    else {
      expect(reason).toMatch(expected);
      expect(reason).toMatch(/^ERR_HISTORY_LIMIT: .*dataFlow: true/);
    }
  });
});

describe('the original loop ends itself before the history limit', () => {
  let env: WardenTestEnv;
  beforeAll(async () => {
    env = await startWardenTestEnv();
  });
  afterAll(async () => env?.close());

  /** 60 writes and inserts, then a final answer: far more history than a 300-event limit holds. */
  function longTask(workspace: string, dbFile: string) {
    const script: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      script.push({ tool: 'fs.write', args: { path: `f${i}.txt`, content: `file ${i}` } });
      script.push({ tool: 'sql.exec', args: { database: 'app', sql: `INSERT INTO notes (body) VALUES ('row ${i}')` } });
    }
    script.push({ final: 'all written' });
    return parseTask(
      {
        user: 'dana@example.com',
        intent: 'write sixty notes',
        agent: { name: 'long-writer', model: { driver: 'scripted', script } },
        tools: { builtin: ['fs.write', 'sql.exec'] },
        grants: { tools: ['fs.write', 'sql.exec'], databases: ['app'] },
        limits: { maxSteps: 100, toolTimeout: '60s', deadline: '15m' },
        resources: { workspace, databases: { app: dbFile } },
      },
      'history-budget-task.yaml',
      REPO_ROOT,
    );
  }

  it('a task that would pass the server limit stops with ERR_HISTORY_LIMIT, rolls back, and is not terminated', { timeout: 300_000 }, async () => {
    const { workspace, dbFile, rows } = await makeNotesWorkspace('warden-history-budget-');
    const workflowId = `history-budget-${Date.now()}`;
    const maxHistoryEvents = 300;
    const handle = await env.client.workflow.start('agentTask', {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{ task: longTask(workspace, dbFile), flow: { maxHistoryEvents } }],
    });
    const result = await followAgentTask(handle);
    expect(result.status).toBe('limit_exceeded');
    expect(result.reason).toMatch(/^ERR_HISTORY_LIMIT: the task's history has \d+ events/);
    // It stopped part-way and undid what it had done: no file committed, no row left.
    expect(result.steps.length).toBeGreaterThan(0);
    expect(result.steps.length).toBeLessThan(60);
    expect(result.recovery?.committed).toBeUndefined();
    expect(result.recovery?.rolledBack.some((r) => r.kind === 'sql-undo' && r.status === 'done')).toBe(true);
    await expect(readFile(join(workspace, 'f0.txt'))).rejects.toThrow();
    expect(rows()).toBe(0);
    // The workflow closed itself (a task that did not complete closes as failed, carrying its
    // result), within the limit it was given: the server did not terminate it.
    const description = await handle.describe();
    expect(description.status.name).toBe('FAILED');
    const history = await handle.fetchHistory();
    const closing = history.events!.at(-1)!;
    expect(closing.workflowExecutionFailedEventAttributes?.failure?.message).toMatch(/ERR_HISTORY_LIMIT/);
    expect(history.events!.length).toBeLessThan(maxHistoryEvents);
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  });

  it('the same task under the default limits completes and commits everything', { timeout: 300_000 }, async () => {
    const { workspace, dbFile, rows } = await makeNotesWorkspace('warden-history-budget-ok-');
    const result = await followAgentTask(await env.start(longTask(workspace, dbFile), `history-budget-ok-${Date.now()}`));
    expect(result.status).toBe('completed');
    expect(await readFile(join(workspace, 'f29.txt'), 'utf8')).toBe('file 29');
    expect(rows()).toBe(30);
  });
});
