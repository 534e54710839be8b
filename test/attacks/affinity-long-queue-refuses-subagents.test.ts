/**
 * Attack (issue 12, data-plane affinity on the original loop), fixed: the data-plane queue
 * `<taskQueue>@<workerId>` goes into a sub-agent's signed handoff, whose schema capped it at 300
 * characters, while nothing bounded `--task-queue` (Temporal allows 1000) or `WARDEN_WORKER_ID`
 * at start: a worker whose queue and id passed 300 characters ran root tasks, but refused every
 * sub-agent (`ERR_TASK_INPUT_INVALID: handoff.dataPlane.taskQueue: Too big`); a 300-character id
 * failed with a bare ENAMETOOLONG.
 *
 * Now one set of bounds (dataplane/worker-naming.ts): a task queue name of at most 200 characters,
 * a worker id of at most 128 of [A-Za-z0-9._-], and the handoff's cap derived from them (329). A
 * worker past either bound is refused at start, exit 2, naming it; a worker AT both bounds runs a
 * task with a sub-agent to completion. The table of names is in test/dataplane/worker-naming.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { TASK_QUEUE_NAME_MAX, WORKER_ID_MAX } from '../../dataplane/worker-naming';
import { parseTask } from '../../task/load-task-file';
import { connectClient } from '../../temporal/connect';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { testTemporalConfig } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
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

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as Error);

it('a worker whose task queue name is past the bound is refused at start, exit 2, naming the length', async () => {
  const error = await refusal(kit.startWorker('w-long', undefined, `${kit.taskQueue}-${'q'.repeat(260)}`));
  expect(error?.message).toMatch(/exited 2/);
  expect(error?.message).toMatch(/ERR_CONFIG_INVALID: --task-queue ".*"… \(320 characters\) is longer than 200 characters/);
}, 300_000);

it('a worker id past the bound is refused at start, exit 2, naming WARDEN_WORKER_ID (not a bare ENAMETOOLONG)', async () => {
  const error = await refusal(kit.startWorker('w'.repeat(300)));
  expect(error?.message).toMatch(/exited 2/);
  expect(error?.message).toMatch(/ERR_CONFIG_INVALID: WARDEN_WORKER_ID "w+"… \(300 characters\) is longer than 128 characters/);
  expect(error?.message).not.toContain('ENAMETOOLONG');
}, 300_000);

it('a worker at both bounds (a 200-character queue, a 128-character id) runs a task whose sub-agent completes', async () => {
  const taskQueue = `${kit.taskQueue}-`.padEnd(TASK_QUEUE_NAME_MAX, 'q');
  const id = 'i'.repeat(WORKER_ID_MAX);
  await kit.startWorker(id, undefined, taskQueue);
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
  expect([result.status, kid?.status, kid?.reason]).toEqual(['completed', 'completed', undefined]);
  expect(f.files()).toEqual({ 'a.txt': 'a', 'kid.txt': 'kid' });
}, 900_000);

it.each([
  ['too long', 'w'.repeat(129), /longer than 128 characters/],
  ["'@'", 'pod@7', /may hold only letters/],
  ['a slash', 'a/b', /may hold only letters/],
  ['unicode', 'pöd', /may hold only letters/],
])('a WARDEN_WORKER_ID with %s: warden worker, run and mcp serve exit 2 naming it, before anything starts', async (_what, id, words) => {
  for (const argv of [['worker'], ['run', 'examples/hello.yaml'], ['mcp', 'serve', 'examples/hello.yaml']]) {
    let stderr = '';
    const io: CliIo = { stdout: () => undefined, stderr: (t) => void (stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_WORKER_ID: id } };
    expect([argv[0], await main(argv, io)]).toEqual([argv[0], 2]);
    expect(stderr).toMatch(/ERR_CONFIG_INVALID: WARDEN_WORKER_ID "/);
    expect(stderr).toMatch(words);
  }
}, 120_000);
