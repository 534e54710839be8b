/**
 * A task's workspace and its `ledger` SQLite database, as the multi-worker tests use them: `ws/`
 * and `db/ledger.db` (table `entries (id, task)`) under a folder the test owns, with readers for
 * what a task left, and the two steps those tests script (a file write, a row insert).
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export interface LedgerWorkspace {
  dir: string;
  workspace: string;
  dbFile: string;
  /** The `task` column of every row, in insertion order. */
  rows: () => string[];
  /** Every file at the workspace's top level, by name, with its text. */
  files: () => Record<string, string>;
}

/** Makes `ws/` and `db/ledger.db` (empty `entries`) under `dir`, which must exist. */
export function makeLedgerWorkspace(dir: string): LedgerWorkspace {
  const workspace = join(dir, 'ws');
  mkdirSync(workspace);
  mkdirSync(join(dir, 'db'));
  const dbFile = join(dir, 'db', 'ledger.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE entries (id INTEGER PRIMARY KEY, task TEXT NOT NULL)');
  db.close();
  const rows = () => {
    const d = new Database(dbFile, { readonly: true });
    try {
      return (d.prepare('SELECT task FROM entries ORDER BY id').all() as { task: string }[]).map((r) => r.task);
    } finally {
      d.close();
    }
  };
  const files = () => Object.fromEntries(readdirSync(workspace).map((name) => [name, readFileSync(join(workspace, name), 'utf8')]));
  return { dir, workspace, dbFile, rows, files };
}

/** A scripted step inserting `row` into `ledger.entries`. */
export const insert = (row: string) => ({ tool: 'sql.exec', args: { database: 'ledger', sql: 'INSERT INTO entries (task) VALUES (?)', params: [row] } });
/** A scripted step writing `content` to `path` in the workspace. */
export const write = (path: string, content: string) => ({ tool: 'fs.write', args: { path, content } });
