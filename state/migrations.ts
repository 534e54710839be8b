/**
 * The versioned schema of Warden's state database, and the runner `warden db migrate` uses.
 *
 * Invariants:
 * - Migrations are append-only: version N's SQL never changes once released (its checksum is
 *   stored when it is applied, and a database whose recorded checksum differs is refused), so
 *   every database at version N has the same schema.
 * - `migrate` applies every pending migration in one transaction under a database-wide lock
 *   (PostgreSQL advisory lock; SQLite's write lock), so two operators migrating at once cannot
 *   interleave, and a failed migration leaves the previous version intact.
 * - A process refuses a database whose version it does not know (newer than its code:
 *   ERR_STATE_SCHEMA_UNKNOWN) or that is behind (ERR_STATE_SCHEMA_OUTDATED), instead of writing
 *   rows a different schema would misread.
 *
 * Adding a table: append a migration (next version, a short name, the SQL for both dialects
 * following the conventions in sql-database.ts), never edit an earlier one. See state/README.md.
 */
import { createHash } from 'node:crypto';
import { StateStoreError } from '../errors';
import type { SqlDatabase, SqlDialect, SqlExecutor } from './sql-database';

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const GENESIS_HASH = '0'.repeat(64);

/** Version 1: everything workers share (see state/README.md for what each table holds). */
const V1_COMMON = (t: { blob: string; serial: string }) => `
CREATE TABLE warden_used_jti (
  jti TEXT PRIMARY KEY,
  exp BIGINT NOT NULL
);
CREATE INDEX warden_used_jti_exp ON warden_used_jti (exp);
CREATE TABLE warden_grants (
  grant_id TEXT PRIMARY KEY,
  parent_id TEXT,
  token TEXT NOT NULL,
  claims TEXT NOT NULL,
  hash TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX warden_grants_expiry ON warden_grants (expires_at);
CREATE TABLE warden_revoked_grants (
  grant_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  revoked_at BIGINT NOT NULL,
  expires_at BIGINT
);
CREATE TABLE warden_public_keys (
  kid TEXT PRIMARY KEY,
  purpose TEXT NOT NULL CHECK (purpose IN ('credential', 'custody')),
  jwk TEXT NOT NULL,
  worker TEXT NOT NULL,
  published_at TEXT NOT NULL,
  verify_until TEXT
);
CREATE TABLE warden_custody_records (
  seq BIGINT PRIMARY KEY,
  record_key TEXT NOT NULL UNIQUE,
  task_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  signature TEXT NOT NULL,
  kid TEXT NOT NULL,
  appended_at TEXT NOT NULL,
  trace_id TEXT
);
CREATE INDEX warden_custody_records_task ON warden_custody_records (task_id, seq);
CREATE INDEX warden_custody_records_trace ON warden_custody_records (trace_id);
CREATE TABLE warden_custody_checkpoints (
  id ${t.serial},
  tree_size BIGINT NOT NULL,
  root_hash TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  reason TEXT NOT NULL,
  task_id TEXT,
  kid TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE INDEX warden_custody_checkpoints_size ON warden_custody_checkpoints (tree_size);
CREATE TABLE warden_custody_head (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  tree_size BIGINT NOT NULL,
  tail_hash TEXT NOT NULL,
  subtree_roots TEXT NOT NULL
);
INSERT INTO warden_custody_head (id, tree_size, tail_hash, subtree_roots) VALUES (0, 0, '${GENESIS_HASH}', '[]');
CREATE TABLE warden_blobs (
  sha256 TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  content ${t.blob} NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE warden_task_placements (
  task_key TEXT PRIMARY KEY,
  root_workflow_id TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  task_queue TEXT,
  overlay_id TEXT,
  workspace TEXT,
  state TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE warden_snapshot_manifests (
  task_key TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('commit', 'pre-task')),
  manifest TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (task_key, kind)
);
`;

/** Version 2: the SQL undo journal, shipped from each worker's journal file (recovery/shared-journal.ts). */
const V2_UNDO_JOURNAL = `
CREATE TABLE warden_undo_calls (
  journal_key TEXT NOT NULL,
  call_id TEXT NOT NULL,
  base_call_id TEXT NOT NULL,
  database_name TEXT NOT NULL,
  database_path TEXT NOT NULL,
  table_name TEXT NOT NULL,
  op TEXT NOT NULL,
  sql TEXT NOT NULL,
  changes BIGINT NOT NULL,
  rows_changed BIGINT NOT NULL,
  recorded_at TEXT NOT NULL,
  shipped_by TEXT NOT NULL,
  PRIMARY KEY (journal_key, call_id)
);
CREATE TABLE warden_undo_rows (
  journal_key TEXT NOT NULL,
  call_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  old_rowid TEXT,
  new_rowid TEXT,
  columns TEXT NOT NULL,
  before TEXT,
  after TEXT,
  PRIMARY KEY (journal_key, call_id, seq)
);
`;

