/**
 * One small async SQL interface over the two databases Warden keeps shared state in: PostgreSQL
 * (`pg`, when `WARDEN_DATABASE_URL` is set) and SQLite (`better-sqlite3`, a file under the state
 * folder otherwise). Stores are written once against it.
 *
 * Conventions every statement follows, so the same text runs on both:
 * - parameters are `$1`, `$2`, … (the SQLite driver binds them by name);
 * - times are ISO-8601 TEXT or epoch-millisecond BIGINT, never `timestamptz`;
 * - 64-bit integers come back as JS numbers (a value past 2^53 is an error, not a rounding);
 * - binary data is `BYTEA` / `BLOB` and comes back as a Buffer.
 * Where the dialects differ (locks, upserts of generated ids, DDL) a store branches on `dialect`.
 *
 * Invariant: a `transaction` is all or nothing, and on SQLite it holds the write lock
 * (`BEGIN IMMEDIATE`) from its first statement, as a PostgreSQL transaction holds the row locks
 * it takes with `SELECT … FOR UPDATE`: read-modify-write sequences inside one are serialised by
 * the database, not by a process lock.
 */

export type SqlDialect = 'sqlite' | 'postgres';
export type SqlParam = string | number | bigint | boolean | null | Buffer;

export interface SqlExecutor {
  readonly dialect: SqlDialect;
  /** Every row of one statement. */
  all<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined>;
  /** Runs one statement; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly SqlParam[]): Promise<number>;
  /** Runs several `;`-separated statements without parameters (schema migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  /** Where the data lives, for messages: a file path, or the URL without its password. */
  readonly description: string;
  /**
   * Runs `fn` in one transaction on one connection; commits when it resolves, rolls back when it
   * throws (and rethrows). Do not use the outer database inside `fn`: use the `tx` it is given.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A 64-bit integer column as a JS number; throws rather than round. */
export function toSafeInteger(value: unknown, column = 'value'): number {
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new RangeError(`${column} is not a safe integer: ${String(value)}`);
  return n;
}
