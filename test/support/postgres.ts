/**
 * A real PostgreSQL for tests. `WARDEN_TEST_DATABASE_URL` names a server (any database on it, as a
 * superuser or a user allowed to CREATE DATABASE); when it is unset, `.ci/postgres.sh start` starts
 * (or reuses) Debian's PostgreSQL on 127.0.0.1:${WARDEN_PG_PORT:-55432}. Each caller gets a fresh
 * database of its own, dropped by `drop()`, so test files never see each other's rows.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../state/migrations';
import { openPostgresDatabase } from '../../state/postgres-database';
import type { SqlDatabase } from '../../state/sql-database';

let adminUrl: string | undefined;

/** The URL of the test server's maintenance database, starting the server if needed. */
export function testServerUrl(): string {
  if (adminUrl !== undefined) return adminUrl;
  const given = process.env.WARDEN_TEST_DATABASE_URL?.trim();
  adminUrl =
    given !== undefined && given !== ''
      ? given
      : execFileSync('bash', [join(__dirname, '..', '..', '.ci', 'postgres.sh'), 'start'], { encoding: 'utf8', timeout: 300_000 }).trim().split('\n').pop()!;
  return adminUrl;
}

export interface TestDatabase {
  url: string;
  name: string;
  /** A pool on it, migrated to the current schema (closed by `drop`). */
  db: SqlDatabase;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testServerUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new empty database (migrated unless `migrated: false`). */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `warden_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(testServerUrl());
  url.pathname = `/${name}`;
  const db = openPostgresDatabase(url.toString());
  if (options.migrated !== false) await migrate(db);
  let dropped = false;
  return {
    url: url.toString(),
    name,
    db,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.close();
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
