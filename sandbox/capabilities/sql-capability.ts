/**
 * SQLite access for tools, one granted database file at a time.
 *
 * Invariants: only databases named in the grant are opened (by the path the grant maps the name
 * to, never a path a tool supplies); each call opens the file (`fileMustExist`) and closes it;
 * `query` runs exactly one read-only SELECT/WITH/VALUES statement on a read-only connection;
 * `exec` runs exactly one INSERT/UPDATE/DELETE/REPLACE (optionally behind WITH) in a
 * transaction. Schema changes, ATTACH/DETACH, PRAGMA (also as `pragma_*` table functions),
 * transaction control and multiple statements are refused with ERR_SQL_DENIED, and so is any
 * statement naming Warden's `warden_applied_calls` ledger. The file opened is checked against
 * Warden's own resources (`open-database.ts`), whatever link the path has become since the task began.
 *
 * Table grants (`tables`): a database granted table by table runs only statements whose every
 * table (with views, triggers and cascades, sql-table-access.ts) is granted.
 *
 * Brokered mode (the grant has `journal`, `callId` or `dryRun`, or a policy gate is given):
 * `exec` also captures the exact before-image of every row it changes (cascades and triggers
 * included), asks the gate with the effect measured that way inside the open transaction, and
 * commits only if it allows; it journals the images before committing and records the call id in
 * the target database in the same transaction, so the call happens at most once and can be undone
 * (recovery/sql-row-capture.ts, recovery/sql-undo-journal.ts). `dryRun` measures and rolls back.
 *
 * Where it runs: SQLite cannot be interrupted from JavaScript (a statement holds its thread in
 * `sqlite3_step`), so the sandbox host never runs a statement itself: each goes to a SQL process
 * of a warm pool (sql-process.ts, sql-process-pool.ts), which is killed when its call is
 * cancelled or overruns; SQLite's rollback journal then undoes the open transaction.
 */
import Database from 'better-sqlite3';
import { isAbsolute } from 'node:path';
import { CapabilityError } from '../../errors';
import { brokeredExec } from '../../recovery/sql-row-capture';
import type { CapabilityGrant } from '../sandbox-messages';
import { capabilityError } from './capability-error';
import { checkTableGrants, tableAccessOf, type TableAccess } from './sql-table-access';
import { openUnprotected } from './open-database';
import { columnsReadFromTables } from './sql-result-origin';

/** Most rows `sql.query` returns. */
export const MAX_QUERY_ROWS = 10_000;
/** How long a call waits for a lock held by another connection. */
const BUSY_TIMEOUT_MS = 1000;

export type SqlGrant = NonNullable<CapabilityGrant['sql']>;
/** A value as it comes back from a query; BLOBs are returned as base64 strings. */
export type SqlValue = string | number | null;
export type SqlRow = Record<string, SqlValue>;

/**
 * What `exec` returns: `{ changes }`; in brokered mode also the table it changed, the number of
 * row images captured (including rows reached by foreign-key actions and triggers) and the
 * effective call id (the grant's `callId`, `#2`, `#3`… for later execs of the same tool call).
 * A dry run returns `{ changes, table }`.
 */
export interface SqlExecResult {
  changes: number;
  table?: string;
  rowsChanged?: number;
  callId?: string;
}

export interface SqlCapability {
  query(database: unknown, sql: unknown, params?: unknown): SqlRow[];
  exec(database: unknown, sql: unknown, params?: unknown): SqlExecResult;
}

/** What the broker measured of one statement, as the policy gate is asked with it. */
export interface SqlMeasurement {
  database: string;
  sql: string;
  params: readonly SqlValue[];
  /** Tables it can read (static, with views and triggers). */
  tablesRead: string[];
  /** query only: every result column is a column of a table it reads, as-is (sql-result-origin.ts); what lets its output be trusted. */
  columnsFromTables?: boolean;
  /** exec only: rows changed, by table and operation, cascades and triggers included (measured). */
  changes?: { table: string; op: 'insert' | 'update' | 'delete'; rows: number }[];
}

/** Decides a statement before it applies; throws a CapabilityError to refuse (an exec then rolls back). */
export interface SqlGate {
  query(measurement: SqlMeasurement): void;
  exec(measurement: SqlMeasurement): void;
}

type Statement = Database.Statement<unknown[]>;

const QUERY_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES']);
const EXEC_KEYWORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH']);
const PRAGMA_ANYWHERE = /\bpragma(_\w*)?\b/i;
const LEDGER_ANYWHERE = /warden_applied_calls/i;

