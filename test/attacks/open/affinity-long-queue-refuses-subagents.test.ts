/**
 * Attack (issue 12, data-plane affinity on the original loop): the data-plane queue
 * `<taskQueue>@<workerId>` goes into a sub-agent's signed handoff, whose schema caps it at 300
 * characters; Temporal allows task queue names of up to 1000 and nothing bounds
 * `--task-queue` at start. A worker whose queue and id together pass 300 characters runs root tasks, but every sub-agent is refused (its handoff does not parse).
 *
 * Expected: such a worker is refused at start with a clear error naming the length, or a task
 * with a sub-agent completes. The fault: the worker starts, and the task fails.
 */
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followAgentTask, startAgentTask } from '../../../client/start-agent-task';
import { parseTask } from '../../../task/load-task-file';
import { connectClient } from '../../../temporal/connect';
import { createTestDatabase, type TestDatabase } from '../../support/postgres';
import { testTemporalConfig } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';
import { fixture, TwoWorkerKit, write } from './fixtures/two-worker-kit';

let pg: TestDatabase;
let kit: TwoWorkerKit;
let client: Client;
let connection: Connection;

beforeAll(async () => {
  pg = await createTestDatabase();
  kit = new TwoWorkerKit(pg);
  ({ client, connection } = await connectClient(testTemporalConfig()));
}, 300_000);

afterAll(async () => {
  await connection?.close();
  await kit?.close();
  await pg?.drop();
}, 120_000);

it('a worker whose data-plane queue is over 300 characters is refused at start, or its sub-agents run', async () => {
  // A long shared queue name (Temporal allows 1000 characters) and a short id.
  const taskQueue = `${kit.taskQueue}-${'q'.repeat(260)}`;
  const started = await kit.startWorker('w-long', undefined, taskQueue).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  if (started !== undefined) {
    expect(started.message).toMatch(/WARDEN_WORKER_ID|worker id|task queue/i);
    return;
  }
  const f = fixture(kit, 'long');
  const doc = {
    user: 'ops@example.com',
    intent: 'write with a sub-agent',
    agent: { name: 'boss', model: { driver: 'scripted', script: [write('a.txt', 'a'), { spawn: 'kid' }, { final: 'done' }] } },
    tools: { builtin: ['fs.write'] },
    grants: { tools: ['fs.write'], subagents: ['kid'] },
    limits: { toolTimeout: '60s', deadline: '10m' },
    resources: { workspace: f.workspace },
    subagents: {
      kid: {
        intent: 'write kid.txt',
        agent: { name: 'kid', model: { driver: 'scripted', script: [write('kid.txt', 'kid'), { final: 'kid done' }] } },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
      },
    },
  };
  const handle = await startAgentTask(client, parseTask(doc, 'long.yaml', REPO_ROOT), { taskQueue, workflowId: `attack-long-${randomUUID()}` });
  const result = await followAgentTask(handle);
  const kid = result.children[0] as { status: string; reason?: string } | undefined;
  process.stderr.write(`long queue: ${result.status} ${result.reason ?? ''}; kid ${kid?.status} ${kid?.reason ?? ''}; files ${JSON.stringify(f.files())}; steps ${JSON.stringify(result.steps.map((s) => [s.tool, s.error, s.output]))}\n`);
  expect([result.status, kid?.status, kid?.reason]).toEqual(['completed', 'completed', undefined]);
  expect(f.files()).toEqual({ 'a.txt': 'a', 'kid.txt': 'kid' });
}, 900_000);