/** Version 3: what the monitor learns and raises (monitoring/baseline-store.ts, monitoring/alert-store.ts). */
const V3_MONITORING = `
CREATE TABLE warden_baselines (
  agent TEXT PRIMARY KEY,
  tasks BIGINT NOT NULL,
  baseline TEXT NOT NULL,
  learned_at TEXT NOT NULL,
  learned_by TEXT NOT NULL
);
CREATE TABLE warden_alerts (
  alert_id TEXT PRIMARY KEY,
  root_workflow_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  step_index INTEGER,
  score INTEGER NOT NULL,
  response TEXT NOT NULL,
  source TEXT NOT NULL,
  alert TEXT NOT NULL,
  detected_at TEXT NOT NULL,
  blocked_at TEXT,
  delivery TEXT
);
CREATE INDEX warden_alerts_task ON warden_alerts (root_workflow_id, detected_at);
CREATE INDEX warden_alerts_time ON warden_alerts (detected_at);
`;

/**
 * Version 4: the approver registry (identity/approver-registry.ts): public keys only; a removal
 * keeps the row (revoked_at) so a name is never issued twice. (Version 3 is the monitor's.)
 */
const V4_APPROVERS = `
CREATE TABLE warden_approvers (
  name TEXT PRIMARY KEY,
  kid TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  key_file TEXT,
  added_at BIGINT NOT NULL,
  revoked_at BIGINT
);
`;

/**
 * Version 5: worker-id leases (dataplane/worker-lease.ts): at most one state folder's workers hold
 * a worker id (and poll its data-plane queue) at a time; a lease not renewed expires.
 */
const V5_WORKER_LEASES = `
CREATE TABLE warden_worker_leases (
  worker_id TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  instance TEXT NOT NULL,
  description TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
`;

/** Every migration, oldest first. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'shared state: credentials, public keys, custody ledger, blobs, task placements, snapshot manifests',
    sqlite: V1_COMMON({ blob: 'BLOB', serial: 'INTEGER PRIMARY KEY' }),
    postgres: V1_COMMON({ blob: 'BYTEA', serial: 'BIGSERIAL PRIMARY KEY' }),
  },
  { version: 2, name: 'SQL undo journal shared across workers', sqlite: V2_UNDO_JOURNAL, postgres: V2_UNDO_JOURNAL },
  { version: 3, name: 'monitoring: agent baselines and alerts', sqlite: V3_MONITORING, postgres: V3_MONITORING },
  { version: 4, name: 'approver registry shared across workers', sqlite: V4_APPROVERS, postgres: V4_APPROVERS },
  { version: 5, name: 'worker-id leases', sqlite: V5_WORKER_LEASES, postgres: V5_WORKER_LEASES },
];

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

const MIGRATIONS_TABLE = 'warden_schema_migrations';
/** Key of the PostgreSQL advisory lock held while migrating ("warden" in ASCII). */
const MIGRATION_LOCK = 0x77617264656e;

export function migrationChecksum(migration: Migration, dialect: SqlDialect): string {
  return createHash('sha256').update(dialect === 'postgres' ? migration.postgres : migration.sqlite).digest('hex');
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: string;
}

export interface SchemaStatus {
  database: string;
  dialect: SqlDialect;
  /** Highest applied version (0 on an empty database). */
  current: number;
  /** What this code knows. */
  latest: number;
  applied: AppliedMigration[];
  /** Versions this code would apply. */
  pending: { version: number; name: string }[];
  /** Applied versions this code does not know (the database was migrated by newer code). */
  unknown: number[];
  /** Applied versions whose SQL differs from this code's. */
  altered: number[];
}

