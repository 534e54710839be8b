/**
 * The cost of blast-radius isolation, against the same operation done directly, in one run:
 * - a file written through the copy-on-write overlay and then committed (snapshot of what it
 *   replaces, manifest, atomic replace, fsyncs) vs `fs.writeFile` on the workspace (and vs a
 *   durable atomic write, to show what durability alone costs), 1 KB and 1 MB;
 * - one brokered `sql.exec` (capture triggers, undo journal, exactly-once record) vs the same
 *   UPDATE on better-sqlite3 directly.
 * Run: node --require tsx/cjs bench/recovery.bench.ts [iterations]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { createFsCapability } from '../sandbox/capabilities/fs-capability';
import { createSqlCapability } from '../sandbox/capabilities/sql-capability';
import { writeFileAtomic } from '../recovery/atomic-file';
import { journalPathOf } from '../recovery/recovery-paths';
import { commitOverlay, openOverlay } from '../recovery/workspace-overlay';
import { summarize } from './stats';

const WARMUP = 5;

async function time(iterations: number, operation: (i: number) => Promise<void> | void): Promise<number[]> {
  for (let i = 0; i < WARMUP; i += 1) await operation(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i += 1) {
    const started = performance.now();
    await operation(i);
    samples.push(performance.now() - started);
  }
  return samples;
}

async function overlayBench(root: string, size: number, iterations: number): Promise<void> {
  const label = size >= 1024 * 1024 ? `${size / (1024 * 1024)} MB` : `${size / 1024} KB`;
  const content = 'x'.repeat(size - 1) + '\n';
  const workspace = path.join(root, `ws-${size}`);
  const stateDir = path.join(root, `state-${size}`);
  fs.mkdirSync(workspace, { recursive: true });
  fs.writeFileSync(path.join(workspace, 'file.txt'), 'y'.repeat(size));

  const direct = await time(iterations, (i) => fs.promises.writeFile(path.join(workspace, 'file.txt'), `${i}${content}`));
  const durable = await time(iterations, (i) => writeFileAtomic(path.join(workspace, 'file.txt'), `${i}${content}`));
  // The overlay is opened once per task, before its first step: not part of a write's cost.
  const keyOf = (i: number) => `bench-${size}-${i < 0 ? `w${-i}` : i}`;
  const uppers = new Map<string, string>();
  for (let i = -WARMUP; i < iterations; i += 1) uppers.set(keyOf(i), (await openOverlay({ stateDir, taskKey: keyOf(i), workspace })).upper);
  const overlaid = await time(iterations, async (i) => {
    const taskKey = keyOf(i);
    createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: uppers.get(taskKey)! }).write('file.txt', `${i}${content}`);
    await commitOverlay({ stateDir, taskKey, workspace });
  });
  console.log(summarize(`fs.writeFile, ${label} (direct)`, direct));
  console.log(summarize(`durable atomic write (temp + fsync + rename), ${label} (direct)`, durable));
  console.log(summarize(`overlay write + commit, ${label}`, overlaid));
}

async function sqlBench(root: string, iterations: number): Promise<void> {
  const file = path.join(root, 'shop.db');
  const setup = new Database(file);
  setup.pragma('journal_mode = WAL');
  setup.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)');
  const insert = setup.prepare('INSERT INTO items (name, qty) VALUES (?, ?)');
  setup.transaction(() => {
    for (let i = 0; i < 1000; i += 1) insert.run(`item-${i}`, i);
  })();
  setup.close();
  const sql = 'UPDATE items SET qty = qty + 1 WHERE id = ?';
  const id = (i: number) => (Math.abs(i) % 1000) + 1;

  const connection = new Database(file);
  const prepared = connection.prepare(sql);
  const direct = await time(iterations, (i) => void connection.transaction(() => prepared.run(id(i)))());
  connection.close();
  const directOpen = await time(iterations, (i) => {
    const db = new Database(file, { fileMustExist: true });
    try {
      db.transaction(() => db.prepare(sql).run(id(i)))();
    } finally {
      db.close();
    }
  });
  const grant = { databases: { shop: file }, query: true, exec: true };
  const plain = await time(iterations, (i) => void createSqlCapability(grant).exec('shop', sql, [id(i)]));
  const journal = journalPathOf(path.join(root, 'sql-state'), 'bench');
  const brokered = await time(iterations, (i) => void createSqlCapability({ ...grant, journal, callId: `bench:${i}` }).exec('shop', sql, [id(i)]));
  console.log(summarize('UPDATE one row, better-sqlite3 directly (open connection)', direct));
  console.log(summarize('UPDATE one row, better-sqlite3 directly (open, run, close)', directOpen));
  console.log(summarize('UPDATE one row, sql.exec capability (no journal)', plain));
  console.log(summarize('UPDATE one row, brokered sql.exec (capture + undo journal + exactly-once)', brokered));
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 100);
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-recovery-bench-')));
  try {
    await overlayBench(root, 1024, iterations);
    await overlayBench(root, 1024 * 1024, Math.max(10, Math.floor(iterations / 4)));
    await sqlBench(root, iterations);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
