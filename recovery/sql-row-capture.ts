/**
 * The brokered `sql.exec`: one INSERT/UPDATE/DELETE/REPLACE run so that its exact effect is
 * known and can be undone.
 *
 * How: inside one IMMEDIATE transaction, TEMP triggers are installed on the statement's target
 * table (and on every table a foreign-key action or a trigger of the database could reach) that
 * copy the rowid and the OLD/NEW values of each changed row into a TEMP table; the statement
 * runs; the images are read back. TEMP objects live only on this connection, which is closed
 * after the call, so nothing is left in the database but the change itself and, with a call id,
 * one row in `warden_applied_calls` written in the same transaction (exactly once: a re-run with
 * that id returns the recorded result without executing anything).
 *
 * Invariants: the images reach the undo journal before the target transaction commits (see
 * recovery/sql-undo-journal.ts); a statement whose target the broker cannot identify or capture
 * (virtual tables, WITHOUT ROWID tables) is refused (ERR_SQL_DENIED) rather than run
 * without an undo; agents cannot write `warden_applied_calls`.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { capabilityError } from '../sandbox/capabilities/capability-error';
import { APPLIED_CALLS_TABLE, quoteIdentifier, recordJournaledCall, type CapturedRow, type RowOp, type StoredValue } from './sql-undo-journal';

/** Most row images one journaled call may produce; larger changes are refused, not half-journaled. */
export const MAX_CAPTURED_ROWS = 100_000;

const CAPTURE_TABLE = 'warden_capture';

export interface BrokeredExecInput {
  /** A writable connection, not in a transaction, closed by the caller afterwards. */
  db: Database.Database;
  database: string;
  databasePath: string;
  /** The agent's statement, already prepared and classified as a single write. */
  statement: Database.Statement<unknown[]>;
  sql: string;
  bindings: readonly (string | number | null)[];
  /** Leading keyword of `sql` (INSERT, UPDATE, DELETE, REPLACE, WITH). */
  keyword: string;
  journal?: string;
  callId?: string;
  /** The tool call's id this exec belongs to (defaults to `callId`). */
  baseCallId?: string;
  dryRun?: boolean;
  now?: () => Date;
  /**
   * Asked inside the open transaction with the rows the statement changed, by table and
   * operation (cascades and triggers included), before anything is journaled or committed;
   * throwing refuses the statement and rolls it back.
   */
  decide?: (changes: { table: string; op: RowOp; rows: number }[]) => void;
}

export type DryRunResult = { changes: number; table: string };
export type BrokeredExecResult = { changes: number; table: string; rowsChanged: number; callId?: string };

