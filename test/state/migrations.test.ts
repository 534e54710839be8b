import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbCommand } from '../../cli/commands/db';
import type { CliIo } from '../../cli/cli-io';
import { assertSchemaCurrent, migrate, MIGRATIONS, schemaStatus, SCHEMA_VERSION } from '../../state/migrations';
import { openPostgresDatabase } from '../../state/postgres-database';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import { openStateStore } from '../../state/state-store';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const dirs: string[] = [];
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-migrations-'));
  dirs.push(dir);
  return dir;
}

async function emptyPostgres(): Promise<TestDatabase> {
  const d = await createTestDatabase({ migrated: false });
  databases.push(d);
  return d;
}

const BACKENDS: [string, () => Promise<{ db: SqlDatabase; fresh: () => SqlDatabase }>][] = [
  [
    'PostgreSQL',
    async () => {
      const d = await emptyPostgres();
      return { db: d.db, fresh: () => openPostgresDatabase(d.url) };
    },
  ],
  [
    'SQLite',
    async () => {
      const file = join(tempDir(), 'state.db');
      return { db: openSqliteDatabase(file), fresh: () => openSqliteDatabase(file) };
    },
  ],
];

describe.each(BACKENDS)('schema migrations on %s', (_name, make) => {
  it('apply every migration once, in order, and are a no-op on a current database; an older database is brought forward', async () => {
    const { db } = await make();
    expect(await schemaStatus(db)).toMatchObject({ current: 0, latest: SCHEMA_VERSION, pending: MIGRATIONS.map((m) => ({ version: m.version, name: m.name })) });
    expect(() => assertSchemaCurrent({ database: 'x', dialect: db.dialect, current: 0, latest: SCHEMA_VERSION, applied: [], pending: [{ version: 1, name: 'x' }], unknown: [], altered: [] })).toThrow(
      expect.objectContaining({ code: 'ERR_STATE_SCHEMA_OUTDATED' }),
    );
    expect(await migrate(db)).toMatchObject({ from: 0, to: SCHEMA_VERSION, applied: MIGRATIONS.map((m) => ({ version: m.version })) });
    expect(await migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
    const status = await schemaStatus(db);
    expect(status).toMatchObject({ current: SCHEMA_VERSION, pending: [], unknown: [], altered: [] });
    expect(() => assertSchemaCurrent(status)).not.toThrow();
    // The ledger head exists from the start: appends never race to create it.
    expect(await db.get('SELECT tree_size FROM warden_custody_head WHERE id = 0')).toEqual({ tree_size: 0 });
    // A database left at version 1 (an older Warden) keeps its rows and gains what came after.
    await db.run("INSERT INTO warden_revoked_grants (grant_id, reason, revoked_at) VALUES ('g-old', 'kept', 1)");
    // Every table a later migration creates goes, newest first (their indexes with them).
    const later = MIGRATIONS.filter((m) => m.version > 1).flatMap((m) => [...(db.dialect === 'postgres' ? m.postgres : m.sqlite).matchAll(/CREATE TABLE (\w+)/g)].map((t) => t[1]!));
    for (const table of later.reverse()) await db.exec(`DROP TABLE ${table}`);
    await db.run('DELETE FROM warden_schema_migrations WHERE version > 1');
    expect(await migrate(db)).toMatchObject({ from: 1, to: SCHEMA_VERSION, applied: MIGRATIONS.filter((m) => m.version > 1).map((m) => ({ version: m.version })) });
    expect(await db.get("SELECT reason FROM warden_revoked_grants WHERE grant_id = 'g-old'")).toEqual({ reason: 'kept' });
    expect(await db.all('SELECT call_id FROM warden_undo_calls')).toEqual([]);
    await db.close();
  });

  it('run from several connections at once: exactly one applies, the others find it done', async () => {
    const { db, fresh } = await make();
    const others = [fresh(), fresh()];
    const results = await Promise.all([db, ...others].map((d) => migrate(d)));
    expect(results.map((r) => r.applied.length).sort()).toEqual([0, 0, MIGRATIONS.length]);
    for (const d of [db, ...others]) await d.close();
  });

  it('refuse a database migrated by a newer Warden, or with different SQL for a known version', async () => {
    const { db } = await make();
    await migrate(db);
    await db.run("INSERT INTO warden_schema_migrations (version, name, checksum, applied_at) VALUES (999, 'from the future', 'x', 'now')");
    const newer = await schemaStatus(db);
    expect(newer.unknown).toEqual([999]);
    expect(() => assertSchemaCurrent(newer)).toThrow(expect.objectContaining({ code: 'ERR_STATE_SCHEMA_UNKNOWN' }));
    await expect(migrate(db)).rejects.toMatchObject({ code: 'ERR_STATE_SCHEMA_UNKNOWN' });
    await db.run('DELETE FROM warden_schema_migrations WHERE version = 999');
    await db.run("UPDATE warden_schema_migrations SET checksum = 'edited' WHERE version = 1");
    await expect(migrate(db)).rejects.toMatchObject({ code: 'ERR_STATE_SCHEMA_UNKNOWN', message: expect.stringMatching(/different SQL for version 1/) });
    await db.close();
  });
});

describe('a worker against the shared database', () => {
  it('refuses to start on an unmigrated or newer schema, and starts once `warden db migrate` ran', async () => {
    const d = await emptyPostgres();
    const stateDir = tempDir();
    const env = { WARDEN_DATABASE_URL: d.url };
    await expect(openStateStore({ stateDir, env })).rejects.toMatchObject({ code: 'ERR_STATE_SCHEMA_OUTDATED', message: expect.stringMatching(/run `warden db migrate`/) });
    const run = io({ ...env, WARDEN_STATE_DIR: stateDir });
    expect(await dbCommand(['status'], run)).toBe(1);
    expect(run.out).toMatch(new RegExp(`schema version 0, this Warden knows ${SCHEMA_VERSION}[\\s\\S]*pending  1`));
    expect(await dbCommand(['migrate'], run)).toBe(0);
    expect(run.out).toContain(`migrated 0 -> ${SCHEMA_VERSION}`);
    const store = await openStateStore({ stateDir, env });
    expect(store).toMatchObject({ shared: true, schema: { current: SCHEMA_VERSION } });
    await store.db.run("INSERT INTO warden_schema_migrations (version, name, checksum, applied_at) VALUES ($1, 'newer', 'x', 'now')", [SCHEMA_VERSION + 1]);
    await store.close();
    await expect(openStateStore({ stateDir, env })).rejects.toMatchObject({ code: 'ERR_STATE_SCHEMA_UNKNOWN' });
    const again = io({ ...env, WARDEN_STATE_DIR: stateDir });
    expect(await dbCommand(['migrate'], again)).toBe(1);
    expect(again.err).toMatch(new RegExp(`ERR_STATE_SCHEMA_UNKNOWN: the state database postgres://postgres@.*schema version ${SCHEMA_VERSION + 1}, newer than this Warden knows \\(${SCHEMA_VERSION}\\)`));
  });

  it('SQLite state.db is migrated on open (the embedded default needs no step)', async () => {
    const stateDir = tempDir();
    const store = await openStateStore({ stateDir, env: {} });
    expect(store).toMatchObject({ shared: false, config: { mode: 'sqlite', file: join(stateDir, 'state.db') }, schema: { current: SCHEMA_VERSION } });
    await store.close();
  });

  it.each([
    ['mysql://u@h/d', /must be a postgres:\/\/ or postgresql:\/\/ URL/],
    ['postgres://u:secret@h', /names no database/],
    ['not a url', /not a URL/],
  ])('rejects WARDEN_DATABASE_URL=%s with exit 2 and never prints the password', async (url, message) => {
    const run = io({ WARDEN_DATABASE_URL: url, WARDEN_STATE_DIR: tempDir() });
    expect(await dbCommand(['status'], run)).toBe(2);
    expect(run.err).toMatch(message);
    expect(run.err).not.toContain('secret');
  });

  it('reports an unreachable server as ERR_STATE_UNAVAILABLE without the password', async () => {
    const run = io({ WARDEN_DATABASE_URL: 'postgres://warden:hunter2@127.0.0.1:1/warden', WARDEN_STATE_DIR: tempDir() });
    expect(await dbCommand(['status'], run)).toBe(1);
    expect(run.err).toMatch(/ERR_STATE_UNAVAILABLE: the state database postgres:\/\/warden@127\.0\.0\.1:1\/warden failed/);
    expect(run.err).not.toContain('hunter2');
  });

  it('bad usage exits 2', async () => {
    for (const argv of [[], ['drop'], ['migrate', 'now']]) {
      const run = io({});
      expect(await dbCommand(argv, run)).toBe(2);
      expect(run.err).toMatch(/usage: warden db/);
    }
  });
});

function io(env: NodeJS.ProcessEnv): CliIo & { out: string; err: string } {
  const captured = { out: '', err: '', stdout: (t: string) => void (captured.out += t), stderr: (t: string) => void (captured.err += t), env };
  return captured;
}

