/**
 * The SQL undo journal: one SQLite file per task tree holding, for every brokered `sql.exec`, the
 * exact before- and after-image of every row it changed; and `undoSqlCall`, which applies the
 * inverse of a call.
 *
 * Invariants:
 * - A call's images reach the journal (committed) before the change commits in the target
 *   database, and the target records the call id in `warden_applied_calls` in the same
 *   transaction as the change. So every applied call is journaled, and a journaled call whose id
 *   is not in the target never happened (its images are ignored).
 * - Values keep their exact SQLite type: integers as 64-bit (never rounded through a JS number),
 *   reals, text, BLOBs, NULL.
 * - Undo applies the inverse row operations newest first in one target transaction, marks the
 *   call undone in `warden_applied_calls` in that same transaction (so it happens exactly once),
 *   and refuses (ERR_ROLLBACK_CONFLICT) when a row no longer looks the way the call left it,
 *   unless `force`. Foreign-key actions are switched off and the database's own triggers are
 *   suspended while undoing (dropped and re-created from their stored SQL inside the same
 *   transaction, so no other connection ever sees them missing): every row a cascade or trigger
 *   touched was captured and is restored by its own inverse operation, and the undo itself has
 *   no side effects.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { RecoveryError } from '../errors';

/** The table in each target database recording which call ids were applied (and undone). */
export const APPLIED_CALLS_TABLE = 'warden_applied_calls';

/** A value as SQLite stores it, read with 64-bit integers. */
export type StoredValue = null | bigint | number | string | Buffer;
/** The JSON form of a StoredValue in the journal: text as is, other types tagged. */
export type EncodedValue = null | string | { i: string } | { r: number | string } | { b: string };

export type RowOp = 'insert' | 'update' | 'delete';

/** One row change as the capture triggers saw it. */
export interface CapturedRow {
  /** Order of the change within the call. */
  seq: number;
  table: string;
  op: RowOp;
  /** Rowid before (update, delete) and after (insert, update). */
  oldRowid: bigint | null;
  newRowid: bigint | null;
  columns: readonly string[];
  before: readonly StoredValue[] | null;
  after: readonly StoredValue[] | null;
}

export interface JournaledCallInput {
  callId: string;
  /** The tool call's id (`callId` without a `#n` suffix). */
  baseCallId: string;
  database: string;
  databasePath: string;
  table: string;
  op: string;
  sql: string;
  changes: number;
  rows: readonly CapturedRow[];
  recordedAt: string;
}

/** A journaled call as read back: its row images are summarised by their count. */
export interface JournaledCall extends Omit<JournaledCallInput, 'rows'> {
  rowsChanged: number;
  undoneAt: string | null;
  undoOutcome: string | null;
}

const JOURNAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS warden_undo_calls (
  seq INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL UNIQUE,
  base_call_id TEXT NOT NULL,
  database_name TEXT NOT NULL,
  database_path TEXT NOT NULL,
  table_name TEXT NOT NULL,
  op TEXT NOT NULL,
  sql TEXT NOT NULL,
  changes INTEGER NOT NULL,
  rows_changed INTEGER NOT NULL,
  recorded_at TEXT NOT NULL,
  undone_at TEXT,
  undo_outcome TEXT
);
CREATE INDEX IF NOT EXISTS warden_undo_calls_base ON warden_undo_calls (base_call_id);
CREATE TABLE IF NOT EXISTS warden_undo_rows (
  call_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  old_rowid INTEGER,
  new_rowid INTEGER,
  columns TEXT NOT NULL,
  before TEXT,
  after TEXT,
  PRIMARY KEY (call_id, seq)
);`;

export function encodeValue(value: StoredValue): EncodedValue {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'bigint') return { i: value.toString() };
  if (typeof value === 'number') return { r: Number.isFinite(value) ? value : String(value) };
  return { b: Buffer.from(value).toString('base64') };
}

export function decodeValue(value: EncodedValue): StoredValue {
  if (value === null || typeof value === 'string') return value;
  if ('i' in value) return BigInt(value.i);
  if ('r' in value) return typeof value.r === 'number' ? value.r : Number(value.r);
  return Buffer.from(value.b, 'base64');
}

function encodeRow(values: readonly StoredValue[] | null): string | null {
  return values === null ? null : JSON.stringify(values.map(encodeValue));
}

function decodeRow(text: string | null): StoredValue[] | null {
  return text === null ? null : (JSON.parse(text) as EncodedValue[]).map(decodeValue);
}

function openJournal(file: string, create: boolean): Database.Database | undefined {
  if (!create && !fs.existsSync(file)) return undefined;
  fs.mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(JOURNAL_SCHEMA);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Appends a call's row images to the journal and commits them. A stale entry under the same call
 * id (from an attempt that crashed before its target transaction committed) is replaced.
 */
export function recordJournaledCall(journal: string, call: JournaledCallInput): void {
  const db = openJournal(journal, true)!;
  try {
    const insertCall = db.prepare(
      `INSERT INTO warden_undo_calls (call_id, base_call_id, database_name, database_path, table_name, op, sql, changes, rows_changed, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertRow = db.prepare(
      `INSERT INTO warden_undo_rows (call_id, seq, table_name, op, old_rowid, new_rowid, columns, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    db.transaction(() => {
      db.prepare('DELETE FROM warden_undo_rows WHERE call_id = ?').run(call.callId);
      db.prepare('DELETE FROM warden_undo_calls WHERE call_id = ?').run(call.callId);
      insertCall.run(call.callId, call.baseCallId, call.database, call.databasePath, call.table, call.op, call.sql, call.changes, call.rows.length, call.recordedAt);
      for (const row of call.rows) {
        insertRow.run(call.callId, row.seq, row.table, row.op, row.oldRowid, row.newRowid, JSON.stringify(row.columns), encodeRow(row.before), encodeRow(row.after));
      }
    }).immediate();
  } finally {
    db.close();
  }
}

interface CallRecord {
  seq: number;
  call_id: string;
  base_call_id: string;
  database_name: string;
  database_path: string;
  table_name: string;
  op: string;
  sql: string;
  changes: number;
  rows_changed: number;
  recorded_at: string;
  undone_at: string | null;
  undo_outcome: string | null;
}

function toJournaledCall(record: CallRecord): JournaledCall {
  return {
    callId: record.call_id,
    baseCallId: record.base_call_id,
    database: record.database_name,
    databasePath: record.database_path,
    table: record.table_name,
    op: record.op,
    sql: record.sql,
    changes: record.changes,
    rowsChanged: record.rows_changed,
    recordedAt: record.recorded_at,
    undoneAt: record.undone_at,
    undoOutcome: record.undo_outcome,
  };
}

/** Every call in the journal, oldest first (none when the journal does not exist). */
export function listJournaledCalls(journal: string): JournaledCall[] {
  const db = openJournal(journal, false);
  if (db === undefined) return [];
  try {
    return (db.prepare('SELECT * FROM warden_undo_calls ORDER BY seq').all() as CallRecord[]).map(toJournaledCall);
  } finally {
    db.close();
  }
}

/** The row images of one call, in the order they happened. */
export function journaledRowsOf(journal: string, callId: string): CapturedRow[] {
  const db = openJournal(journal, false);
  if (db === undefined) return [];
  try {
    return readRows(db, callId);
  } finally {
    db.close();
  }
}

interface RowRecord {
  seq: number;
  table_name: string;
  op: RowOp;
  old_rowid: bigint | null;
  new_rowid: bigint | null;
  columns: string;
  before: string | null;
  after: string | null;
}

function readRows(db: Database.Database, callId: string): CapturedRow[] {
  const statement = db.prepare('SELECT seq, table_name, op, old_rowid, new_rowid, columns, before, after FROM warden_undo_rows WHERE call_id = ? ORDER BY seq');
  statement.safeIntegers(true);
  return (statement.all(callId) as (Omit<RowRecord, 'seq'> & { seq: bigint })[]).map((r) => ({
    seq: Number(r.seq),
    table: r.table_name,
    op: r.op,
    oldRowid: r.old_rowid,
    newRowid: r.new_rowid,
    columns: JSON.parse(r.columns) as string[],
    before: decodeRow(r.before),
    after: decodeRow(r.after),
  }));
}

export type UndoOutcome = 'undone' | 'already-undone' | 'not-applied';

export interface UndoOptions {
  /** The journal file (the sql grant's `journal`). */
  journal: string;
  /** A tool call's id: undoes that call and every `#n` sub-call of it. */
  callId: string;
  /** Database name -> file; defaults to the path recorded with each call. */
  databases?: Readonly<Record<string, string>>;
  /** Undo rows that changed since the call too (overwriting those later changes). */
  force?: boolean;
  now?: () => Date;
}

export interface UndoResult {
  callId: string;
  calls: { callId: string; database: string; table: string; outcome: UndoOutcome; rows: number }[];
}

/** Applies the inverse of one journaled tool call (all its sub-calls, newest first). Idempotent. */
export function undoSqlCall(options: UndoOptions): UndoResult {
  const db = openJournal(options.journal, false);
  if (db === undefined) return { callId: options.callId, calls: [] };
  let calls: CallRecord[];
  try {
    calls = db.prepare('SELECT * FROM warden_undo_calls WHERE call_id = ? OR base_call_id = ? ORDER BY seq DESC').all(options.callId, options.callId) as CallRecord[];
  } finally {
    db.close();
  }
  return { callId: options.callId, calls: calls.map((call) => undoOne(options, call)) };
}

/** Undoes every call of the journal that is not undone yet, newest first (e.g. `warden rollback`). */
export function undoAllSqlCalls(options: Omit<UndoOptions, 'callId'>): UndoResult['calls'] {
  const pending = listJournaledCalls(options.journal).filter((c) => c.undoneAt === null);
  const done: UndoResult['calls'] = [];
  for (const call of pending.reverse()) done.push(...undoSqlCall({ ...options, callId: call.callId }).calls.filter((c) => c.callId === call.callId));
  return done;
}

function undoOne(options: UndoOptions, call: CallRecord): UndoResult['calls'][number] {
  const summary = { callId: call.call_id, database: call.database_name, table: call.table_name, rows: call.rows_changed };
  const path = options.databases?.[call.database_name] ?? call.database_path;
  const now = (options.now?.() ?? new Date()).toISOString();
  if (call.undone_at !== null && call.undo_outcome !== null) {
    return { ...summary, outcome: call.undo_outcome === 'undone' ? 'already-undone' : (call.undo_outcome as UndoOutcome) };
  }

  const journal = openJournal(options.journal, false)!;
  let rows: CapturedRow[];
  try {
    rows = readRows(journal, call.call_id);
  } finally {
    journal.close();
  }
  let target: Database.Database;
  try {
    target = new Database(path, { fileMustExist: true, timeout: 5000 });
  } catch (cause) {
    throw new RecoveryError('ERR_UNDO_FAILED', `cannot undo ${call.call_id}: database ${call.database_name} (${path}) cannot be opened`, {
      details: { callId: call.call_id, database: call.database_name },
      cause,
      retryable: true,
    });
  }
  let outcome: UndoOutcome;
  try {
    target.pragma('foreign_keys = OFF');
    target.exec('BEGIN IMMEDIATE');
    try {
      outcome = undoInTransaction(target, call, rows, options.force === true, now);
      if (outcome === 'undone') target.exec('COMMIT');
      else target.exec('ROLLBACK');
    } catch (error) {
      if (target.inTransaction) target.exec('ROLLBACK');
      throw error;
    }
  } finally {
    target.close();
  }
  const done = openJournal(options.journal, false)!;
  try {
    done.prepare('UPDATE warden_undo_calls SET undone_at = ?, undo_outcome = ? WHERE call_id = ?').run(now, outcome, call.call_id);
  } finally {
    done.close();
  }
  return { ...summary, outcome };
}

function undoInTransaction(db: Database.Database, call: CallRecord, rows: readonly CapturedRow[], force: boolean, now: string): UndoOutcome {
  const ledgerExists = db.prepare("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?").get(APPLIED_CALLS_TABLE) !== undefined;
  const applied = ledgerExists
    ? (db.prepare(`SELECT undone_at FROM main.${APPLIED_CALLS_TABLE} WHERE call_id = ?`).get(call.call_id) as { undone_at: string | null } | undefined)
    : undefined;
  if (applied === undefined) return 'not-applied';
  if (applied.undone_at !== null) return 'already-undone';

  const triggers = db.prepare("SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND sql IS NOT NULL").all() as { name: string; sql: string }[];
  for (const trigger of triggers) db.exec(`DROP TRIGGER main.${quoteIdentifier(trigger.name)}`);

  const tables = new Map<string, TableAccess>();
  const conflicts: string[] = [];
  for (const row of [...rows].sort((a, b) => b.seq - a.seq)) {
    let access = tables.get(row.table);
    if (access === undefined) {
      access = tableAccess(db, row.table, call.call_id);
      tables.set(row.table, access);
    }
    const conflict = invertRow(db, access, row, force);
    if (conflict !== undefined) conflicts.push(conflict);
  }
  if (conflicts.length > 0 && !force) {
    throw new RecoveryError('ERR_ROLLBACK_CONFLICT', `cannot undo ${call.call_id}: rows changed since the call: ${conflicts.slice(0, 20).join(', ')}${conflicts.length > 20 ? ', …' : ''}`, {
      details: { callId: call.call_id, database: call.database_name, rows: conflicts },
    });
  }
  for (const trigger of triggers) db.exec(trigger.sql);
  db.prepare(`UPDATE main.${APPLIED_CALLS_TABLE} SET undone_at = ? WHERE call_id = ?`).run(now, call.call_id);
  return 'undone';
}

interface TableAccess {
  /** Quoted `main."table"`. */
  qualified: string;
  /** A name reaching the rowid that no column shadows. */
  rowid: string;
  /** Current column names. */
  columns: Set<string>;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function tableAccess(db: Database.Database, table: string, callId: string): TableAccess {
  const columns = new Set((db.prepare("SELECT name FROM pragma_table_info(?, 'main')").all(table) as { name: string }[]).map((c) => c.name));
  if (columns.size === 0) {
    throw new RecoveryError('ERR_UNDO_FAILED', `cannot undo ${callId}: table ${table} no longer exists`, { details: { callId, table } });
  }
  const lower = new Set([...columns].map((c) => c.toLowerCase()));
  const rowid = ['rowid', '_rowid_', 'oid'].find((alias) => !lower.has(alias));
  if (rowid === undefined) throw new RecoveryError('ERR_UNDO_FAILED', `cannot undo ${callId}: table ${table} hides its rowid`, { details: { callId, table } });
  return { qualified: `main.${quoteIdentifier(table)}`, rowid, columns };
}

/** The current values of `columns` in the row `rowid` (null: no such row). */
function currentRow(db: Database.Database, access: TableAccess, columns: readonly string[], rowid: bigint | null): StoredValue[] | null {
  if (rowid === null) return null;
  const statement = db.prepare(`SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${access.qualified} WHERE ${access.rowid} = ?`);
  statement.safeIntegers(true);
  statement.raw(true);
  return (statement.get(rowid) as StoredValue[] | undefined) ?? null;
}

function sameRow(a: readonly StoredValue[] | null, b: readonly StoredValue[] | null): boolean {
  return encodeRow(a) === encodeRow(b);
}

/** Applies the inverse of `row`; returns a description of the conflict when the row is not as the call left it. */
function invertRow(db: Database.Database, access: TableAccess, row: CapturedRow, force: boolean): string | undefined {
  const missing = row.columns.find((c) => !access.columns.has(c));
  if (missing !== undefined) {
    throw new RecoveryError('ERR_UNDO_FAILED', `cannot undo a change to ${row.table}: column ${missing} no longer exists`, { details: { table: row.table, column: missing } });
  }
  const columns = row.columns;
  const at = currentRow(db, access, columns, row.newRowid);
  const name = `${row.table}#${(row.op === 'insert' ? row.newRowid : row.oldRowid)?.toString() ?? '?'}`;
  const removeNew = () => db.prepare(`DELETE FROM ${access.qualified} WHERE ${access.rowid} = ?`).run(row.newRowid);
  const insertOld = (orReplace: boolean) =>
    db
      .prepare(
        `INSERT${orReplace ? ' OR REPLACE' : ''} INTO ${access.qualified} (${[access.rowid, ...columns.map(quoteIdentifier)].join(', ')}) VALUES (${['?', ...columns.map(() => '?')].join(', ')})`,
      )
      .run(row.oldRowid, ...(row.before ?? []));

  switch (row.op) {
    case 'insert': {
      if (at === null) return undefined; // already gone
      if (sameRow(at, row.after) || force) {
        removeNew();
        return sameRow(at, row.after) ? undefined : name;
      }
      return name;
    }
    case 'delete': {
      const now = currentRow(db, access, columns, row.oldRowid);
      if (sameRow(now, row.before)) return undefined; // already back
      if (now === null) {
        insertOld(false);
        return undefined;
      }
      if (force) insertOld(true);
      return name;
    }
    case 'update': {
      const moved = row.oldRowid !== row.newRowid;
      const old = moved ? currentRow(db, access, columns, row.oldRowid) : at;
      if (!moved && sameRow(at, row.before)) return undefined;
      if (moved && at === null && sameRow(old, row.before)) return undefined;
      const clean = sameRow(at, row.after) && (!moved || old === null);
      if (!clean && !force) return name;
      if (at !== null) {
        db.prepare(
          `UPDATE${force ? ' OR REPLACE' : ''} ${access.qualified} SET ${columns.map((c) => `${quoteIdentifier(c)} = ?`).join(', ')}, ${access.rowid} = ? WHERE ${access.rowid} = ?`,
        ).run(...(row.before ?? []), row.oldRowid, row.newRowid);
      } else {
        insertOld(true);
      }
      return clean ? undefined : name;
    }
  }
}
