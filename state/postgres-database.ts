/**
 * The PostgreSQL side of {@link SqlDatabase}, on a `pg` connection pool.
 *
 * Invariants: the URL's password never appears in a message (`description` drops it); a lost
 * connection surfaces as a retryable `ERR_STATE_UNAVAILABLE`, never as an unhandled 'error' event
 * that would kill the worker; BIGINT columns come back as numbers and refuse to round.
 */
import type pg from 'pg';
import { StateStoreError } from '../errors';
import { toSafeInteger, type SqlDatabase, type SqlExecutor, type SqlParam } from './sql-database';

const INT8_OID = 20;

export interface OpenPostgresDatabaseOptions {
  /** Most connections this process opens (default 10, or `WARDEN_DATABASE_POOL_MAX`). */
  maxConnections?: number;
  /** `application_name` the server shows for these connections. */
  applicationName?: string;
  /** Milliseconds to wait for a connection (default 10 000). */
  connectTimeoutMs?: number;
}

/** `postgres://user@host:port/db`: the URL without its password or query, for messages. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.username === '' ? '' : `${decodeURIComponent(parsed.username)}@`}${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparseable database URL)';
  }
}

/** Checks a `WARDEN_DATABASE_URL`; throws ERR_STATE_CONFIG naming what is wrong (never the password). */
export function checkDatabaseUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StateStoreError('ERR_STATE_CONFIG', 'WARDEN_DATABASE_URL is not a URL (expected postgres://user:password@host:port/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StateStoreError('ERR_STATE_CONFIG', `WARDEN_DATABASE_URL must be a postgres:// or postgresql:// URL, not ${parsed.protocol}//…`);
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) throw new StateStoreError('ERR_STATE_CONFIG', 'WARDEN_DATABASE_URL names no host');
  if (parsed.pathname === '' || parsed.pathname === '/') throw new StateStoreError('ERR_STATE_CONFIG', 'WARDEN_DATABASE_URL names no database (…/<database>)');
}

function unavailable(description: string, error: unknown): StateStoreError {
  if (error instanceof StateStoreError) return error;
  return new StateStoreError('ERR_STATE_UNAVAILABLE', `the state database ${description} failed: ${(error as Error).message}`, {
    details: { database: description, ...(typeof (error as { code?: unknown }).code === 'string' ? { sqlState: (error as { code: string }).code } : {}) },
    cause: error,
    retryable: true,
  });
}

/** Connection-level failures (not SQL errors a store may want to inspect). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return true;
  return code.startsWith('08') || code.startsWith('57P') || code === '53300' || /^E[A-Z]+$/.test(code);
}

type Queryable = Pick<pg.PoolClient, 'query'>;

class PostgresExecutor implements SqlExecutor {
  readonly dialect = 'postgres' as const;

  constructor(
    protected readonly target: Queryable,
    readonly description: string,
  ) {}

  protected async query<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    try {
      return await this.target.query<T & pg.QueryResultRow>(sql, params === undefined ? [] : (params as unknown[]));
    } catch (error) {
      throw isConnectionError(error) ? unavailable(this.description, error) : error;
    }
  }

  async all<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return (await this.query<T>(sql, params)).rows;
  }

  async get<T extends object>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return (await this.query<T>(sql, params)).rows[0];
  }

  async run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  async exec(sql: string): Promise<void> {
    await this.query(sql);
  }
}

class PostgresDatabase extends PostgresExecutor implements SqlDatabase {
  constructor(
    private readonly pool: pg.Pool,
    description: string,
  ) {
    super(pool, description);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailable(this.description, error);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresExecutor(client, this.description));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError;
      }
      throw isConnectionError(error) && (error as { code?: unknown }).code !== undefined ? unavailable(this.description, error) : error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.release(broken === undefined ? undefined : (broken as Error));
    }
  }

  private ended: Promise<void> | undefined;

  /** Ends the pool; closing again is a no-op. */
  close(): Promise<void> {
    this.ended ??= this.pool.end();
    return this.ended;
  }
}

/** Opens a pool to the PostgreSQL database at `url` (connections are made on first use). */
export function openPostgresDatabase(url: string, options: OpenPostgresDatabaseOptions = {}): SqlDatabase {
  checkDatabaseUrl(url);
  const description = describeDatabaseUrl(url);
  const max = options.maxConnections ?? (Number(process.env.WARDEN_DATABASE_POOL_MAX) || 10);
  // Loaded on first use: a process on SQLite (e.g. `warden run` as a client) never pays for `pg`.
  const { Pool, types } = require('pg') as typeof pg;
  const pool = new Pool({
    connectionString: url,
    max,
    application_name: options.applicationName ?? 'warden',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8_OID ? (value: string) => toSafeInteger(value, 'bigint') : types.getTypeParser(oid, format as 'text')) as typeof types.getTypeParser,
    },
  });
  // An idle connection dropped by the server must not crash the process: the next query reconnects.
  pool.on('error', () => undefined);
  return new PostgresDatabase(pool, description);
}
