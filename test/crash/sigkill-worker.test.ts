/**
 * Crash safety with real processes: a `warden worker` is SIGKILLed in the middle of a task, at
 * several points; a new worker picks the task up. The task either completes or rolls back fully,
 * and no effect is applied twice (each tool call carries an idempotency key).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { replayCommand } from '../../cli/commands/replay';
import { parseTask } from '../../task/load-task-file';
import type { TaskState } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { taskStateQuery } from '../../workflows/definitions';
import { testTemporalAddress } from '../support/temporal';
import { collectOutput, waitForOutput } from '../support/child-output';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import type { Client, Connection } from '@temporalio/client';

let client: Client;
let connection: Connection;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  const { address, namespace } = testTemporalAddress();
  ({ client, connection } = await connectClient({ ...loadTemporalConfig({}), address, namespace }));
});
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await connection?.close();
});

async function startWorker(taskQueue: string): Promise<ChildProcess> {
  const { address, namespace } = testTemporalAddress();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'worker', '--task-queue', taskQueue], {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: TEST_STATE_DIR },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  workers.push(child);
  // Awaited as an event (rejects with the worker's output if it exits first).
  await waitForOutput(child, collectOutput(child), 'stderr', 'worker polling');
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function setup() {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-crash-'));
  const dbFile = join(workspace, 'ledger.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter (id, n) VALUES (1, 0);');
  db.close();
  await writeFile(join(workspace, 'status.txt'), 'before');
  const counter = () => {
    const d = new Database(dbFile, { readonly: true });
    try {
      return (d.prepare('SELECT n FROM counter WHERE id = 1').get() as { n: number }).n;
    } finally {
      d.close();
    }
  };
  const task = parseTask(
    {
      user: 'ops@example.com',
      intent: 'bump the counter and record it',
      agent: {
        name: 'bumper',
        model: {
          driver: 'scripted',
          script: [{ tool: 'bump', args: {} }, { tool: 'fs.write', args: { path: 'status.txt', content: 'after' } }, { tool: 'pause', args: {} }, { final: 'bumped' }],
        },
      },
      tools: {
        builtin: ['fs.write', 'sql.exec'],
        custom: [
          {
            name: 'bump',
            description: 'adds one, then works a while',
            capabilities: ['sql.exec'],
            // The change commits first; the worker is killed while the tool is still busy.
            source: "const r = warden.sql.exec('ledger', 'UPDATE counter SET n = n + 1 WHERE id = 1'); const end = Date.now() + 1500; while (Date.now() < end) {} return r;",
          },
          { name: 'pause', description: 'works a while', source: 'const end = Date.now() + 1500; while (Date.now() < end) {} return "ok";' },
        ],
      },
      // bump's sql.exec capability is granted like the built-in itself.
      grants: { tools: ['bump', 'fs.write', 'pause', 'sql.exec'], databases: ['ledger'] },
      limits: { toolTimeout: '3s' },
      resources: { workspace, databases: { ledger: dbFile } },
    },
    'crash-task.yaml',
    REPO_ROOT,
  );
  return { workspace, counter, task };
}

/** The task's result; on a stall, fails with the last history events so the cause is visible. */
async function resultOf(handle: Parameters<typeof followAgentTask>[0]) {
  const stall = new Promise<never>((_, reject) =>
    setTimeout(async () => {
      const history = await handle.fetchHistory().catch(() => undefined);
      const last = (history?.events ?? []).slice(-8).map((e) => `${String(e.eventId)} ${String(e.eventType)}`);
      reject(new Error(`task ${handle.workflowId} stalled; last events: ${last.join(', ')}`));
    }, 100_000).unref(),
  );
  return Promise.race([followAgentTask(handle), stall]);
}

