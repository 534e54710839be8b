import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CustodyLedger } from '../../custody/ledger';
import { verifyLedger } from '../../custody/verify-ledger';
import { tempStateDir } from './fixtures/ledger-fixture';

const WORKER = join(__dirname, 'fixtures', 'append-worker.ts');

interface WorkerResult {
  label: string;
  kid: string;
  seqs: number[];
  startedAt: number;
  endedAt: number;
}

/** Starts a worker; `ready` resolves once its ledger is open, `go()` lets it append, `done` gives its summary. */
function startWorker(stateDir: string, label: string, count: number, every: number): { ready: Promise<void>; go(): void; done: Promise<WorkerResult> } {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), WORKER, stateDir, label, String(count), String(every)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
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
    child.on('error', reject);
    child.on('exit', (code) => {
      markReady();
      if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length)) as WorkerResult);
      else reject(new Error(`worker ${label} exited ${code}: ${err}`));
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), done };
}

let stateDir: string | undefined;
afterEach(() => {
  if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  stateDir = undefined;
});

describe('custody ledger across processes', () => {
  it('keeps one valid chain when three processes append at once (and agree on one signing key)', async () => {
    stateDir = tempStateDir();
    const COUNT = 300;
    // No ledger and no key exist yet: the processes also race to create them.
    const workers = ['a', 'b', 'c'].map((label) => startWorker(stateDir as string, label, COUNT, 50));
    await Promise.all(workers.map((w) => w.ready));
    for (const worker of workers) worker.go();
    const results = await Promise.all(workers.map((w) => w.done));
    expect(new Set(results.map((r) => r.kid)).size).toBe(1);
    const allSeqs = results.flatMap((r) => r.seqs).sort((x, y) => x - y);
    expect(allSeqs).toEqual(Array.from({ length: 3 * COUNT }, (_, i) => i));
    // They really appended at the same time (whether single appends interleave is up to the scheduler).
    const overlapping = results.flatMap((x, i) => results.slice(i + 1).filter((y) => x.startedAt < y.endedAt && y.startedAt < x.endedAt));
    expect(overlapping.length).toBeGreaterThan(0);

    const report = verifyLedger({ stateDir });
    expect(report).toMatchObject({ ok: true, totalRecords: 3 * COUNT, checkpoints: (3 * COUNT) / 50, uncheckpointed: 0 });
    const ledger = CustodyLedger.open({ stateDir });
    try {
      for (const label of ['a', 'b', 'c']) {
        const records = ledger.records({ taskId: `task-${label}` });
        expect(records.map((r) => (r.body as { i: number }).i)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
      }
      expect(ledger.checkpoints().map((c) => c.treeSize)).toEqual(Array.from({ length: (3 * COUNT) / 50 }, (_, i) => (i + 1) * 50));
    } finally {
      ledger.close();
    }
  }, 120_000);
});
