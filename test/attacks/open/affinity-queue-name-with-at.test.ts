/**
 * Attack (issue 12, data-plane affinity on the original loop): a worker's data-plane queue is
 * `<taskQueue>@<workerId>`, and nothing stops a shared task queue name from containing '@'. A
 * worker started with `--task-queue q@b` polls, as its SHARED queue, the private data-plane queue
 * of worker `b` on queue `q`: it takes tool calls and commits of tasks whose overlay is on `b`.
 *
 * Expected: a task queue name with '@' is refused when the worker starts (exit 2, naming it), or
 * the tasks on `q` still complete with every write. The fault: the worker starts and the tasks on
 * `q` fail (their calls ran on a worker that does not hold their overlay).
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
import { fixture, insert, TwoWorkerKit, write } from './fixtures/two-worker-kit';

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

it("a shared queue named '<q>@<id>' is refused, or cannot take worker <id>'s data plane", async () => {
  await kit.startWorker('b');
  const squatter = await kit.startWorker('x', undefined, `${kit.taskQueue}@b`).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  if (squatter !== undefined) {
    expect(squatter.message).toMatch(/@/);
    return;
  }
  const TASKS = 6;
  const started = await Promise.all(
    Array.from({ length: TASKS }, async (_, i) => {
      const f = fixture(kit, `at${i}`);
      const doc = {
        user: 'ops@example.com',
        intent: `record run ${i}`,
        agent: { name: 'recorder', model: { driver: 'scripted', script: [write('a.txt', `a${i}`), insert(`t${i}`), write('b.txt', `b${i}`), write('c.txt', `c${i}`), { final: 'done' }] } },
        tools: { builtin: ['fs.write', 'sql.exec'] },
        grants: { tools: ['fs.write', 'sql.exec'], databases: ['ledger'] },
        limits: { toolTimeout: '60s', deadline: '10m' },
        resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
      };
      const handle = await startAgentTask(client, parseTask(doc, 'at.yaml', REPO_ROOT), { taskQueue: kit.taskQueue, workflowId: `attack-at-${i}-${randomUUID()}` });
      return { i, f, handle };
    }),
  );
  const outcomes: string[] = [];
  for (const { i, f, handle } of started) {
    const result = await followAgentTask(handle);
    outcomes.push(`${i}: ${result.status} ${result.reason ?? ''} files=${JSON.stringify(f.files())}`);
  }
  process.stderr.write(`'@' in a queue name:\n${outcomes.join('\n')}\n`);
  expect(outcomes.filter((o) => !o.includes(': completed '))).toEqual([]);
}, 900_000);