async function ensureMigrationsTable(db: SqlExecutor): Promise<void> {
  await db.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`);
}

async function readApplied(db: SqlExecutor): Promise<AppliedMigration[]> {
  const exists =
    db.dialect === 'postgres'
      ? await db.get<{ t: string | null }>(`SELECT to_regclass('${MIGRATIONS_TABLE}')::text AS t`)
      : await db.get<{ t: string | null }>(`SELECT name AS t FROM sqlite_schema WHERE type = 'table' AND name = '${MIGRATIONS_TABLE}'`);
  if (exists === undefined || exists.t === null) return [];
  const rows = await db.all<{ version: number; name: string; checksum: string; applied_at: string }>(
    `SELECT version, name, checksum, applied_at FROM ${MIGRATIONS_TABLE} ORDER BY version`,
  );
  return rows.map((r) => ({ version: Number(r.version), name: r.name, checksum: r.checksum, appliedAt: r.applied_at }));
}

function statusOf(db: SqlDatabase | (SqlExecutor & { description: string }), applied: AppliedMigration[]): SchemaStatus {
  const known = new Map(MIGRATIONS.map((m) => [m.version, m]));
  const appliedVersions = new Set(applied.map((a) => a.version));
  return {
    database: db.description,
    dialect: db.dialect,
    current: applied.reduce((max, a) => Math.max(max, a.version), 0),
    latest: SCHEMA_VERSION,
    applied,
    pending: MIGRATIONS.filter((m) => !appliedVersions.has(m.version)).map((m) => ({ version: m.version, name: m.name })),
    unknown: applied.filter((a) => !known.has(a.version)).map((a) => a.version),
    altered: applied.filter((a) => known.has(a.version) && migrationChecksum(known.get(a.version)!, db.dialect) !== a.checksum).map((a) => a.version),
  };
}

/** Where the database's schema stands against this code (reads only). */
export async function schemaStatus(db: SqlDatabase): Promise<SchemaStatus> {
  return statusOf(db, await readApplied(db));
}

/**
 * Throws unless the database is exactly at the schema this code knows:
 * ERR_STATE_SCHEMA_UNKNOWN when it holds migrations this code does not know or whose SQL differs,
 * ERR_STATE_SCHEMA_OUTDATED when migrations are pending (`warden db migrate`).
 */
export function assertSchemaCurrent(status: SchemaStatus): void {
  if (status.unknown.length > 0 || status.current > status.latest) {
    throw new StateStoreError(
      'ERR_STATE_SCHEMA_UNKNOWN',
      `the state database ${status.database} is at schema version ${status.current}, newer than this Warden knows (${status.latest}); upgrade Warden on this machine`,
      { details: { current: status.current, latest: status.latest, unknown: status.unknown } },
    );
  }
  if (status.altered.length > 0) {
    throw new StateStoreError(
      'ERR_STATE_SCHEMA_UNKNOWN',
      `the state database ${status.database} was migrated with different SQL for version${status.altered.length === 1 ? '' : 's'} ${status.altered.join(', ')} than this Warden's`,
      { details: { altered: status.altered } },
    );
  }
  if (status.pending.length > 0) {
    throw new StateStoreError(
      'ERR_STATE_SCHEMA_OUTDATED',
      `the state database ${status.database} is at schema version ${status.current}; this Warden needs ${status.latest}: run \`warden db migrate\``,
      { details: { current: status.current, latest: status.latest, pending: status.pending.map((p) => p.version) } },
    );
  }
}

export interface MigrateResult {
  from: number;
  to: number;
  applied: { version: number; name: string }[];
}

/**
 * Applies every pending migration, oldest first, in one transaction under the migration lock.
 * Refuses (ERR_STATE_SCHEMA_UNKNOWN) a database that is newer than this code or was migrated
 * with different SQL. Running it on a current database changes nothing.
 */
export async function migrate(db: SqlDatabase, now: () => Date = () => new Date()): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.run('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await ensureMigrationsTable(tx);
    const status = statusOf({ dialect: tx.dialect, description: db.description, all: tx.all.bind(tx), get: tx.get.bind(tx), run: tx.run.bind(tx), exec: tx.exec.bind(tx) }, await readApplied(tx));
    if (status.unknown.length > 0 || status.altered.length > 0) assertSchemaCurrent(status);
    const applied: MigrateResult['applied'] = [];
    for (const migration of MIGRATIONS) {
      if (status.applied.some((a) => a.version === migration.version)) continue;
      await tx.exec(tx.dialect === 'postgres' ? migration.postgres : migration.sqlite);
      await tx.run(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)`, [
        migration.version,
        migration.name,
        migrationChecksum(migration, tx.dialect),
        now().toISOString(),
      ]);
      applied.push({ version: migration.version, name: migration.name });
    }
    return { from: status.current, to: applied.length > 0 ? applied[applied.length - 1]!.version : status.current, applied };
  });
}