/** One statement as the capability is asked it: which operation, its arguments as the tool passed them. */
export interface SqlStatementCall {
  op: 'query' | 'exec';
  database: unknown;
  sql: unknown;
  params?: unknown;
  /** exec only: which `exec` of its tool call this is (1 for the first), numbering the sub-call ids. */
  execNumber?: number;
}

/** `sql.query` and `sql.exec` over the databases of `grant`. Whether each is granted is the caller's business. */
export function createSqlCapability(grant: SqlGrant, options: { gate?: SqlGate } = {}): SqlCapability {
  /** `exec` calls made through this capability (one tool call): numbers the sub-call ids. */
  let execCount = 0;
  return {
    query: (database, sql, params = []) => runSqlStatement(grant, { op: 'query', database, sql, params }, options) as SqlRow[],
    exec(database, sql, params = []) {
      checkStatementArgs(grant, 'exec', database, sql, params);
      execCount += 1;
      return runSqlStatement(grant, { op: 'exec', database, sql, params, execNumber: execCount }, options) as SqlExecResult;
    },
  };
}

/**
 * Runs one statement of `call` over the databases of `grant` (the module comment's rules), in
 * this process: rows for a query, SqlExecResult for an exec. The sandbox host runs it in a SQL
 * process instead (sql-process.ts), where it can be stopped. Throws CapabilityError.
 */
export function runSqlStatement(grant: SqlGrant, call: SqlStatementCall, options: { gate?: SqlGate } = {}): SqlRow[] | SqlExecResult {
  const { gate } = options;
  const { database, sql, params = [] } = call;
  const { text, bindings } = checkStatementArgs(grant, call.op, database, sql, params);
  if (call.op === 'query') {
    return withDatabase(grant, database, true, (db) => {
      const statement = prepareSingle(db, text);
      if (!QUERY_KEYWORDS.has(leadingKeyword(text)) || !statement.reader || !statement.readonly) {
        throw capabilityError('ERR_SQL_DENIED', 'sql.query runs a single read statement (SELECT, WITH … SELECT, VALUES); use sql.exec to change data');
      }
      const access = checkedAccess(grant, database as string, db, text, bindings);
      gate?.query({ database: database as string, sql: text, params: bindings, tablesRead: [...access.read].sort(), columnsFromTables: columnsReadFromTables(statement, text, access) });
      return readRows(statement, bindings);
    });
  }
  const brokered = grant.journal !== undefined || grant.callId !== undefined || grant.dryRun === true || gate !== undefined;
  const execNumber = call.execNumber ?? 1;
  const callId = grant.callId === undefined ? undefined : execNumber === 1 ? grant.callId : `${grant.callId}#${execNumber}`;
  return withDatabase(grant, database, false, (db, file) => {
    const statement = prepareSingle(db, text);
    const keyword = leadingKeyword(text);
    if (!EXEC_KEYWORDS.has(keyword) || statement.reader || statement.readonly) {
      throw capabilityError('ERR_SQL_DENIED', 'sql.exec runs a single INSERT, UPDATE, DELETE or REPLACE without RETURNING; schema changes are refused');
    }
    const access = checkedAccess(grant, database as string, db, text, bindings);
    if (!brokered) {
      const run = db.transaction(() => statement.run(...bindings));
      return { changes: run().changes };
    }
    return brokeredExec({
      db,
      database: database as string,
      databasePath: file,
      statement,
      sql: text,
      bindings,
      keyword,
      ...(grant.journal === undefined ? {} : { journal: grant.journal }),
      ...(callId === undefined ? {} : { callId, baseCallId: grant.callId }),
      ...(grant.dryRun === true ? { dryRun: true } : {}),
      ...(gate === undefined
        ? {}
        : { decide: (changes: NonNullable<SqlMeasurement['changes']>) => gate.exec({ database: database as string, sql: text, params: bindings, tablesRead: [...access.read].sort(), changes }) }),
    });
  });
}

/**
 * A statement's arguments checked as the tool passed them, the same rules for every SQL
 * capability: the database a string (ERR_DATABASE_NOT_GRANTED otherwise, as the database's own check), the text a non-empty string without PRAGMA, each parameter a
 * string, a finite number, a boolean or null; for an exec also the ledger and the journal path.
 * The sandbox host checks them before they cross to a SQL process, whose JSON transport would turn
 * a value refused here into one accepted there (Infinity and NaN into NULL, a Date or a String
 * object into text), and before an exec counts as one of its tool call's execs (so a refused one
 * takes no sub-call id). Throws CapabilityError.
 */
