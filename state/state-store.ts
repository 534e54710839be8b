/**
 * Which state database this process uses, and opening it.
 *
 *   WARDEN_DATABASE_URL set   -> PostgreSQL, shared by every worker that names the same database.
 *                                The schema must be current (`warden db migrate`); a worker
 *                                refuses to start otherwise, unless WARDEN_DB_AUTO_MIGRATE=1.
 *   unset                     -> SQLite `<stateDir>/state.db`, migrated on open (the embedded
 *                                default needs no operator step), still refusing a newer schema.
 *
 * In PostgreSQL mode the credential stores, the published public keys and the custody ledger
 * live in this database (see state/README.md); in SQLite mode those keep their own files under
 * the state folder (identity.db, keys/, custody.db) as before, and state.db holds what is new.
 */
import { join } from 'node:path';
import { StateStoreError } from '../errors';
import { assertSchemaCurrent, migrate, schemaStatus, type SchemaStatus } from './migrations';
import { checkDatabaseUrl, describeDatabaseUrl, openPostgresDatabase } from './postgres-database';
import type { SqlDatabase } from './sql-database';
import { openSqliteDatabase } from './sqlite-database';
import { workerIdOf } from '../dataplane/shared-storage';

export const STATE_DB_FILE = 'state.db';

export type StateStoreConfig = { mode: 'postgres'; url: string; description: string } | { mode: 'sqlite'; file: string; description: string };

/** The state database `env` and `stateDir` name (nothing is opened). Throws ERR_STATE_CONFIG on a bad URL. */
export function stateStoreConfigOf(stateDir: string, env: NodeJS.ProcessEnv = process.env): StateStoreConfig {
  const url = env.WARDEN_DATABASE_URL?.trim();
  if (url !== undefined && url !== '') {
    checkDatabaseUrl(url);
    return { mode: 'postgres', url, description: describeDatabaseUrl(url) };
  }
  const file = join(stateDir, STATE_DB_FILE);
  return { mode: 'sqlite', file, description: file };
}

/** Whether `env` puts shared state in PostgreSQL. */
export function usesSharedDatabase(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.WARDEN_DATABASE_URL?.trim() ?? '') !== '';
}

/** This worker's name in shared tables (who published a key): see dataplane/shared-storage.ts. */
export { workerIdOf };

export interface StateStore {
  readonly config: StateStoreConfig;
  readonly db: SqlDatabase;
  /** True for PostgreSQL: other workers see what this one writes. */
  readonly shared: boolean;
  readonly workerId: string;
  readonly schema: SchemaStatus;
  close(): Promise<void>;
}

export interface OpenStateStoreOptions {
  stateDir: string;
  env?: NodeJS.ProcessEnv;
  /**
   * `check` (PostgreSQL default): refuse a schema that is not exactly current;
   * `auto` (SQLite default, or WARDEN_DB_AUTO_MIGRATE=1): apply pending migrations first.
   */
  migrations?: 'check' | 'auto';
}

/** Opens the state database of `stateDir` / `env` and checks (or brings) its schema to the current version. */
export async function openStateStore(options: OpenStateStoreOptions): Promise<StateStore> {
  const env = options.env ?? process.env;
  const config = stateStoreConfigOf(options.stateDir, env);
  const db = openStateDatabase(config);
  try {
    const auto = options.migrations ?? (config.mode === 'sqlite' || env.WARDEN_DB_AUTO_MIGRATE === '1' ? 'auto' : 'check');
    if (auto === 'auto') await migrate(db);
    const schema = await schemaStatus(db);
    assertSchemaCurrent(schema);
    return { config, db, shared: config.mode === 'postgres', workerId: workerIdOf(options.stateDir, env), schema, close: () => db.close() };
  } catch (error) {
    await db.close().catch(() => undefined);
    if (error instanceof StateStoreError) throw error;
    throw new StateStoreError('ERR_STATE_UNAVAILABLE', `cannot use the state database ${config.description}: ${(error as Error).message}`, {
      details: { database: config.description },
      cause: error,
      retryable: true,
    });
  }
}

/** Opens the database of `config` without looking at its schema (for `warden db`). */
export function openStateDatabase(config: StateStoreConfig): SqlDatabase {
  return config.mode === 'postgres' ? openPostgresDatabase(config.url) : openSqliteDatabase(config.file);
}
