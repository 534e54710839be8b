/**
 * Baselines and alerts in the state store, table-driven over PostgreSQL and the SQLite state
 * schema: what one worker writes another reads, recording is idempotent, queries filter by task
 * and time, and a row that does not parse is an error naming it, never an empty baseline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../monitoring/alert';
import { createAlertStore } from '../../monitoring/alert-store';
import { learnBaselines } from '../../monitoring/baseline';
import { createBaselineStore } from '../../monitoring/baseline-store';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import type { TaskResult } from '../../task/task-run';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;
let sqlite: SqlDatabase;
const dir = mkdtempSync(join(tmpdir(), 'warden-monitor-stores-'));
beforeAll(async () => {
  pg = await createTestDatabase();
  sqlite = openSqliteDatabase(join(dir, 'state.db'));
  await migrate(sqlite);
}, 120_000);
afterAll(async () => {
  await sqlite?.close();
  await pg?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const BACKENDS: [string, () => SqlDatabase][] = [
  ['PostgreSQL', () => pg.db],
  ['SQLite', () => sqlite],
];

function result(agent: string, tools: string[]): TaskResult {
  return {
    workflowId: `w-${agent}`,
    runId: 'r',
    agent,
    model: { id: 'm', version: '1' },
    depth: 0,
    status: 'completed',
    steps: tools.map((tool, index) => ({ index, turn: 0, kind: 'tool', tool, args: { url: 'https://api.example.com/' }, decision: 'allow', reason: 'ok', executed: true, output: 'x', startedAt: '2026-11-30T10:00:00.000Z', durationMs: 1 })),
    children: [],
    final: null,
  };
}

function alert(id: string, root: string, detectedAt: string, extra: Partial<Alert> = {}): Alert {
  return { id, rootWorkflowId: root, workflowId: root, runId: 'r', agent: 'clerk', user: 'u', source: 'monitor', score: 90, reasons: [{ signal: 'new-host', points: 70, detail: 'sends data to evil.example' }], rules: [], response: 'remediate', detectedAt, ...extra };
}

describe.each(BACKENDS)('on %s', (_name, db) => {
  it('baselines: put replaces per agent, get and list read them back, forget removes', async () => {
    const store = createBaselineStore(db());
    const first = learnBaselines([result('alpha', ['http.fetch']), result('beta', ['fs.read'])], '2026-11-30T00:00:00Z').baselines;
    await store.put(first, 'worker-1');
    expect((await store.get('alpha'))?.tools['http.fetch']?.hosts).toEqual(['api.example.com']);
    const again = learnBaselines([result('alpha', ['fs.read', 'fs.read'])], '2026-12-01T00:00:00Z').baselines;
    await store.put(again, 'worker-2');
    expect(Object.keys((await store.get('alpha'))!.tools)).toEqual(['fs.read']);
    expect((await store.list()).map((b) => b.agent)).toEqual(['alpha', 'beta']);
    expect(await store.remove('beta')).toBe(true);
    expect(await store.remove('beta')).toBe(false);
    expect(await store.get('beta')).toBeUndefined();
  });

  it('a baseline row that does not parse is ERR_MONITOR_RECORD_INVALID naming the agent', async () => {
    const store = createBaselineStore(db());
    await db().run("INSERT INTO warden_baselines (agent, tasks, baseline, learned_at, learned_by) VALUES ('broken', 1, '{\"version\":1}', 'x', 'y')");
    await expect(store.get('broken')).rejects.toMatchObject({ code: 'ERR_MONITOR_RECORD_INVALID', message: expect.stringContaining('agent broken') });
    // A row whose agent field names someone else is refused too (a copied row cannot stand in).
    const alpha = (await store.get('alpha'))!;
    await db().run("INSERT INTO warden_baselines (agent, tasks, baseline, learned_at, learned_by) VALUES ('impostor', 1, $1, 'x', 'y')", [JSON.stringify(alpha)]);
    await expect(store.get('impostor')).rejects.toMatchObject({ code: 'ERR_MONITOR_RECORD_INVALID' });
    await db().run("DELETE FROM warden_baselines WHERE agent IN ('broken', 'impostor')");
  });

  it('alerts: recorded once per id, newest first, by task and time, with their delivery', async () => {
    const store = createAlertStore(db());
    const root = `task-${Math.random().toString(36).slice(2)}`;
    await store.record(alert('a-1', root, '2026-11-30T10:00:00.000Z'));
    await store.record(alert('a-1', root, '2026-11-30T10:00:00.000Z', { score: 1 }));
    await store.record(alert('a-2', root, '2026-11-30T11:00:00.000Z', { workflowId: `${root}/helper-1`, response: 'alert' }));
    await store.record(alert('a-3', 'other-task', '2026-11-30T12:00:00.000Z'));
    await store.markDelivery('a-2', 'delivered');
    const mine = await store.list({ task: `${root}/helper-1` });
    expect(mine.map((a) => [a.id, a.score, a.delivery ?? null])).toEqual([
      ['a-2', 90, 'delivered'],
      ['a-1', 90, null],
    ]);
    expect((await store.list({ since: '2026-11-30T10:30:00.000Z' })).map((a) => a.id)).toEqual(['a-3', 'a-2']);
    expect((await store.list({ limit: 1 })).map((a) => a.id)).toEqual(['a-3']);
    await expect(store.record({ ...alert('a-4', root, 'x'), score: 500 })).rejects.toThrow();
  });
});