/** Polls the running task until `predicate` holds for its state (the test's timeout bounds it). */
async function waitForState(handle: { query: (q: typeof taskStateQuery) => Promise<TaskState> }, predicate: (s: TaskState) => boolean): Promise<void> {
  for (;;) {
    try {
      if (predicate(await handle.query(taskStateQuery))) return;
    } catch {
      // no worker to answer yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `condition` holds, checking every few milliseconds (the test's timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 25));
}

describe('SIGKILL of the worker', () => {
  it('mid-tool, after its SQL change committed: the retried call is not applied twice and the task completes', async () => {
    const { workspace, counter, task } = await setup();
    const taskQueue = `warden-crash-${randomUUID()}`;
    let worker = await startWorker(taskQueue);
    const handle = await startAgentTask(client, task, { taskQueue });
    // The bump's UPDATE has committed once the counter moves; the tool is then still busy.
    await until(() => counter() > 0);
    expect(counter()).toBe(1);
    await kill(worker);
    worker = await startWorker(taskQueue);
    const result = await resultOf(handle);
    expect(result.status).toBe('completed');
    expect(counter()).toBe(1);
    expect(result.steps[0]?.output).toMatchObject({ changes: 1 });
    expect(await readFile(join(workspace, 'status.txt'), 'utf8')).toBe('after');
    await kill(worker);

    // The custody ledger agrees with the history after the crash: the killed attempt left no
    // record of a completed call, and whatever a crash lost is re-derived from history.
    const { address } = testTemporalAddress();
    const io = (out: string[]) => ({
      stdout: (t: string) => out.push(t),
      stderr: (t: string) => out.push(t),
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() },
    });
    const repair: string[] = [];
    expect(await replayCommand([handle.workflowId, '--repair'], io(repair)), repair.join('')).toBe(0);
    const check: string[] = [];
    expect(await replayCommand([handle.workflowId], io(check)), check.join('')).toBe(0);
  }, 150_000);

  it('between steps, with a file write still in the overlay: the task completes and commits once', async () => {
    const { workspace, counter, task } = await setup();
    const taskQueue = `warden-crash-${randomUUID()}`;
    let worker = await startWorker(taskQueue);
    const handle = await startAgentTask(client, task, { taskQueue });
    // After the write, and after the next model turn answered: the kill then lands in the next
    // step's short tool call (retried after its 13 s timeout), not in a model call in flight,
    // whose 2-minute timeout would outlast this test's patience.
    await waitForState(handle, (s) => s.steps.length >= 2 && s.steps[1]!.executed && s.turn >= 3);
    await kill(worker);
    // The write is not real yet: it waits in the overlay for the task to complete.
    expect(await readFile(join(workspace, 'status.txt'), 'utf8')).toBe('before');
    worker = await startWorker(taskQueue);
    const result = await resultOf(handle);
    expect(result.status).toBe('completed');
    expect(result.recovery?.committed).toEqual(['status.txt']);
    expect(counter()).toBe(1);
    expect(await readFile(join(workspace, 'status.txt'), 'utf8')).toBe('after');
    await kill(worker);
  }, 150_000);

  it('then cancelled while no worker runs: the restarted worker rolls everything back', async () => {
    const { workspace, counter, task } = await setup();
    const taskQueue = `warden-crash-${randomUUID()}`;
    let worker = await startWorker(taskQueue);
    const handle = await startAgentTask(client, task, { taskQueue });
    await waitForState(handle, (s) => s.steps.length >= 3);
    await kill(worker);
    await handle.cancel();
    worker = await startWorker(taskQueue);
    const result = await resultOf(handle);
    expect(result.status).toBe('cancelled');
    expect(result.recovery?.rolledBack.map((r) => [r.kind, r.status])).toEqual([
      ['sql-undo', 'done'],
      ['fs-overlay-discard', 'done'],
    ]);
    expect(counter()).toBe(0);
    expect(await readFile(join(workspace, 'status.txt'), 'utf8')).toBe('before');
    await kill(worker);
  }, 150_000);
});
