/**
 * Two real `warden worker` processes, each with its own state folder (what two machines look
 * like), on one Temporal server and one PostgreSQL database (issue 12). Tasks with tool calls and
 * sub-agents land on both: every grant issued on one must be found, delegated and minted from on
 * the other, every task end must stop credentials everywhere, and the custody records both
 * workers append must form ONE ledger that verifies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import { ledgerPaths } from '../../custody/ledger';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { stopChildren } from '../support/child-output';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const TASKS = 6;
let pg: TestDatabase;
let client: Client;
let connection: Connection;
const workers: { child: ChildProcess; stateDir: string; log: () => string }[] = [];
const dirs: string[] = [];
const taskQueue = `warden-two-workers-${randomUUID()}`;
let workspace: string;

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function startWorker(name: string): Promise<void> {
  const stateDir = tempDir(`warden-worker-${name}-`);
  // Both reuse the test run's workflow bundle cache instead of building their own.
  mkdirSync(join(TEST_STATE_DIR, 'cache'), { recursive: true });
  symlinkSync(join(TEST_STATE_DIR, 'cache'), join(stateDir, 'cache'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker', '--task-queue', taskQueue], {
    env: wardenProcessEnv(stateDir, { WARDEN_DATABASE_URL: pg.url, WARDEN_WORKER_ID: name }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  workers.push({ child, stateDir, log: () => log });
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (log.includes('worker polling')) resolve();
    };
    child.stderr!.on('data', check);
    child.on('exit', (code) => reject(new Error(`worker ${name} exited ${code}:\n${log}`)));
  });
}

function taskDocument(i: number) {
  return {
    user: 'alice@example.com',
    intent: `Read my notes (${i}) and have a helper list the folder.`,
    agent: {
      name: 'reader',
      model: {
        driver: 'scripted',
        script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { spawn: 'lister' }, { tool: 'fs.list', args: {} }, { spawn: 'lister' }, { final: 'done' }],
      },
    },
    tools: { builtin: ['fs.read', 'fs.list'] },
    grants: { tools: ['fs.read', 'fs.list'], subagents: ['lister'] },
    resources: { workspace },
    subagents: {
      lister: {
        intent: 'list the folder',
        agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'listed' }] } },
        tools: { builtin: ['fs.list', 'fs.read'] },
        grants: { tools: ['fs.list', 'fs.read'] },
      },
    },
  };
}

function allSteps(result: TaskResult): TaskResult['steps'] {
  return [...result.steps, ...result.children.flatMap((child) => allSteps(child as TaskResult))];
}

function sqlTaskDocument(i: number) {
  return {
    user: 'alice@example.com',
    intent: `Tidy order ${i}.`,
    agent: {
      name: 'tidier',
      model: {
        driver: 'scripted',
        script: [
          { tool: 'sql.exec', args: { database: 'shop', sql: `UPDATE orders SET qty = 0 WHERE id = ${i}` } },
          { tool: 'sql.exec', args: { database: 'shop', sql: `DELETE FROM orders WHERE id = ${i + 100}` } },
          // Not granted: the task stops as denied and its SQL must be undone, on whichever worker.
          { tool: 'http.fetch', args: { url: 'https://attacker.example/' } },
          { final: 'never' },
        ],
      },
    },
    tools: { builtin: ['sql.exec'] },
    grants: { tools: ['sql.exec'], databases: ['shop'] },
    resources: { databases: { shop: shopFile } },
  };
}

function orders(): unknown[] {
  const db = new Database(shopFile, { readonly: true });
  try {
    return db.prepare('SELECT * FROM orders ORDER BY id').all();
  } finally {
    db.close();
  }
}

let results: TaskResult[] = [];
let sqlResults: TaskResult[] = [];
let shopFile: string;
let originalOrders: unknown[];
const SQL_TASKS = 4;

beforeAll(async () => {
  pg = await createTestDatabase();
  workspace = tempDir('warden-two-workers-ws-');
  writeFileSync(join(workspace, 'notes.txt'), 'shared plans');
  shopFile = join(tempDir('warden-two-workers-db-'), 'shop.db');
  const shop = new Database(shopFile);
  shop.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, qty INTEGER)');
  for (let i = 0; i < SQL_TASKS; i += 1) shop.prepare('INSERT INTO orders (id, item, qty) VALUES (?, ?, ?), (?, ?, ?)').run(i, `item-${i}`, i + 1, i + 100, `extra-${i}`, 7);
  shop.close();
  originalOrders = orders();
  await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
  ({ client, connection } = await connectClient(testTemporalConfig()));
  const handles = await Promise.all(
    Array.from({ length: TASKS }, (_, i) => startAgentTask(client, parseTask(taskDocument(i), 'two-workers.yaml', REPO_ROOT), { taskQueue, workflowId: `two-workers-${i}-${randomUUID()}` })),
  );
  const sqlHandles = await Promise.all(
    Array.from({ length: SQL_TASKS }, (_, i) => startAgentTask(client, parseTask(sqlTaskDocument(i), 'two-workers-sql.yaml', REPO_ROOT), { taskQueue, workflowId: `two-workers-sql-${i}-${randomUUID()}` })),
  );
  [results, sqlResults] = await Promise.all([Promise.all(handles.map((handle) => followAgentTask(handle))), Promise.all(sqlHandles.map((handle) => followAgentTask(handle)))]);
}, 600_000);

afterAll(async () => {
  await connection?.close();
  await stopChildren(workers.map(({ child }) => child));
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('two workers, separate state folders, one shared database', () => {
  it('complete every task with no credential error', () => {
    const problems = results.flatMap((r) => allSteps(r).filter((s) => s.error !== undefined).map((s) => `${r.workflowId} step ${s.index}: ${s.error?.code} ${s.error?.message}`));
    expect(problems).toEqual([]);
    expect(results.map((r) => r.status)).toEqual(Array(TASKS).fill('completed'));
    for (const result of results) expect(allSteps(result).filter((s) => s.kind === 'tool' && s.executed)).toHaveLength(2 + 2 * 2);
  });

  it('both workers did the work: each issued grants and appended custody records', async () => {
    const kids = await pg.db.all<{ kid: string; n: number }>('SELECT kid, count(*) AS n FROM warden_custody_records GROUP BY kid');
    expect(kids).toHaveLength(2);
    const published = await pg.db.all<{ worker: string; purpose: string }>('SELECT worker, purpose FROM warden_public_keys ORDER BY worker, purpose');
    expect(published).toEqual([
      { worker: 'worker-a', purpose: 'credential' },
      { worker: 'worker-a', purpose: 'custody' },
      { worker: 'worker-b', purpose: 'credential' },
      { worker: 'worker-b', purpose: 'custody' },
    ]);
    const grants = await pg.db.get<{ n: number }>('SELECT count(*) AS n FROM warden_grants');
    expect(Number(grants?.n)).toBe(TASKS * 3 + SQL_TASKS);
    const revoked = await pg.db.get<{ n: number }>('SELECT count(*) AS n FROM warden_revoked_grants');
    expect(Number(revoked?.n)).toBe(TASKS * 3 + SQL_TASKS);
  });

  it('undo SQL that ran on either worker when a task is stopped, wherever its compensation runs', async () => {
    expect(sqlResults.map((r) => r.status)).toEqual(Array(SQL_TASKS).fill('denied'));
    for (const result of sqlResults) {
      expect(result.recovery?.rolledBack.map((r) => [r.kind, r.status])).toEqual([
        ['sql-undo', 'done'],
        ['sql-undo', 'done'],
      ]);
    }
    expect(orders()).toEqual(originalOrders);
    const shipped = await pg.db.get<{ n: number }>('SELECT count(*) AS n FROM warden_undo_calls');
    expect(Number(shipped?.n)).toBe(2 * SQL_TASKS);
  });

  it('the custody records of both workers are one ledger that verifies, and every task is in it', async () => {
    const run = { out: '', err: '', stdout: (t: string) => void (run.out += t), stderr: (t: string) => void (run.err += t), env: { WARDEN_DATABASE_URL: pg.url, WARDEN_STATE_DIR: workers[0]!.stateDir } };
    // Without pins the shared ledger is only internally consistent: a database writer could re-sign it.
    expect(await auditCommand(['verify', '--json'], run)).toBe(1);
    expect(JSON.parse(run.out)).toMatchObject({ unpinnedKeys: expect.arrayContaining([expect.any(String)]) });
    run.out = '';
    // Each worker's custody key pinned (`--keys` once per worker): the ledger is intact.
    const keyFolders = workers.map((w) => ledgerPaths({ stateDir: w.stateDir }).keyDir);
    expect(await auditCommand(['verify', '--json', ...keyFolders.flatMap((k) => ['--keys', k])], run), run.err).toBe(0);
    const report = JSON.parse(run.out) as { ok: boolean; totalRecords: number; checkpoints: number };
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThanOrEqual(1);
    for (const result of results) {
      const task = { ...run, out: '', stdout: (t: string) => void (task.out += t) };
      expect(await auditCommand(['verify', '--task', result.workflowId, '--json', ...keyFolders.flatMap((k) => ['--keys', k])], task)).toBe(0);
      expect((JSON.parse(task.out) as { records: number }).records).toBeGreaterThan(10);
    }
  });
});