/** Runs the statement as described above; with `dryRun`, measures it and rolls back. */
export function brokeredExec(input: BrokeredExecInput): DryRunResult | BrokeredExecResult {
  const { db, statement, bindings } = input;
  const table = targetTableOf(db, input.sql, bindings);
  if (table.toLowerCase() === APPLIED_CALLS_TABLE) throw capabilityError('ERR_SQL_DENIED', `${APPLIED_CALLS_TABLE} belongs to Warden`);

  if (input.dryRun === true && input.decide === undefined) {
    db.exec('BEGIN IMMEDIATE');
    try {
      return { changes: statement.run(...bindings).changes, table };
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
    }
  }

  const callId = input.callId ?? (input.journal === undefined ? undefined : `auto-${randomUUID()}`);
  // REPLACE deletes conflicting rows without firing delete triggers unless this is on.
  db.pragma('recursive_triggers = ON');
  db.exec('BEGIN IMMEDIATE');
  try {
    if (callId !== undefined) {
      db.exec(
        `CREATE TABLE IF NOT EXISTS main.${APPLIED_CALLS_TABLE} (call_id TEXT PRIMARY KEY, applied_at TEXT NOT NULL, result TEXT NOT NULL, undone_at TEXT)`,
      );
      const recorded = db.prepare(`SELECT result FROM main.${APPLIED_CALLS_TABLE} WHERE call_id = ?`).get(callId) as { result: string } | undefined;
      if (recorded !== undefined) {
        db.exec('COMMIT');
        return JSON.parse(recorded.result) as BrokeredExecResult;
      }
    }
    const plan = capturePlan(db, table);
    installCapture(db, plan);
    const changes = statement.run(...bindings).changes;
    // The measurement and the change are the same execution: decided here, committed only if allowed.
    input.decide?.(changesByTable(db, plan));
    if (input.dryRun === true) return { changes, table };
    const { count, rows } = readCapture(db, plan, input.journal !== undefined);
    const result: BrokeredExecResult = { changes, table, rowsChanged: count, ...(callId === undefined ? {} : { callId }) };
    const now = (input.now?.() ?? new Date()).toISOString();
    if (input.journal !== undefined && callId !== undefined) {
      recordJournaledCall(input.journal, {
        callId,
        baseCallId: input.baseCallId ?? callId,
        database: input.database,
        databasePath: input.databasePath,
        table,
        op: opOf(input.keyword, rows, table),
        sql: input.sql,
        changes,
        rows,
        recordedAt: now,
      });
    }
    if (callId !== undefined) {
      db.prepare(`INSERT INTO main.${APPLIED_CALLS_TABLE} (call_id, applied_at, result) VALUES (?, ?, ?)`).run(callId, now, JSON.stringify(result));
    }
    db.exec('COMMIT');
    return result;
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

function opOf(keyword: string, rows: readonly CapturedRow[], table: string): string {
  if (keyword !== 'WITH') return keyword.toLowerCase();
  const ops = new Set(rows.filter((r) => r.table === table).map((r) => r.op));
  return ops.size === 1 ? [...ops][0]! : 'with';
}

/**
 * The table the statement writes, read from its compiled program (`EXPLAIN`): the main-database
 * b-trees it opens for writing, mapped to their table. EXPLAIN lists trigger sub-programs after
 * the main program (their addresses start again at 0); the main program's table wins, and a
 * statement on a view (whose INSTEAD OF trigger does the writing) reports the table that trigger
 * writes. SQLite's own tables (sqlite_sequence) are ignored.
 */
export function targetTableOf(db: Database.Database, sql: string, bindings: readonly unknown[]): string {
  const program = db.prepare(`EXPLAIN ${sql}`).all(...bindings) as { addr: number; opcode: string; p1: number; p2: number; p3: number; p5: number }[];
  const byRoot = db.prepare('SELECT tbl_name FROM main.sqlite_schema WHERE rootpage = ?');
  const main = new Set<string>();
  const triggered = new Set<string>();
  let inMain = true;
  let lastAddr = -1;
  for (const op of program) {
    if (op.addr <= lastAddr) inMain = false;
    lastAddr = op.addr;
    // OpenWrite P2 = root page, P3 = database (P5 & 0x10, OPFLAG_P2ISREG: P2 is a register; only
    // schema changes use that). Clear P1 = root page, P2 = database: `DELETE FROM t` without a
    // WHERE clause empties the table in one step (no longer once the capture triggers exist).
    let root: number;
    if (op.opcode === 'OpenWrite' && op.p3 === 0 && (op.p5 & 0x10) === 0) root = op.p2;
    else if (op.opcode === 'Clear' && op.p2 === 0) root = op.p1;
    else continue;
    const found = byRoot.get(root) as { tbl_name: string } | undefined;
    if (found !== undefined && !found.tbl_name.toLowerCase().startsWith('sqlite_')) (inMain ? main : triggered).add(found.tbl_name);
  }
  const [table] = main.size > 0 ? main : triggered;
  if (table === undefined) {
    throw capabilityError('ERR_SQL_DENIED', 'the broker cannot tell which table this statement changes (virtual tables are not brokered)');
  }
  return table;
}

interface CapturedTable {
  index: number;
  name: string;
  columns: string[];
  /** A name reaching the rowid that no column shadows. */
  rowid: string;
}

/**
 * The tables whose rows the statement may change: its target, plus every table a foreign-key
 * action reaches from it; when the database has triggers (which may write anywhere), all tables.
 */
function capturePlan(db: Database.Database, target: string): CapturedTable[] {
  const userTables = (
    db.prepare("SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as { name: string; sql: string | null }[]
  ).filter((t) => t.name !== APPLIED_CALLS_TABLE);
  const hasTriggers = db.prepare("SELECT 1 FROM main.sqlite_schema WHERE type = 'trigger' LIMIT 1").get() !== undefined;
  let names: string[];
  if (hasTriggers) {
    names = [target, ...userTables.map((t) => t.name).filter((n) => n !== target)];
  } else {
    const children = new Map<string, string[]>();
    for (const { name } of userTables) {
      for (const fk of db.prepare("SELECT \"table\" AS parent, on_update, on_delete FROM pragma_foreign_key_list(?, 'main')").all(name) as {
        parent: string;
        on_update: string;
        on_delete: string;
      }[]) {
        if (![fk.on_update, fk.on_delete].some((action) => /^(CASCADE|SET NULL|SET DEFAULT)$/i.test(action))) continue;
        const key = fk.parent.toLowerCase();
        children.set(key, [...(children.get(key) ?? []), name]);
      }
    }
    const reached = [target];
    for (let i = 0; i < reached.length; i += 1) {
      for (const child of children.get(reached[i]!.toLowerCase()) ?? []) if (!reached.includes(child)) reached.push(child);
    }
    names = reached;
  }
  const virtual = new Set(userTables.filter((t) => /^\s*create\s+virtual\b/i.test(t.sql ?? '')).map((t) => t.name));
  const plan: CapturedTable[] = [];
  for (const name of names) {
    const table = capturableTable(db, name, plan.length, virtual.has(name));
    if (table !== undefined) plan.push(table);
    else if (name === target || !hasTriggers) {
      throw capabilityError('ERR_SQL_DENIED', `changes to table ${name} cannot be undone (a virtual or WITHOUT ROWID table), so the broker refuses them`, {
        table: name,
      });
    }
    // With triggers, tables that cannot be captured are skipped: a trigger writing them is not undone (see README).
  }
  return plan;
}

function capturableTable(db: Database.Database, name: string, index: number, isVirtual: boolean): CapturedTable | undefined {
  if (isVirtual) return undefined;
  const columns = (db.prepare("SELECT name FROM pragma_table_info(?, 'main')").all(name) as { name: string }[]).map((c) => c.name);
  if (columns.length === 0) return undefined;
  const lower = new Set(columns.map((c) => c.toLowerCase()));
  const rowid = ['rowid', '_rowid_', 'oid'].find((alias) => !lower.has(alias));
  if (rowid === undefined) return undefined;
  try {
    db.prepare(`SELECT ${rowid} FROM main.${quoteIdentifier(name)} LIMIT 0`);
  } catch {
    return undefined; // WITHOUT ROWID
  }
  return { index, name, columns, rowid };
}

function installCapture(db: Database.Database, plan: readonly CapturedTable[]): void {
  const width = Math.max(...plan.map((t) => t.columns.length));
  const valueColumns = [...Array.from({ length: width }, (_, i) => `o${i}`), ...Array.from({ length: width }, (_, i) => `n${i}`)];
  // Columns without a declared type have no affinity: values are kept exactly as stored.
  db.exec(`CREATE TEMP TABLE ${CAPTURE_TABLE} (seq INTEGER PRIMARY KEY, tbl INTEGER NOT NULL, op TEXT NOT NULL, old_rowid, new_rowid, ${valueColumns.join(', ')})`);
  for (const table of plan) {
    const target = `main.${quoteIdentifier(table.name)}`;
    const olds = table.columns.map((c) => `OLD.${quoteIdentifier(c)}`);
    const news = table.columns.map((c) => `NEW.${quoteIdentifier(c)}`);
    const o = table.columns.map((_, i) => `o${i}`);
    const n = table.columns.map((_, i) => `n${i}`);
    const trigger = (op: RowOp, event: string, columns: string[], values: string[]) =>
      `CREATE TEMP TRIGGER warden_capture_${table.index}_${op} AFTER ${event} ON ${target} BEGIN ` +
      `INSERT INTO temp.${CAPTURE_TABLE} (tbl, op, old_rowid, new_rowid, ${columns.join(', ')}) VALUES (${table.index}, '${op}', ${values.join(', ')}); END`;
    db.exec(trigger('insert', 'INSERT', n, ['NULL', `NEW.${table.rowid}`, ...news]));
    db.exec(trigger('update', 'UPDATE', [...o, ...n], [`OLD.${table.rowid}`, `NEW.${table.rowid}`, ...olds, ...news]));
    db.exec(trigger('delete', 'DELETE', o, [`OLD.${table.rowid}`, 'NULL', ...olds]));
  }
}

/** Rows changed per table and operation, as the capture triggers saw them. */
function changesByTable(db: Database.Database, plan: readonly CapturedTable[]): { table: string; op: RowOp; rows: number }[] {
  const counts = db.prepare(`SELECT tbl, op, count(*) AS n FROM temp.${CAPTURE_TABLE} GROUP BY tbl, op ORDER BY tbl, op`).all() as { tbl: number; op: RowOp; n: number }[];
  return counts.map((c) => ({ table: plan[c.tbl]!.name, op: c.op, rows: c.n }));
}

/** How many row images were captured, and (when journaled) the images themselves. */
function readCapture(db: Database.Database, plan: readonly CapturedTable[], journaled: boolean): { count: number; rows: CapturedRow[] } {
  const count = (db.prepare(`SELECT count(*) AS n FROM temp.${CAPTURE_TABLE}`).get() as { n: number }).n;
  if (journaled && count > MAX_CAPTURED_ROWS) {
    throw capabilityError('ERR_SQL_DENIED', `the statement changes ${count} rows, more than the ${MAX_CAPTURED_ROWS} the undo journal keeps; split it`);
  }
  if (!journaled) return { count, rows: [] };
  const width = Math.max(...plan.map((t) => t.columns.length));
  const statement = db.prepare(`SELECT * FROM temp.${CAPTURE_TABLE} ORDER BY seq`);
  statement.safeIntegers(true);
  statement.raw(true);
  const rows: CapturedRow[] = [];
  for (const raw of statement.iterate() as Iterable<StoredValue[]>) {
    const [seq, tbl, op, oldRowid, newRowid] = raw as [bigint, bigint, RowOp, bigint | null, bigint | null];
    const table = plan[Number(tbl)]!;
    const values = (offset: number) => raw.slice(5 + offset, 5 + offset + table.columns.length);
    rows.push({
      seq: Number(seq),
      table: table.name,
      op,
      oldRowid,
      newRowid,
      columns: table.columns,
      before: op === 'insert' ? null : values(0),
      after: op === 'delete' ? null : values(width),
    });
  }
  return { count, rows };
}
