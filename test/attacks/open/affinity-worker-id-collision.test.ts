/**
 * Attack (issue 12, data-plane affinity on the original loop): two workers with separate state
 * folders are started with the same `WARDEN_WORKER_ID` (a copied configuration, a container image
 * with the id baked in). Both poll `<taskQueue>@<id>`, so a task's "own worker" queue is served by
 * two workers holding different overlays and keys.
 *
 * Expected: the second worker is refused at start (the id is taken by a live worker), or every
 * task still completes with every write. The fault: the second worker starts and tasks fail
 * (overlay split across the two, credential errors) or lose writes.
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

it('a second worker with a live worker\'s id is refused, or tasks keep every write', async () => {
  await kit.startWorker('twin');
  const second = await kit.startWorker('twin').then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  if (second !== undefined) {
    // Refused: it must say why.
    expect(second.message).toMatch(/twin/);
    return;
  }
  const TASKS = 8;
  const started = await Promise.all(
    Array.from({ length: TASKS }, async (_, i) => {
      const f = fixture(kit, `twin${i}`);
      const doc = {
        user: 'ops@example.com',
        intent: `record run ${i}`,
        agent: { name: 'recorder', model: { driver: 'scripted', script: [write('a.txt', `a${i}`), insert(`t${i}`), write('b.txt', `b${i}`), write('c.txt', `c${i}`), { final: 'done' }] } },
        tools: { builtin: ['fs.write', 'sql.exec'] },
        grants: { tools: ['fs.write', 'sql.exec'], databases: ['ledger'] },
        limits: { toolTimeout: '60s', deadline: '10m' },
        resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
      };
      const handle = await startAgentTask(client, parseTask(doc, 'twin.yaml', REPO_ROOT), { taskQueue: kit.taskQueue, workflowId: `attack-twin-${i}-${randomUUID()}` });
      return { i, f, handle };
    }),
  );
  const outcomes: string[] = [];
  for (const { i, f, handle } of started) {
    const result = await followAgentTask(handle);
    outcomes.push(`${i}: ${result.status} ${result.reason ?? ''} files=${JSON.stringify(f.files())}`);
  }
  process.stderr.write(`twin ids:\n${outcomes.join('\n')}\n`);
  expect(outcomes.filter((o) => !o.includes(': completed '))).toEqual([]);
}, 900_000);
