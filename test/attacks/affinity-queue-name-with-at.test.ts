/**
 * Attack (issue 12, data-plane affinity on the original loop), fixed: a worker's data-plane queue
 * is `<taskQueue>@<workerId>`, and nothing stopped a shared task queue name from containing '@':
 * a worker started with `--task-queue q@b` polled, as its SHARED queue, the private data-plane
 * queue of worker `b` on `q` (6 of 6 tasks on `q` failed `ERR_OVERLAY_MISSING`).
 *
 * Now every task queue name a user gives (`warden worker|run|mcp serve --task-queue`,
 * `WARDEN_TASK_QUEUE`, `startAgentTask`'s `taskQueue`, `createWardenWorker`'s) goes through one
 * schema (dataplane/worker-naming.ts): '@' is refused with exit 2 naming it; the table below
 * covers the class (empty, too long, spaces, control characters, non-ASCII).
 */
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { connectClient } from '../../temporal/connect';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { testTemporalConfig, testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import { TwoWorkerKit } from './fixtures/two-worker-kit';

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

it("a worker whose shared queue is '<q>@<id>' is refused at start (exit 2, naming '@'), so it cannot poll worker <id>'s data plane", async () => {
  await kit.startWorker('b');
  const squatter = await kit.startWorker('x', undefined, `${kit.taskQueue}@b`).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  expect(squatter?.message).toMatch(/exited 2/);
  expect(squatter?.message).toMatch(/--task-queue ".*@b" holds '@', which separates a task queue from a worker id/);
  expect(squatter?.message).not.toContain('worker polling');
}, 600_000);

async function cli(argv: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const port = testTemporalAddress().address.split(':').pop()!;
  const io: CliIo = { stdout: () => undefined, stderr: (t) => void (stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, ...extraEnv } };
  return { code: await main(argv, io), stderr };
}

// Each bad name, and the words the error must hold.
const BAD_NAMES: [string, string, RegExp][] = [
  ["'@' (another worker's data-plane queue)", 'q@b', /holds '@'/],
  ['a trailing @', 'q@', /holds '@'/],
  ['empty', '', /is empty/],
  ['longer than 200 characters', 'q'.repeat(201), /longer than 200 characters/],
  ['a space', 'my queue', /printable ASCII characters, without spaces/],
  ['a control character', 'q\tx', /printable ASCII/],
  ['non-ASCII', 'file-d’attente', /printable ASCII/],
];

describe('every task queue name a user gives is checked by the same rules', () => {
  for (const [what, name, words] of BAD_NAMES) {
    it(`${what}: warden worker/run/mcp serve --task-queue, WARDEN_TASK_QUEUE and startAgentTask refuse it`, async () => {
      for (const argv of [['worker', '--task-queue', name], ['run', 'examples/hello.yaml', '--task-queue', name], ['mcp', 'serve', 'examples/hello.yaml', '--task-queue', name]]) {
        const { code, stderr } = await cli(argv);
        expect([argv[0], code]).toEqual([argv[0], 2]);
        if (name === '') {
          // Every option given an empty value is refused by the option parser, before the name's own check (cli/parse-command-args.ts).
          expect(stderr).toMatch(/option --task-queue needs a value \(it was given an empty one\)/);
        } else {
          expect(stderr).toMatch(/ERR_CONFIG_INVALID: --task-queue/);
          expect(stderr).toMatch(words);
        }
      }
      if (name.trim() !== '') {
        for (const argv of [['worker'], ['run', 'examples/hello.yaml']]) {
          const { code, stderr } = await cli(argv, { WARDEN_TASK_QUEUE: name });
          expect([argv[0], code]).toEqual([argv[0], 2]);
          expect(stderr).toMatch(/ERR_CONFIG_INVALID: WARDEN_TASK_QUEUE/);
          expect(stderr).toMatch(words);
        }
      }
      const task = parseTask({ user: 'ops@example.com', intent: 'x', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'done' }] } } }, 'q.yaml', REPO_ROOT);
      const error = await startAgentTask(client, task, { taskQueue: name, workflowId: `attack-at-api-${randomUUID()}` }).then(() => undefined, (e: unknown) => e as Error & { code?: string });
      expect(error?.code).toBe('ERR_CONFIG_INVALID');
      expect(error?.message).toMatch(words);
    }, 120_000);
  }
});
