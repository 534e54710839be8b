/**
 * deploy/postgres-init/10-warden-database.sh, run for real against PostgreSQL (no Docker needed:
 * it is what the postgres image runs on first start): it creates Warden's own login and a database
 * that login owns, `warden db migrate` can then create every table as that login alone, and the
 * login has no superuser or database-creation rights.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dbCommand } from '../../cli/commands/db';
import { testServerUrl } from '../support/postgres';

const SCRIPT = join(__dirname, '..', '..', 'deploy', 'postgres-init', '10-warden-database.sh');
const suffix = randomBytes(4).toString('hex');
const user = `warden_${suffix}`;
const database = `warden_db_${suffix}`;
const stateDir = mkdtempSync(join(tmpdir(), 'warden-pg-init-'));

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testServerUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  await admin(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await client.query(`DROP ROLE IF EXISTS ${user}`);
  });
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the postgres init script of docker-compose', () => {
  it('creates a login and a database it owns, in which `warden db migrate` creates every table as that login', async () => {
    const server = new URL(testServerUrl());
    execFileSync('bash', [SCRIPT], {
      env: {
        PATH: process.env.PATH,
        PGHOST: server.hostname,
        PGPORT: server.port || '5432',
        POSTGRES_USER: decodeURIComponent(server.username),
        WARDEN_DB_USER: user,
        WARDEN_DB_NAME: database,
        WARDEN_DB_PASSWORD: 'init-test-password',
      },
      stdio: 'pipe',
    });
    const role = await admin((client) => client.query('SELECT rolsuper, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = $1', [user]));
    expect(role.rows).toEqual([{ rolsuper: false, rolcreatedb: false, rolcanlogin: true }]);
    const url = new URL(testServerUrl());
    url.username = user;
    url.password = 'init-test-password';
    url.pathname = `/${database}`;
    const out = { out: '', err: '', stdout: (t: string) => void (out.out += t), stderr: (t: string) => void (out.err += t), env: { WARDEN_DATABASE_URL: url.toString(), WARDEN_STATE_DIR: stateDir } };
    expect(await dbCommand(['migrate'], out)).toBe(0);
    expect(out.err).toBe('');
    const owners = await admin(async (client) => {
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      try {
        return (await c.query("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).rows;
      } finally {
        await c.end();
      }
    });
    expect(owners).toEqual([{ tableowner: user }]);
  });
});
