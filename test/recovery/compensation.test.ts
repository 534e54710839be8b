import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';
import { createSqlCapability } from '../../sandbox/capabilities/sql-capability';
import { compensationFor, CompensationSchema, overlayCompensation, type Compensation } from '../../recovery/compensation';
import { journalPathOf } from '../../recovery/recovery-paths';
import { runCompensation } from '../../recovery/run-compensation';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { makeTempDir, read, treeOf, writeTree } from './recovery-test-kit';

describe('compensationFor', () => {
  it.each([
    ['fs.read', 'read-only', true, 0],
    ['fs.list', 'read-only', true, 0],
    ['sql.query', 'read-only', true, 0],
    ['fs.write', 'overlay', true, 0],
    ['http.fetch', 'cannot be undone', false, 0],
  ])('%s: %s', (tool, note, undoable, count) => {
    const plan = compensationFor(tool, { any: 'output' }, { callId: 'c1' });
    expect(plan.note).toContain(note);
    expect(plan.undoable).toBe(undoable);
    expect(plan.compensations).toHaveLength(count);
  });

  it('sql.exec: an sql-undo of the call id when journaled', () => {
    expect(compensationFor('sql.exec', { changes: 2, table: 't', rowsChanged: 2, callId: 'c1' }, { callId: 'c1', journaled: true }).compensations).toEqual([
      { kind: 'sql-undo', callId: 'c1', forTool: 'sql.exec' },
    ]);
    expect(compensationFor('sql.exec', { changes: 0, table: 't', rowsChanged: 0, callId: 'c1' }, { callId: 'c1', journaled: true })).toMatchObject({
      compensations: [],
      note: 'changed no rows',
    });
    expect(compensationFor('sql.exec', { changes: 2 }, { callId: 'c1' })).toMatchObject({ compensations: [], undoable: false });
  });

  it('a user tool with compensate: runs that tool with the original call', () => {
    const plan = compensationFor('book-flight', { booking: 'B42' }, { callId: 'wf:3', args: { to: 'LIS' }, compensate: 'cancel-flight', capabilities: ['http.fetch'] });
    expect(plan).toEqual({
      compensations: [
        {
          kind: 'tool',
          tool: 'cancel-flight',
          forTool: 'book-flight',
          callId: 'wf:3',
          input: { compensationId: 'cancel-flight:wf:3', original: { tool: 'book-flight', args: { to: 'LIS' }, output: { booking: 'B42' } } },
        },
      ],
      undoable: true,
      note: 'undone by its compensating tool cancel-flight',
    });
    expect(CompensationSchema.parse(plan.compensations[0])).toEqual(plan.compensations[0]);
  });

  it('a user tool without compensate: what its capabilities imply', () => {
    expect(compensationFor('report', 'ok', { callId: 'c', capabilities: ['fs.read', 'fs.write'] })).toMatchObject({ compensations: [], undoable: true });
    expect(compensationFor('sync', 'ok', { callId: 'c', capabilities: ['sql.exec'], journaled: true })).toMatchObject({
      compensations: [{ kind: 'sql-undo', callId: 'c', forTool: 'sync' }],
      undoable: true,
    });
    expect(compensationFor('notify', 'ok', { callId: 'c', capabilities: ['http.fetch'] })).toMatchObject({ compensations: [], undoable: false });
  });
});

