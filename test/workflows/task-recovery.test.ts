/**
 * Blast radius and recovery in real runs: file writes stay in the task's overlay until it
 * completes, SQL changes are journaled, and a task that does not complete is rolled back by its
 * compensations, newest first. A completed task can still be rolled back afterwards.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, beforeAll, expect, it } from 'vitest';
import { rollbackCommand } from '../../cli/commands/rollback';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let workspace: string;
let dbFile: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

beforeEach(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'warden-recovery-'));
  await writeFile(join(workspace, 'plan.txt'), 'original plan');
  dbFile = join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, qty INTEGER); INSERT INTO orders (item, qty) VALUES (\'tea\', 1), (\'cake\', 2), (\'jam\', 3);');
  db.close();
});

const rows = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return db.prepare('SELECT id, item, qty FROM orders ORDER BY id').all();
  } finally {
    db.close();
  }
};

function task(script: unknown[], extra: Record<string, unknown> = {}) {
  return {
    user: 'erin@example.com',
    intent: 'tidy the orders',
    agent: { name: 'clerk', model: { driver: 'scripted', script } },
    tools: { builtin: ['fs.read', 'fs.write', 'sql.exec', 'sql.query'] },
    grants: { tools: ['fs.read', 'fs.write', 'sql.exec', 'sql.query'], databases: ['shop'] },
    resources: { workspace, databases: { shop: dbFile } },
    ...extra,
  };
}

const ORIGINAL_ROWS = [
  { id: 1, item: 'tea', qty: 1 },
  { id: 2, item: 'cake', qty: 2 },
  { id: 3, item: 'jam', qty: 3 },
];

it('keeps writes virtual until the task completes, then commits them; rollback restores the workspace and the rows', async () => {
  const result = await env.runTask(
    task([
      { tool: 'fs.write', args: { path: 'plan.txt', content: 'new plan' } },
      { tool: 'fs.read', args: { path: 'plan.txt' } },
      { tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE qty > 1' } },
      { final: 'tidied' },
    ]),
  );
  expect(result.status).toBe('completed');
  // The agent saw its own write through the overlay.
  expect(result.steps[1]?.output).toBe('new plan');
  expect(result.steps[2]?.output).toMatchObject({ changes: 2 });
  expect(result.recovery?.committed).toEqual(['plan.txt']);
  expect(await readFile(join(workspace, 'plan.txt'), 'utf8')).toBe('new plan');
  expect(rows()).toEqual([{ id: 1, item: 'tea', qty: 1 }]);

  const out: string[] = [];
  const code = await rollbackCommand([result.workflowId], { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } });
  expect(code, out.join('')).toBe(0);
  expect(await readFile(join(workspace, 'plan.txt'), 'utf8')).toBe('original plan');
  expect(rows()).toEqual(ORIGINAL_ROWS);
});

it('rolls back every effect, newest first, when a denied action stops the task', async () => {
  const result = await env.runTask(
    task(
      [
        { tool: 'fs.write', args: { path: 'plan.txt', content: 'hijacked' } },
        { tool: 'sql.exec', args: { database: 'shop', sql: "UPDATE orders SET qty = 0 WHERE item = 'tea'" } },
        { tool: 'sql.exec', args: { database: 'shop', sql: "DELETE FROM orders WHERE item = 'jam'" } },
        { tool: 'http.fetch', args: { url: 'https://attacker.example/' } },
        { final: 'never' },
      ],
    ),
  );
  expect(result.status).toBe('denied');
  expect(result.recovery?.rolledBack.map((r) => [r.kind, r.forTool ?? null, r.status])).toEqual([
    ['sql-undo', 'sql.exec', 'done'],
    ['sql-undo', 'sql.exec', 'done'],
    ['fs-overlay-discard', null, 'done'],
  ]);
  // The later change is undone before the earlier one.
  // Call keys name the run, the step and what the call is (recovery/call-key.ts).
  const key = (step: number) => expect.stringMatching(new RegExp(`^${result.workflowId}:${result.runId}:${step}:[0-9a-f]{32}$`));
  expect(result.recovery?.rolledBack.map((r) => r.callId)).toEqual([key(2), key(1), undefined]);
  expect(await readFile(join(workspace, 'plan.txt'), 'utf8')).toBe('original plan');
  expect(rows()).toEqual(ORIGINAL_ROWS);
});

it('runs a user tool\'s declared compensating tool when the task fails', async () => {
  const result = await env.runTask(
    task([{ tool: 'reserve', args: { item: 'tea' } }, { tool: 'sql.query', args: { database: 'shop', sql: 'SELECT nope FROM orders' } }], {
      tools: {
        builtin: ['sql.exec', 'sql.query'],
        custom: [
          {
            name: 'reserve',
            description: 'reserves an item',
            capabilities: ['sql.exec'],
            compensate: 'release',
            source: "return warden.sql.exec('shop', 'UPDATE orders SET qty = qty - 1 WHERE item = ?', [input.item]);",
          },
          {
            name: 'release',
            description: 'undoes a reservation',
            capabilities: ['sql.exec'],
            source: "return warden.sql.exec('shop', 'UPDATE orders SET qty = qty + 100 WHERE item = ?', [input.original.args.item]);",
          },
        ],
      },
      // The tools' sql.exec capability must be granted like the built-in itself.
      grants: { tools: ['reserve', 'release', 'sql.query', 'sql.exec'], databases: ['shop'] },
    }),
  );
  // The script runs out after a failing query: the task fails and is compensated.
  expect(result.status).toBe('failed');
  expect(result.recovery?.rolledBack[0]).toMatchObject({ kind: 'tool', forTool: 'reserve', status: 'done' });
  // qty: 1 - 1 (reserve) + 100 (release) — the compensating tool ran exactly once.
  expect(rows()[0]).toEqual({ id: 1, item: 'tea', qty: 100 });
});

it('restores the pre-task snapshot when compensation alone cannot undo an effect', async () => {
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => res.end('noted'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    // The HTTP request cannot be undone, so with `snapshot: true` the rollback also puts the
    // workspace and the database back to the pre-task snapshot.
    const result = await env.runTask(
      task(
        [
          { tool: 'sql.exec', args: { database: 'shop', sql: "UPDATE orders SET qty = 9 WHERE item = 'cake'" } },
          { tool: 'http.fetch', args: { url: `http://127.0.0.1:${port}/notify`, method: 'POST', body: 'cake=9' } },
          { tool: 'fs.write', args: { path: '../outside.txt', content: 'x' } },
          { spawn: 'nobody' },
        ],
        {
          // The URL comes from the user, so the foundation pack does not hold the fetch for approval.
          intent: `tidy the orders and tell http://127.0.0.1:${port}/notify`,
          snapshot: true,
          tools: { builtin: ['fs.write', 'sql.exec', 'http.fetch'] },
          grants: { tools: ['fs.write', 'sql.exec', 'http.fetch'], databases: ['shop'], hosts: [`127.0.0.1:${port}`] },
          resources: { workspace, databases: { shop: dbFile }, hosts: [`127.0.0.1:${port}`] },
        },
      ),
    );
    expect(result.status).toBe('denied');
    expect(result.steps[1]).toMatchObject({ tool: 'http.fetch', executed: true, output: { status: 200 } });
    expect(result.recovery?.notUndoable).toEqual(['#1 http.fetch: an HTTP request cannot be undone']);
    expect(result.recovery?.restoredSnapshot).toBe(true);
    expect(rows()).toEqual(ORIGINAL_ROWS);
    expect(await readFile(join(workspace, 'plan.txt'), 'utf8')).toBe('original plan');
  } finally {
    server.close();
  }
});
