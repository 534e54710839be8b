/**
 * A fresh, migrated PostgreSQL database for a benchmark: on WARDEN_BENCH_DATABASE_URL's server,
 * else on the one `.ci/postgres.sh start` runs on 127.0.0.1:55432. Undefined when neither works
 * (the benchmark then says it skipped).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { migrate } from '../../state/migrations';
import { openPostgresDatabase } from '../../state/postgres-database';
import type { SqlDatabase } from '../../state/sql-database';

export async function benchDatabase(): Promise<{ url: string; db: SqlDatabase; drop(): Promise<void> } | undefined> {
  let server = process.env.WARDEN_BENCH_DATABASE_URL?.trim();
  if (!server) {
    try {
      server = execFileSync('bash', [join(__dirname, '..', '..', '.ci', 'postgres.sh'), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop();
    } catch {
      return undefined;
    }
  }
  if (!server) return undefined;
  const admin = openPostgresDatabase(server, { maxConnections: 1 });
  const name = `warden_bench_${Date.now()}`;
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
  } catch {
    await admin.close();
    return undefined;
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  const db = openPostgresDatabase(url.toString());
  await migrate(db);
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.close();
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}