describe('runCompensation', () => {
  let stateDir: string;
  let workspace: string;
  let dbFile: string;
  const taskKey = 'saga-test';

  beforeEach(() => {
    stateDir = makeTempDir('saga-state');
    workspace = makeTempDir('saga-ws');
    writeTree(workspace, { 'a.txt': 'a' });
    dbFile = path.join(stateDir, 'shop.db');
    const db = new Database(dbFile);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('one'), ('two');");
    db.close();
  });

  afterEach(() => {
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(workspace, { recursive: true, force: true });
  });

  const rowsOf = () => {
    const db = new Database(dbFile, { readonly: true });
    try {
      return db.prepare('SELECT id, v FROM t ORDER BY id').all();
    } finally {
      db.close();
    }
  };

  it('unwinds a task in reverse order, each step idempotent', async () => {
    const overlay = await openOverlay({ stateDir, taskKey, workspace });
    const journal = journalPathOf(stateDir, taskKey);
    const registered: Compensation[] = [overlayCompensation(taskKey)];
    const calls: { tool: string; input: unknown }[] = [];

    createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: overlay.upper }).write('a.txt', 'changed');
    const grant = (callId: string) => ({ databases: { shop: dbFile }, query: true, exec: true, journal, callId });
    const r1 = createSqlCapability(grant('wf:1')).exec('shop', "UPDATE t SET v = 'uno' WHERE id = 1");
    registered.push(...compensationFor('sql.exec', r1, { callId: 'wf:1', journaled: true }).compensations);
    registered.push(...compensationFor('book', { id: 7 }, { callId: 'wf:2', compensate: 'unbook', args: {} }).compensations);
    const r3 = createSqlCapability(grant('wf:3')).exec('shop', 'DELETE FROM t');
    registered.push(...compensationFor('sql.exec', r3, { callId: 'wf:3', journaled: true }).compensations);

    const deps = { stateDir, taskKey, runTool: async (tool: string, input: unknown) => void calls.push({ tool, input }) };
    const outcomes = [];
    for (const compensation of [...registered].reverse()) outcomes.push(await runCompensation(compensation, deps));
    expect(outcomes.map((o) => `${o.kind}:${o.status}`)).toEqual(['sql-undo:done', 'tool:done', 'sql-undo:done', 'fs-overlay-discard:done']);
    expect(rowsOf()).toEqual([
      { id: 1, v: 'one' },
      { id: 2, v: 'two' },
    ]);
    expect(treeOf(workspace)).toEqual({ 'a.txt': 'a' });
    expect(calls).toEqual([{ tool: 'unbook', input: { compensationId: 'unbook:wf:2', original: { tool: 'book', args: {}, output: { id: 7 } } } }]);

    // A retried activity runs them again: nothing happens twice.
    const again = [];
    for (const compensation of [...registered].reverse()) again.push(await runCompensation(compensation, deps));
    expect(again.map((o) => o.status)).toEqual(['already-done', 'already-done', 'already-done', 'nothing-to-do']);
    expect(calls).toHaveLength(1);
  });

  it('fs-overlay-discard also rolls back a commit interrupted halfway', async () => {
    const overlay = await openOverlay({ stateDir, taskKey, workspace });
    createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: overlay.upper }).write('b.txt', 'new');
    await expect(
      commitOverlay({
        stateDir,
        taskKey,
        workspace,
        onProgress: (e) => {
          if (e.stage === 'file-replaced') throw new Error('crash');
        },
      }),
    ).rejects.toThrow('crash');
    expect(read(workspace, 'b.txt')).toBe('new');
    const outcome = await runCompensation(overlayCompensation(taskKey), { stateDir, taskKey });
    expect(outcome).toMatchObject({ status: 'done', detail: expect.stringContaining('rolled back') });
    expect(treeOf(workspace)).toEqual({ 'a.txt': 'a' });
  });

  it('a failing compensating tool is ERR_COMPENSATION_FAILED (retryable) and is not recorded as done', async () => {
    const [compensation] = compensationFor('book', {}, { callId: 'x', compensate: 'unbook' }).compensations;
    let attempts = 0;
    const runTool = async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('downstream unavailable');
    };
    await expect(runCompensation(compensation!, { stateDir, taskKey, runTool })).rejects.toMatchObject({ code: 'ERR_COMPENSATION_FAILED', retryable: true });
    expect(await runCompensation(compensation!, { stateDir, taskKey, runTool })).toMatchObject({ status: 'done' });
    expect(attempts).toBe(2);
  });

  it('an undo conflict keeps its code (ERR_ROLLBACK_CONFLICT)', async () => {
    const journal = journalPathOf(stateDir, taskKey);
    createSqlCapability({ databases: { shop: dbFile }, query: true, exec: true, journal, callId: 'c' }).exec('shop', "UPDATE t SET v = 'x' WHERE id = 1");
    const db = new Database(dbFile);
    db.prepare("UPDATE t SET v = 'someone else' WHERE id = 1").run();
    db.close();
    await expect(runCompensation({ kind: 'sql-undo', callId: 'c', forTool: 'sql.exec' }, { stateDir, taskKey })).rejects.toMatchObject({ code: 'ERR_ROLLBACK_CONFLICT' });
  });
});
