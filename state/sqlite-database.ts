/**
 * The SQLite side of {@link SqlDatabase}: one better-sqlite3 connection to a file (WAL, 0600).
 *
 * better-sqlite3 is synchronous but `transaction(fn)` awaits `fn`, so other async work of this
 * process could otherwise slip its statements into an open transaction on the shared connection.
 * Every operation therefore takes an in-process turn (a promise queue), and a transaction holds
 * its turn from BEGIN IMMEDIATE to COMMIT. Across processes SQLite's own write lock serialises.
 *
 * One process keeps ONE connection per file, however often the file is opened: with two, a
 * transaction awaiting inside `fn` would hold the write lock while the other connection's
 * BEGIN IMMEDIATE waited synchronously for it on the same thread, which can never end.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StateStoreError } from '../errors';
import type { SqlDatabase, SqlExecutor, SqlParam } from './sql-database';

export interface OpenSqliteDatabaseOptions {
  /** Milliseconds to wait for another process's write lock (default 15 000). */
  busyTimeoutMs?: number;
  /** `full` fsyncs every commit (survives a power cut); default `normal` (survives a killed process). */
  synchronous?: 'normal' | 'full';
}

type Bindings = Record<string, SqlParam>;

function bindingsOf(params: readonly SqlParam[] | undefined): Bindings[] {
  if (params === undefined || params.length === 0) return [];
  const named: Bindings = {};
  params.forEach((value, index) => {
    named[String(index + 1)] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  });
  return [named];
}

class SqliteExecutor implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(protected readonly db: Database.Database) {}

  protected prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async all<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.prepare(sql).all(...bindingsOf(params)) as T[];
  }

  async get<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.prepare(sql).get(...bindingsOf(params)) as T | undefined;
  }

  async run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.prepare(sql).run(...bindingsOf(params)).changes;
  }

  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }
}

/** The process's one connection to a file, and its queue of turns. */
interface SharedConnection {
  db: Database.Database;
  queue: Promise<unknown>;
  handles: number;
}

const connections = new Map<string, SharedConnection>();

class SqliteDatabase extends SqliteExecutor implements SqlDatabase {
  private closed = false;

  constructor(
    private readonly connection: SharedConnection,
    private readonly key: string,
    readonly description: string,
  ) {
    super(connection.db);
  }

  /** Runs `fn` when every earlier operation of this process on this file has finished. */
  private turn<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TypeError(`the state database ${this.description} is closed`));
    const result = this.connection.queue.then(fn, fn);
    this.connection.queue = result.catch(() => undefined);
    return result;
  }

  override all<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.turn(() => super.all<T>(sql, params));
  }

  override get<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.turn(() => super.get<T>(sql, params));
  }

  override run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.turn(() => super.run(sql, params));
  }

  override exec(sql: string): Promise<void> {
    return this.turn(() => super.exec(sql));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.turn(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(new SqliteExecutor(this.db));
        this.db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.turn(async () => {
      this.closed = true;
      this.connection.handles -= 1;
      if (this.connection.handles === 0) {
        connections.delete(this.key);
        this.db.close();
      }
    });
  }
}

/**
 * Opens (creating, 0600) a SQLite state database at `file`. Handles to one file share the
 * process's one connection (the options of the first open apply); each handle is closed on its own.
 */
export function openSqliteDatabase(file: string, options: OpenSqliteDatabaseOptions = {}): SqlDatabase {
  try {
    fs.mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Create the file 0600 first: SQLite gives its -wal and -shm files the database file's mode.
    fs.closeSync(fs.openSync(file, 'a', 0o600));
    fs.chmodSync(file, 0o600);
    const key = fs.realpathSync(file);
    let connection = connections.get(key);
    if (connection === undefined) {
      const db = new Database(file, { timeout: options.busyTimeoutMs ?? 15_000 });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      connection = { db, queue: Promise.resolve(), handles: 0 };
      connections.set(key, connection);
    }
    connection.handles += 1;
    return new SqliteDatabase(connection, key, file);
  } catch (error) {
    throw new StateStoreError('ERR_STATE_UNAVAILABLE', `cannot open the state database ${file}: ${(error as Error).message}`, {
      details: { file },
      cause: error,
      retryable: true,
    });
  }
}
