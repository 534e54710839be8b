/**
 * Exactly-once is keyed by the run and by what the call is, not by workflow id and step: a task
 * started again under a reused workflow id runs its own statements (the reproduced example: the
 * second run reported the first run's `{"changes":5}` and its own UPDATE never ran).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callKeyOf } from '../../recovery/call-key';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

describe('callKeyOf (property)', () => {
  const call = fc.record({
    workflowId: fc.string({ minLength: 1, maxLength: 20 }),
    runId: fc.uuid(),
    stepIndex: fc.nat(1000),
    tool: fc.constantFrom('sql.exec', 'fs.write', 'custom-tool'),
    args: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })),
  });

  it('is the same for the same call, whatever the order of its argument members', () => {
    fc.assert(
      fc.property(call, (c) => {
        const reordered = { ...c, args: Object.fromEntries(Object.entries(c.args).reverse()) };
        expect(callKeyOf(reordered)).toBe(callKeyOf(c));
      }),
    );
  });

  it('differs when the run, the step, the tool or the arguments differ', () => {
    fc.assert(
      fc.property(call, call, (a, b) => {
        const same = a.workflowId === b.workflowId && a.runId === b.runId && a.stepIndex === b.stepIndex && a.tool === b.tool && JSON.stringify(Object.entries(a.args).sort()) === JSON.stringify(Object.entries(b.args).sort());
        if (!same) expect(callKeyOf(a)).not.toBe(callKeyOf(b));
      }),
    );
    const base = { workflowId: 'w', runId: 'r1', stepIndex: 0, tool: 'sql.exec', args: { database: 'd', sql: 'UPDATE t SET v = 1' } };
    for (const changed of [{ runId: 'r2' }, { stepIndex: 1 }, { tool: 'sql.query' }, { args: { database: 'd', sql: 'UPDATE t SET v = 2' } }, { args: { ...base.args, params: [1] } }]) {
      expect(callKeyOf({ ...base, ...changed })).not.toBe(callKeyOf(base));
    }
  });
});

describe('a reused workflow id', () => {
  let env: WardenTestEnv;
  let dbFile: string;

  beforeAll(async () => {
    env = await startWardenTestEnv();
    dbFile = join(mkdtempSync(join(tmpdir(), 'warden-call-keys-')), 'shop.db');
    const db = new Database(dbFile);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)');
    for (let i = 1; i <= 8; i++) db.prepare('INSERT INTO items (v) VALUES (?)').run('new');
    db.close();
  });
  afterAll(async () => env?.close());

  const updateTask = (sql: string) => ({
    user: 'alice@example.com',
    intent: 'update the items',
    agent: { name: 'clerk', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'shop', sql } }, { final: 'updated' }] } },
    tools: { builtin: ['sql.exec'] },
    grants: { tools: ['sql.exec'], databases: ['shop'] },
    resources: { databases: { shop: dbFile } },
  });

  it("runs the second task's own statement and reports its own result", async () => {
    const workflowId = `test-reused-${Date.now()}`;
    const first = await env.runTask(updateTask("UPDATE items SET v = 'first' WHERE id <= 5"), { workflowId });
    expect(first.status).toBe('completed');
    expect(first.steps[0]?.output).toMatchObject({ changes: 5 });
    const second = await env.runTask(updateTask("UPDATE items SET v = 'second' WHERE id = 8"), { workflowId });
    expect(second.status).toBe('completed');
    expect(second.runId).not.toBe(first.runId);
    expect(second.steps[0]?.output).toMatchObject({ changes: 1 });
    const db = new Database(dbFile, { readonly: true });
    expect(db.prepare('SELECT v FROM items WHERE id = 8').get()).toEqual({ v: 'second' });
    expect((db.prepare("SELECT count(*) AS n FROM items WHERE v = 'first'").get() as { n: number }).n).toBe(5);
    db.close();
  });
});