export function checkStatementArgs(grant: SqlGrant, op: SqlStatementCall['op'], database: unknown, sql: unknown, params: unknown): { text: string; bindings: SqlValue[] } {
  // As the database's own check (withDatabase) has it: only a string names a granted database.
  if (typeof database !== 'string') throw capabilityError('ERR_DATABASE_NOT_GRANTED', 'database must be a string naming a granted database', { database: String(database) });
  const text = sqlText(sql);
  const bindings = bindingsOf(params);
  if (op === 'query') return { text, bindings };
  if (LEDGER_ANYWHERE.test(text)) throw capabilityError('ERR_SQL_DENIED', 'warden_applied_calls belongs to Warden');
  if (grant.journal !== undefined && !isAbsolute(grant.journal)) throw capabilityError('ERR_SQL_FAILED', 'the undo journal path is not absolute');
  return { text, bindings };
}

/** The tables the statement touches, checked against the database's table grants when it has any. */
function checkedAccess(grant: SqlGrant, database: string, db: Database.Database, text: string, bindings: readonly SqlValue[]): TableAccess {
  const access = tableAccessOf(db, text, bindings);
  const tables = grant.tables?.[database];
  if (tables !== undefined) checkTableGrants(database, access, tables);
  return access;
}

function sqlText(sql: unknown): string {
  if (typeof sql !== 'string' || sql.trim() === '') throw capabilityError('ERR_SQL_FAILED', 'sql must be a non-empty string');
  if (PRAGMA_ANYWHERE.test(sql)) throw capabilityError('ERR_SQL_DENIED', 'PRAGMA is not allowed');
  return sql;
}

function bindingsOf(params: unknown): SqlValue[] {
  if (!Array.isArray(params)) throw capabilityError('ERR_SQL_FAILED', 'params must be an array');
  return params.map((value, index) => {
    if (typeof value === 'boolean') return value ? 1 : 0;
    if (value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
    throw capabilityError('ERR_SQL_FAILED', `params[${index}] must be a string, a finite number, a boolean or null`);
  });
}

/** The first keyword of `sql`, upper-cased, after leading whitespace and comments. */
export function leadingKeyword(sql: string): string {
  let rest = sql;
  for (;;) {
    const trimmed = rest.replace(/^\s+/, '');
    if (trimmed.startsWith('--')) {
      const end = trimmed.indexOf('\n');
      rest = end === -1 ? '' : trimmed.slice(end + 1);
    } else if (trimmed.startsWith('/*')) {
      const end = trimmed.indexOf('*/');
      rest = end === -1 ? '' : trimmed.slice(end + 2);
    } else {
      return (/^[A-Za-z]+/.exec(trimmed)?.[0] ?? '').toUpperCase();
    }
  }
}

function withDatabase<T>(grant: SqlGrant, database: unknown, readonly: boolean, use: (db: Database.Database, file: string) => T): T {
  if (typeof database !== 'string' || !Object.hasOwn(grant.databases, database)) {
    throw capabilityError('ERR_DATABASE_NOT_GRANTED', `database ${JSON.stringify(String(database))} is not granted`, {
      database: String(database),
    });
  }
  const file = grant.databases[database] as string;
  // Checked on the file SQLite opened: a database swapped for a link to Warden's own state is never read.
  const db = openUnprotected(grant, database, file, readonly, BUSY_TIMEOUT_MS);
  try {
    return use(db, file);
  } catch (error) {
    if (error instanceof CapabilityError) throw error;
    throw capabilityError('ERR_SQL_FAILED', `sql failed: ${error instanceof Error ? error.message : 'unknown error'}`, { database });
  } finally {
    db.close();
  }
}

function prepareSingle(db: Database.Database, sql: string): Statement {
  try {
    return db.prepare(sql);
  } catch (error) {
    if (error instanceof RangeError && /more than one statement/.test(error.message)) {
      throw capabilityError('ERR_SQL_DENIED', 'only one SQL statement per call is allowed');
    }
    throw error;
  }
}

function readRows(statement: Statement, bindings: SqlValue[]): SqlRow[] {
  const rows: SqlRow[] = [];
  for (const row of statement.iterate(...bindings)) {
    if (rows.length === MAX_QUERY_ROWS) throw capabilityError('ERR_SQL_FAILED', `query returns more than ${MAX_QUERY_ROWS} rows; add a LIMIT`);
    rows.push(plainRow(row as Record<string, unknown>));
  }
  return rows;
}

function plainRow(row: Record<string, unknown>): SqlRow {
  const result: SqlRow = {};
  for (const [column, value] of Object.entries(row)) {
    const plain = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : typeof value === 'bigint' ? value.toString() : (value as SqlValue);
    // defineProperty, not assignment: a column named "__proto__" must stay a column.
    Object.defineProperty(result, column, { value: plain, enumerable: true, writable: true, configurable: true });
  }
  return result;
}
