/**
 * `sql`: one UPDATE of one row through the brokered `sql.exec` capability (classification,
 * IMMEDIATE transaction, capture triggers, undo journal, exactly-once record under a call id) and
 * through the plain capability, next to the same UPDATE on better-sqlite3 directly (open
 * connection, prepared statement, transaction), interleaved. Plus the copy-on-write overlay: a
 * 1 KB file written through the fs capability and committed, vs fs.writeFile.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';
import { createSqlCapability } from '../../sandbox/capabilities/sql-capability';
import { journalPathOf } from '../../recovery/recovery-paths';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { figure, type BenchSection } from '../bench-section';
import { interleave, summarize } from '../stats';

export const sqlSection: BenchSection = {
  name: 'sql',
  title: 'brokered sql.exec vs direct better-sqlite3; overlay write + commit vs fs.writeFile',
  async run({ quick, tmpDir }) {
    const samples = quick ? 100 : 300;
    const root = fs.realpathSync(fs.mkdtempSync(path.join(tmpDir, 'sql-')));
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
    const grant = { databases: { shop: file }, query: true, exec: true };
    const journal = journalPathOf(path.join(root, 'sql-state'), 'bench');
    let call = 0;

    // The overlay is opened once per task, before its first step: not part of a write's cost.
    const workspace = path.join(root, 'workspace');
    const stateDir = path.join(root, 'state');
    fs.mkdirSync(workspace, { recursive: true });
    fs.writeFileSync(path.join(workspace, 'file.txt'), 'y'.repeat(1024));
    const content = 'x'.repeat(1023) + '\n';
    const overlays: { taskKey: string; upper: string }[] = [];
    const warmup = quick ? 5 : 20;
    for (let i = 0; i < samples + warmup; i += 1) {
      const taskKey = `bench-${i}`;
      overlays.push({ taskKey, upper: (await openOverlay({ stateDir, taskKey, workspace })).upper });
    }
    let overlayIndex = 0;
    try {
      const timings = await interleave(warmup, samples, {
        brokered: (i) => {
          call += 1;
          createSqlCapability({ ...grant, journal, callId: `bench:${call}` }).exec('shop', sql, [id(i)]);
        },
        plain: (i) => void createSqlCapability(grant).exec('shop', sql, [id(i)]),
        direct: (i) => void connection.transaction(() => prepared.run(id(i)))(),
        overlay: async (i) => {
          const { taskKey, upper } = overlays[overlayIndex] as { taskKey: string; upper: string };
          overlayIndex += 1;
          createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: upper }).write('file.txt', `${i}${content}`);
          await commitOverlay({ stateDir, taskKey, workspace });
        },
        writeFile: (i) => fs.promises.writeFile(path.join(workspace, 'file.txt'), `${i}${content}`),
      });
      const direct = { label: 'better-sqlite3 directly (open connection, transaction)', summary: summarize(timings.direct) };
      return {
        figures: [
          figure('sql.exec.brokered', 'brokered sql.exec (capture + undo journal + exactly-once)', summarize(timings.brokered), { baseline: direct }),
          figure('sql.exec.plain', 'sql.exec capability, no journal (opens the database per call)', summarize(timings.plain), { baseline: direct }),
          figure('sql.overlay-write', 'overlay write + commit, 1 KB', summarize(timings.overlay), {
            baseline: { label: 'fs.promises.writeFile', summary: summarize(timings.writeFile) },
          }),
        ],
        notes: [`${samples} samples each, interleaved; the capability opens and closes the database per call, as in a tool call.`],
      };
    } finally {
      connection.close();
    }
  },
};
