/**
 * SQLite access for tools, one granted database file at a time.
 *
 * Invariants: only databases named in the grant are opened (by the path the grant maps the name
 * to, never a path a tool supplies); each call opens the file (`fileMustExist`) and closes it;
 * `query` runs exactly one read-only SELECT/WITH/VALUES statement on a read-only connection;
 * `exec` runs exactly one INSERT/UPDATE/DELETE/REPLACE (optionally behind WITH) in a
 * transaction. Schema changes, ATTACH/DETACH, PRAGMA (also as `pragma_*` table functions),
 * transaction control and multiple statements are refused with ERR_SQL_DENIED.
 *
 * Limit: SQLite cannot be interrupted from here, so a query that never ends blocks the sandbox
 * host; the worker-side deadline in SandboxClient kills and replaces the host in that case.
 */
import Database from 'better-sqlite3';
import { CapabilityError } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { capabilityError } from './capability-error';

/** Most rows `sql.query` returns. */
export const MAX_QUERY_ROWS = 10_000;
/** How long a call waits for a lock held by another connection. */
const BUSY_TIMEOUT_MS = 1000;

export type SqlGrant = NonNullable<CapabilityGrant['sql']>;
/** A value as it comes back from a query; BLOBs are returned as base64 strings. */
export type SqlValue = string | number | null;
export type SqlRow = Record<string, SqlValue>;

export interface SqlCapability {
  query(database: unknown, sql: unknown, params?: unknown): SqlRow[];
  exec(database: unknown, sql: unknown, params?: unknown): { changes: number };
}

type Statement = Database.Statement<unknown[]>;

const QUERY_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES']);
const EXEC_KEYWORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH']);
const PRAGMA_ANYWHERE = /\bpragma(_\w*)?\b/i;

/** `sql.query` and `sql.exec` over the databases of `grant`. Whether each is granted is the caller's business. */
export function createSqlCapability(grant: SqlGrant): SqlCapability {
  return {
    query(database, sql, params = []) {
      const text = sqlText(sql);
      const bindings = bindingsOf(params);
      return withDatabase(grant, database, true, (db) => {
        const statement = prepareSingle(db, text);
        if (!QUERY_KEYWORDS.has(leadingKeyword(text)) || !statement.reader || !statement.readonly) {
          throw capabilityError('ERR_SQL_DENIED', 'sql.query runs a single read statement (SELECT, WITH … SELECT, VALUES); use sql.exec to change data');
        }
        return readRows(statement, bindings);
      });
    },
    exec(database, sql, params = []) {
      const text = sqlText(sql);
      const bindings = bindingsOf(params);
      return withDatabase(grant, database, false, (db) => {
        const statement = prepareSingle(db, text);
        if (!EXEC_KEYWORDS.has(leadingKeyword(text)) || statement.reader || statement.readonly) {
          throw capabilityError('ERR_SQL_DENIED', 'sql.exec runs a single INSERT, UPDATE, DELETE or REPLACE without RETURNING; schema changes are refused');
        }
        const run = db.transaction(() => statement.run(...bindings));
        return { changes: run().changes };
      });
    },
  };
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

function withDatabase<T>(grant: SqlGrant, database: unknown, readonly: boolean, use: (db: Database.Database) => T): T {
  if (typeof database !== 'string' || !Object.hasOwn(grant.databases, database)) {
    throw capabilityError('ERR_DATABASE_NOT_GRANTED', `database ${JSON.stringify(String(database))} is not granted`, {
      database: String(database),
    });
  }
  const file = grant.databases[database] as string;
  let db: Database.Database;
  try {
    db = new Database(file, { readonly, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch {
    throw capabilityError('ERR_SQL_FAILED', `database ${JSON.stringify(database)} cannot be opened`, { database });
  }
  try {
    return use(db);
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
