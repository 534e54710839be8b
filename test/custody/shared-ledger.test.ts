import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerSpanExporter, LedgerSpanProcessor } from '../../custody/ledger-span-exporter';
import { loadLedgerSnapshot } from '../../custody/ledger-snapshot';
import { publishedCustodyKeys, SharedCustodyLedger } from '../../custody/shared-ledger';
import { trustedKeysFromJwks, verifyLedger } from '../../custody/verify-ledger';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const WORKER = join(__dirname, 'fixtures', 'shared-append-worker.ts');
const dirs: string[] = [];
let pg: TestDatabase;

beforeAll(async () => {
  pg = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-shared-ledger-'));
  dirs.push(dir);
  return dir;
}

async function clear(): Promise<void> {
  await pg.db.exec("DELETE FROM warden_custody_records; DELETE FROM warden_custody_checkpoints; DELETE FROM warden_public_keys; UPDATE warden_custody_head SET tree_size = 0, tail_hash = '" + '0'.repeat(64) + "', subtree_roots = '[]'");
}

interface WorkerResult {
  label: string;
  kid: string;
  seqs: number[];
}

function startWorker(label: string, count: number, batch: number): { ready: Promise<void>; go(): void; done: Promise<WorkerResult> } {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), WORKER, pg.url, stateDir(), label, String(count), String(batch)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) markReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const done = new Promise<WorkerResult>((resolve, reject) => {
    child.on('exit', (code) => {
      markReady();
      if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length)) as WorkerResult);
      else reject(new Error(`worker ${label} exited ${code}: ${err}`));
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), done };
}

async function verifyShared(): Promise<ReturnType<typeof verifyLedger>> {
  const snapshot = await loadLedgerSnapshot(pg.db, join(stateDir(), 'no-keys'));
  return verifyLedger(snapshot, { trustedKeys: trustedKeysFromJwks(await publishedCustodyKeys(pg.db)) });
}

describe('the shared custody ledger (PostgreSQL)', () => {
  it('keeps one chain when two worker processes with their own keys append at once; the database serialises them', async () => {
    await clear();
    const COUNT = 150;
    const workers = [startWorker('a', COUNT, 7), startWorker('b', COUNT, 3)];
    await Promise.all(workers.map((w) => w.ready));
    for (const worker of workers) worker.go();
    const [a, b] = await Promise.all(workers.map((w) => w.done));
    expect(a!.kid).not.toBe(b!.kid);
    const all = [...a!.seqs, ...b!.seqs].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 2 * COUNT }, (_, i) => i));
    // Interleaved, not one after the other: the test really exercised contention.
    expect(Math.min(...b!.seqs)).toBeLessThan(Math.max(...a!.seqs));
    const report = await verifyShared();
    expect(report).toMatchObject({ ok: true, totalRecords: 2 * COUNT });
    expect(report.checkpoints).toBeGreaterThanOrEqual((2 * COUNT) / 25);
    expect(report.uncheckpointed).toBe(0);
  }, 120_000);

  it('returns the stored record for a key appended again, checkpoints only when something is new, and finds records by task and trace', async () => {
    await clear();
    const ledger = SharedCustodyLedger.open({ db: pg.db, keyDir: join(stateDir(), 'custody-keys'), workerId: 'w1', checkpointEvery: 0 });
    const [first] = await ledger.appendMany([{ recordKey: 'trace-1:span-1', taskId: 'task-1', workflowId: 'task-1', kind: 'span', body: { traceId: 'trace-1', name: 'x' } }]);
    expect(first).toMatchObject({ appended: true, record: { seq: 0 } });
    const again = await ledger.append({ recordKey: 'trace-1:span-1', taskId: 'other', workflowId: 'other', kind: 'span', body: { traceId: 'trace-1', name: 'changed' } });
    expect(again).toMatchObject({ appended: false, record: { seq: 0, taskId: 'task-1', body: { name: 'x' } } });
    const checkpoint = await ledger.checkpoint('task-1');
    expect(checkpoint).toMatchObject({ treeSize: 1, reason: 'task-end', taskId: 'task-1' });
    expect(await ledger.checkpoint()).toEqual(checkpoint);
    expect(await ledger.taskIdOfTrace('trace-1')).toBe('task-1');
    expect(await ledger.records({ taskId: 'task-1' })).toHaveLength(1);
    expect(await ledger.size()).toBe(1);
    await expect(ledger.appendMany([{ recordKey: '', taskId: 't', workflowId: 't', kind: 'event', body: {} }])).rejects.toThrow(TypeError);
  });

  it('shows a record changed in the database as tampering', async () => {
    await clear();
    const ledger = SharedCustodyLedger.open({ db: pg.db, keyDir: join(stateDir(), 'custody-keys'), workerId: 'w1', checkpointEvery: 5 });
    for (let i = 0; i < 12; i += 1) await ledger.append({ recordKey: `k${i}`, taskId: 't', workflowId: 't', kind: 'event', body: { i } });
    expect((await verifyShared()).ok).toBe(true);
    await pg.db.run(`UPDATE warden_custody_records SET body = '{"i":99}' WHERE seq = 7`);
    expect((await verifyShared()).firstProblem).toMatchObject({ seq: 7, kind: 'changed' });
  });

  it('receives spans by group commit: end() only queues, flush() makes them durable, a task end checkpoints', async () => {
    await clear();
    const ledger = SharedCustodyLedger.open({ db: pg.db, keyDir: join(stateDir(), 'custody-keys'), workerId: 'w1', checkpointEvery: 0 });
    const heads: number[] = [];
    const exporter = new LedgerSpanExporter({
      ledger,
      commit: 'group',
      isTaskEnd: (span) => span.name === 'task',
      onCheckpoint: (checkpoint) => {
        heads.push(checkpoint.treeSize);
      },
    });
    expect(() => new LedgerSpanExporter({ ledger })).toThrow(/group/);
    const tracer = new BasicTracerProvider({ resource: new Resource({ 'service.name': 't' }), spanProcessors: [new LedgerSpanProcessor(exporter)] }).getTracer('t');
    for (let i = 0; i < 20; i += 1) tracer.startSpan(`step ${i}`, { attributes: { [WARDEN_ATTR.taskId]: 'task-g' } }).end();
    tracer.startSpan('task', { attributes: { [WARDEN_ATTR.taskId]: 'task-g' } }).end();
    expect(await ledger.size()).toBe(0);
    await exporter.flush();
    expect(await ledger.size()).toBe(21);
    expect(heads).toEqual([21]);
    expect((await ledger.records({ taskId: 'task-g' })).map((r) => (r.body as { name: string }).name)).toEqual([...Array.from({ length: 20 }, (_, i) => `step ${i}`), 'task']);
    expect((await verifyShared()).ok).toBe(true);
  });
});
