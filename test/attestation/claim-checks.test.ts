/**
 * The pure halves of claim verification: the count query a `sql.count` claim compiles to (run on
 * a real SQLite database, with hostile identifiers and values), and `tool.called` decided on the
 * recorded steps of a task tree.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ClaimSchema } from '../../attestation/claim-schema';
import { compileCountQuery } from '../../attestation/sql-count-query';
import { findToolCall } from '../../attestation/tool-called';
import type { StepRecord, TaskResult } from '../../task/task-run';

function db() {
  const d = new Database(':memory:');
  d.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, note TEXT);
          CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('s');`);
  const insert = d.prepare('INSERT INTO items (name, qty, note) VALUES (?, ?, ?)');
  for (let i = 1; i <= 10; i++) insert.run(`item-${i}`, i, i % 2 === 0 ? null : 'odd');
  return d;
}

describe('sql.count queries', () => {
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['no condition', {}, 10],
    ['equality', { name: 'item-3' }, 1],
    ['comparison', { qty: { gt: 7 } }, 3],
    ['two conditions', { qty: { gte: 2 }, note: null }, 5],
    ['not null', { note: { ne: null } }, 5],
    ['in', { qty: { in: [1, 2, 99] } }, 2],
    ['empty in', { qty: { in: [] } }, 0],
    ['like', { name: { like: 'item-1%' } }, 2],
    ['a value that looks like SQL', { name: "x' OR '1'='1" }, 0],
  ];
  it.each(cases)('%s', (_name, where, expected) => {
    const claim = ClaimSchema.parse({ kind: 'sql.count', database: 'app', table: 'items', where, equals: 0 });
    if (typeof claim === 'string' || claim.kind !== 'sql.count') throw new Error('not a sql.count claim');
    const { sql, params } = compileCountQuery(claim.table, claim.where);
    expect((db().prepare(sql).get(...params) as { n: number }).n).toBe(expected);
  });

  it.each([
    ['items; DROP TABLE items', {}],
    ['items" UNION SELECT count(*) FROM secrets --', {}],
    ['items', { 'qty) OR (1': 1 }],
    ['items', { qty: { gt: 1, lt: 5 } }],
    ['items', { qty: { between: [1, 2] } }],
  ])('a claim with table %j and condition %j is refused before any SQL is made', (table, where) => {
    expect(ClaimSchema.safeParse({ kind: 'sql.count', database: 'app', table, where, equals: 1 }).success).toBe(false);
  });
});

function step(index: number, tool: string, args: Record<string, unknown>, extra: Partial<StepRecord> = {}): StepRecord {
  return { index, turn: 0, kind: 'tool', tool, args, decision: 'allow', reason: '', executed: true, startedAt: '', durationMs: 0, ...extra };
}

describe('tool.called', () => {
  const child: Pick<TaskResult, 'workflowId' | 'steps' | 'children'> = {
    workflowId: 'wf/kid-1',
    steps: [step(0, 'fs.write', { path: 'b.txt', content: 'x' })],
    children: [],
  };
  const tree = {
    workflowId: 'wf',
    steps: [
      step(0, 'fs.write', { path: 'a.txt', content: 'x' }, { decision: 'deny', executed: false }),
      step(1, 'fs.write', { path: 'c.txt', content: 'x' }, { error: { code: 'ERR_FS_FAILED', message: 'no' } }),
      step(2, 'sql.exec', { database: 'app', sql: 'DELETE FROM items', params: [] }),
    ],
    children: [child as TaskResult],
  };
  it.each([
    ['a call that ran', 'sql.exec', { sql: 'DELETE FROM items' }, 'wf#2'],
    ['a sub-agent call', 'fs.write', { path: 'b.txt' }, 'wf/kid-1#0'],
    ['a denied call', 'fs.write', { path: 'a.txt' }, undefined],
    ['a failed call', 'fs.write', { path: 'c.txt' }, undefined],
    ['other arguments', 'sql.exec', { sql: 'DELETE FROM other' }, undefined],
    ['nested values compared canonically', 'sql.exec', { params: [] }, 'wf#2'],
    ['a tool never called', 'http.fetch', {}, undefined],
  ])('%s', (_name, tool, args, at) => {
    expect(findToolCall(tree, tool, args).at).toBe(at);
  });
});
