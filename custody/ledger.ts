/**
 * The chain-of-custody ledger: an append-only SQLite file (`<stateDir>/custody.db`, WAL) of
 * signed, hash-chained records, grouped under an RFC 9162 Merkle tree with signed checkpoints.
 *
 * Invariants this module keeps:
 * - Appends are serialised by an IMMEDIATE transaction, so seq, prevHash and the Merkle frontier
 *   stay linear even with several processes (workers) appending to the same file.
 * - A record is never updated or deleted by this code; the same `recordKey` appended twice
 *   returns the first record (so re-deriving a record after a crash cannot duplicate it).
 * - Every record is signed when written, every checkpoint when taken; the private key stays in
 *   `signing-key.ts`. See `verify-ledger.ts` for what a verifier checks.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { CustodyError } from '../errors';
import { stateDirOf } from '../state-dir';
import { canonicalize } from './canonical-json';
import {
  GENESIS_HASH,
  checkpointSigningInput,
  recordHashWithCanonicalBody,
  recordLeafHash,
  recordSigningInput,
  type Checkpoint,
  type LedgerRecord,
} from './ledger-record';
import { MerkleFrontier, fromHex, toHex } from './merkle';
import { loadOrCreateSigningKey, loadTrustedKeys, publicJwk, signBytes, type PublicJwk, type SigningKey } from './signing-key';

export const LEDGER_FILE = 'custody.db';
export const KEY_DIR = 'custody-keys';
export const DEFAULT_CHECKPOINT_EVERY = 100;
const FORMAT_VERSION = '1';

export interface CustodyLedgerOptions {
  /** State folder; default `stateDirOf()` (WARDEN_STATE_DIR or ./.warden). */
  stateDir?: string;
  /** Ledger file; default `<stateDir>/custody.db`. */
  path?: string;
  /** Signing key folder; default `custody-keys/` next to the ledger file. */
  keyDir?: string;
  /** Take a signed checkpoint every this many records; 0 turns interval checkpoints off. */
  checkpointEvery?: number;
  /**
   * SQLite `synchronous`: `normal` (default) survives a killed process, `full` also a power cut
   * (an fsync per append, a few ms each on most disks).
   */
  synchronous?: 'normal' | 'full';
  /** Clock for `appendedAt` and checkpoint timestamps (tests). */
  now?: () => Date;
  /** Milliseconds to wait for another process's append; default 15 000. */
  busyTimeoutMs?: number;
}

export interface AppendInput {
  recordKey: string;
  /** Root workflow id of the task. */
  taskId: string;
  workflowId: string;
  kind: string;
  /** Any JSON value; stored as canonical JSON. */
  body: unknown;
}

export interface AppendResult {
  record: LedgerRecord;
  /** False when a record with this `recordKey` already existed (it is returned instead). */
  appended: boolean;
  /** The interval checkpoint this append completed, if any. */
  checkpoint?: Checkpoint;
}

export interface RecordFilter {
  taskId?: string;
  fromSeq?: number;
  /** Exclusive. */
  toSeq?: number;
}

/** A row of the `records` table, as stored. */
export interface RecordRow {
  seq: number;
  record_key: string;
  task_id: string;
  workflow_id: string;
  kind: string;
  body: string;
  prev_hash: string;
  hash: string;
  signature: string;
  kid: string;
  appended_at: string;
}

export interface CheckpointRow {
  id: number;
  tree_size: number;
  root_hash: string;
  timestamp: string;
  reason: string;
  task_id: string | null;
  kid: string;
  signature: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  record_key TEXT NOT NULL UNIQUE,
  task_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  signature TEXT NOT NULL,
  kid TEXT NOT NULL,
  appended_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_task ON records (task_id, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
  id INTEGER PRIMARY KEY,
  tree_size INTEGER NOT NULL,
  root_hash TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  reason TEXT NOT NULL,
  task_id TEXT,
  kid TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_frontier (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  tree_size INTEGER NOT NULL,
  subtree_roots TEXT NOT NULL
);
`;

export function rowToRecord(row: RecordRow): LedgerRecord {
  return {
    seq: row.seq,
    recordKey: row.record_key,
    taskId: row.task_id,
    workflowId: row.workflow_id,
    kind: row.kind,
    body: JSON.parse(row.body) as LedgerRecord['body'],
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
    kid: row.kid,
    appendedAt: row.appended_at,
  };
}

/**
 * `record` with `body` parsed from its canonical text on first read (then kept). The span
 * exporter, which appends almost every record, reads only checkpoints from the results: parsing
 * each body back (a kilobyte of JSON per span) was work nobody used. `body` stays an enumerable,
 * settable member in its place among the keys, so spreads, `JSON.stringify`, `structuredClone`
 * and deep equality see the same record as before.
 */
function recordWithLazyBody(record: LedgerRecord, bodyText: string): LedgerRecord {
  let parsed: { value: LedgerRecord['body'] } | undefined;
  // Redefining the existing `body` keeps its place in the key order.
  Object.defineProperty(record, 'body', {
    configurable: true,
    enumerable: true,
    get: () => (parsed ??= { value: JSON.parse(bodyText) as LedgerRecord['body'] }).value,
    set: (value: LedgerRecord['body']) => {
      parsed = { value };
    },
  });
  return record;
}

export function rowToCheckpoint(row: CheckpointRow): Checkpoint {
  return {
    id: row.id,
    treeSize: row.tree_size,
    rootHash: row.root_hash,
    timestamp: row.timestamp,
    reason: row.reason as Checkpoint['reason'],
    taskId: row.task_id,
    kid: row.kid,
    signature: row.signature,
  };
}

/** Where the ledger and its keys live for a state folder. */
export function ledgerPaths(options: Pick<CustodyLedgerOptions, 'stateDir' | 'path' | 'keyDir'> = {}): { path: string; keyDir: string } {
  const path = options.path ?? join(options.stateDir ?? stateDirOf(), LEDGER_FILE);
  return { path, keyDir: options.keyDir ?? join(dirname(path), KEY_DIR) };
}

function writeError(path: string, error: unknown): CustodyError {
  const reason = error instanceof Error ? error.message : String(error);
  return new CustodyError('ERR_CUSTODY_WRITE', `cannot append to the custody ledger ${path}: ${reason}`, { details: { path }, retryable: true, cause: error });
}

interface ChainHead {
  frontier: MerkleFrontier;
  /** Hash of the last record (GENESIS_HASH when there is none). */
  tailHash: string;
  dataVersion: number;
}

export class CustodyLedger {
  readonly path: string;
  readonly keyDir: string;
  readonly checkpointEvery: number;
  private readonly db: Database.Database;
  private readonly key: SigningKey;
  private readonly now: () => Date;
  private readonly stmts: ReturnType<CustodyLedger['prepare']>;
  private closed = false;
  /**
   * The chain's head (Merkle frontier and last record hash) as this connection's last commit left
   * it, with SQLite's `data_version` at that point. `data_version` changes exactly when another
   * connection (another worker process, `warden audit`, an edit of the file) commits, so while it is
   * unchanged the head need not be read back and parsed at each append. Cleared as a transaction
   * starts and set again only once it committed: a rolled-back append never leaves a head behind.
   */
  private head: ChainHead | undefined;

  private constructor(path: string, keyDir: string, db: Database.Database, key: SigningKey, options: CustodyLedgerOptions) {
    this.path = path;
    this.keyDir = keyDir;
    this.db = db;
    this.key = key;
    this.now = options.now ?? (() => new Date());
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isSafeInteger(this.checkpointEvery) || this.checkpointEvery < 0) throw new TypeError('checkpointEvery must be a non-negative integer');
    this.stmts = this.prepare();
  }

  /**
   * Opens (creating if needed) the ledger and its signing key.
   * @throws CustodyError `ERR_CUSTODY_KEY` when the key cannot be loaded or created,
   *   `ERR_CUSTODY_WRITE` when the file cannot be opened.
   */
  static open(options: CustodyLedgerOptions = {}): CustodyLedger {
    const { path, keyDir } = ledgerPaths(options);
    const key = loadOrCreateSigningKey(keyDir);
    let db: Database.Database;
    try {
      mkdirSync(dirname(path), { recursive: true });
      const created = !existsSync(path);
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 15_000 });
      if (created) chmodSync(path, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.transaction(() => {
        db.exec(SCHEMA);
        // Earlier versions indexed json_extract(body, '$.traceId'): SQLite parsed every span's body
        // at each append to maintain it. A span's record key starts with its trace id, and that key
        // is indexed already (see taskIdOfTrace). An older Warden opening the file builds it again.
        db.exec('DROP INDEX IF EXISTS records_by_trace');
        db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('format', FORMAT_VERSION);
      }).immediate();
    } catch (error) {
      throw writeError(path, error);
    }
    return new CustodyLedger(path, keyDir, db, key, options);
  }

  private prepare() {
    const db = this.db;
    return {
      byKey: db.prepare<[string], RecordRow>('SELECT * FROM records WHERE record_key = ?'),
      bySeq: db.prepare<[number], RecordRow>('SELECT * FROM records WHERE seq = ?'),
      tail: db.prepare<[], Pick<RecordRow, 'seq' | 'hash'>>('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1'),
      // One statement both inserts and detects a record key already taken (no row changed), instead
      // of a lookup before every insert: a key is new almost always. Only the record_key conflict is
      // absorbed; any other constraint (a seq already taken) still fails the transaction.
      insert: db.prepare<[number, string, string, string, string, string, string, string, string, string, string]>(
        `INSERT INTO records (seq, record_key, task_id, workflow_id, kind, body, prev_hash, hash, signature, kid, appended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_key) DO NOTHING`,
      ),
      allHashes: db.prepare<[], Pick<RecordRow, 'hash'>>('SELECT hash FROM records ORDER BY seq'),
      frontier: db.prepare<[], { tree_size: number; subtree_roots: string }>('SELECT tree_size, subtree_roots FROM merkle_frontier WHERE id = 0'),
      saveFrontier: db.prepare('INSERT INTO merkle_frontier (id, tree_size, subtree_roots) VALUES (0, ?, ?) ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, subtree_roots = excluded.subtree_roots'),
      insertCheckpoint: db.prepare(
        'INSERT INTO checkpoints (tree_size, root_hash, timestamp, reason, task_id, kid, signature) VALUES (@tree_size, @root_hash, @timestamp, @reason, @task_id, @kid, @signature)',
      ),
      latestCheckpoint: db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'),
      checkpoints: db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY id'),
      checkpointAt: db.prepare<[number], CheckpointRow>('SELECT * FROM checkpoints WHERE tree_size = ? ORDER BY id DESC LIMIT 1'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      // Span record keys are `<traceId>:<spanId>`: the range [traceId + ':', traceId + ';') of the
      // unique record_key index holds exactly the trace's records (';' follows ':' in every collation
      // SQLite has for TEXT here: BINARY).
      taskOfTrace: db.prepare<[string, string], { task_id: string }>("SELECT task_id FROM records WHERE record_key >= ? AND record_key < ? AND kind = 'span' ORDER BY seq LIMIT 1"),
    };
  }

  /** The kid new records are signed with. */
  get kid(): string {
    return this.key.kid;
  }

  /**
   * Appends one record (or returns the existing one with the same `recordKey`).
   * @throws CustodyError `ERR_CUSTODY_WRITE` (retryable); TypeError when `body` is not JSON.
   */
  append(input: AppendInput): AppendResult {
    return this.appendMany([input])[0] as AppendResult;
  }

  /** Appends records in order, in one transaction: all or none. */
  appendMany(inputs: readonly AppendInput[]): AppendResult[] {
    this.assertOpen();
    // Validate and canonicalise outside the lock: a bad body is the caller's bug, not a write error.
    const prepared = inputs.map((input) => {
      for (const field of ['recordKey', 'taskId', 'workflowId', 'kind'] as const) {
        if (typeof input[field] !== 'string') throw new TypeError(`custody append: ${field} must be a string`);
      }
      if (input.recordKey === '' || input.kind === '') throw new TypeError('custody append: recordKey and kind must not be empty');
      canonicalize([input.recordKey, input.taskId, input.workflowId, input.kind]);
      return { input, bodyText: canonicalize(input.body) };
    });
    const run = this.db.transaction(() => {
      const head = this.takeHead();
      const frontier = head.frontier;
      const startSize = frontier.size;
      const results: AppendResult[] = [];
      let tailHash = head.tailHash;
      for (const { input, bodyText } of prepared) {
        const unsigned = {
          seq: frontier.size,
          recordKey: input.recordKey,
          taskId: input.taskId,
          workflowId: input.workflowId,
          kind: input.kind,
          prevHash: tailHash,
          kid: this.key.kid,
          appendedAt: this.now().toISOString(),
        };
        const hash = recordHashWithCanonicalBody(unsigned, bodyText);
        const signature = signBytes(this.key, recordSigningInput(hash));
        const { changes } = this.stmts.insert.run(
          unsigned.seq,
          unsigned.recordKey,
          unsigned.taskId,
          unsigned.workflowId,
          unsigned.kind,
          bodyText,
          unsigned.prevHash,
          hash,
          signature,
          unsigned.kid,
          unsigned.appendedAt,
        );
        if (changes === 0) {
          // The key was taken (earlier, or by an earlier input of this batch): that record stands.
          const existing = this.stmts.byKey.get(input.recordKey);
          if (existing === undefined) throw new Error(`record ${input.recordKey} was neither inserted nor found`);
          results.push({ record: rowToRecord(existing), appended: false });
          continue;
        }
        frontier.append(recordLeafHash(hash));
        tailHash = hash;
        const result: AppendResult = { record: recordWithLazyBody({ ...unsigned, body: null, hash, signature }, bodyText), appended: true };
        if (this.checkpointEvery > 0 && frontier.size % this.checkpointEvery === 0) result.checkpoint = this.writeCheckpoint(frontier, 'interval', null);
        results.push(result);
      }
      if (frontier.size !== startSize) this.saveFrontier(frontier);
      head.tailHash = tailHash;
      return { results, head };
    });
    try {
      const { results, head } = run.immediate();
      this.head = head;
      return results;
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw writeError(this.path, error);
    }
  }

  /**
   * A signed checkpoint of the whole ledger as it is now (the worker calls this at task end).
   * When the latest checkpoint already covers every record it is returned instead of a new one.
   */
  checkpoint(taskId?: string, reason: 'task-end' | 'manual' = taskId === undefined ? 'manual' : 'task-end'): Checkpoint {
    this.assertOpen();
    const run = this.db.transaction(() => {
      const head = this.takeHead();
      const latest = this.stmts.latestCheckpoint.get();
      if (latest !== undefined && latest.tree_size === head.frontier.size) return { checkpoint: rowToCheckpoint(latest), head };
      return { checkpoint: this.writeCheckpoint(head.frontier, reason, taskId ?? null), head };
    });
    try {
      const { checkpoint, head } = run.immediate();
      this.head = head;
      return checkpoint;
    } catch (error) {
      throw writeError(this.path, error);
    }
  }

  private writeCheckpoint(frontier: MerkleFrontier, reason: Checkpoint['reason'], taskId: string | null): Checkpoint {
    const unsigned = { treeSize: frontier.size, rootHash: toHex(frontier.root()), timestamp: this.now().toISOString(), reason, taskId, kid: this.key.kid };
    const signature = signBytes(this.key, checkpointSigningInput(unsigned));
    const info = this.stmts.insertCheckpoint.run({
      tree_size: unsigned.treeSize,
      root_hash: unsigned.rootHash,
      timestamp: unsigned.timestamp,
      reason,
      task_id: taskId,
      kid: unsigned.kid,
      signature,
    });
    return { id: Number(info.lastInsertRowid), ...unsigned, signature };
  }

  /**
   * The chain's head, inside a write transaction: the one this connection's last commit left when
   * no other connection committed since (same `data_version`), else read from the file. The kept
   * head is cleared here; the caller sets it again after its transaction commits.
   */
  private takeHead(): ChainHead {
    const dataVersion = this.stmts.dataVersion.get() as number;
    const kept = this.head;
    this.head = undefined;
    if (kept !== undefined && kept.dataVersion === dataVersion) return kept;
    const frontier = this.loadFrontier();
    const tailHash = frontier.size === 0 ? GENESIS_HASH : (this.stmts.tail.get()?.hash ?? GENESIS_HASH);
    return { frontier, tailHash, dataVersion };
  }

  /** The stored frontier when it matches the records, else rebuilt from every record hash. */
  private loadFrontier(): MerkleFrontier {
    const tail = this.stmts.tail.get();
    const size = tail === undefined ? 0 : tail.seq + 1;
    const stored = this.stmts.frontier.get();
    if (stored !== undefined && stored.tree_size === size) {
      try {
        return new MerkleFrontier(size, (JSON.parse(stored.subtree_roots) as string[]).map(fromHex));
      } catch {
        // unreadable: rebuild below
      }
    }
    const frontier = new MerkleFrontier();
    for (const row of this.stmts.allHashes.iterate()) frontier.append(recordLeafHash(row.hash));
    return frontier;
  }

  private saveFrontier(frontier: MerkleFrontier): void {
    this.stmts.saveFrontier.run(frontier.size, JSON.stringify(frontier.subtreeRoots.map(toHex)));
  }

  /** Number of records. */
  size(): number {
    this.assertOpen();
    const tail = this.stmts.tail.get();
    return tail === undefined ? 0 : tail.seq + 1;
  }

  record(seq: number): LedgerRecord | undefined {
    this.assertOpen();
    const row = this.stmts.bySeq.get(seq);
    return row === undefined ? undefined : rowToRecord(row);
  }

  recordByKey(recordKey: string): LedgerRecord | undefined {
    this.assertOpen();
    const row = this.stmts.byKey.get(recordKey);
    return row === undefined ? undefined : rowToRecord(row);
  }

  /** Records in seq order, optionally one task's and/or a seq range. */
  records(filter: RecordFilter = {}): LedgerRecord[] {
    this.assertOpen();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.taskId !== undefined) {
      where.push('task_id = ?');
      params.push(filter.taskId);
    }
    if (filter.fromSeq !== undefined) {
      where.push('seq >= ?');
      params.push(filter.fromSeq);
    }
    if (filter.toSeq !== undefined) {
      where.push('seq < ?');
      params.push(filter.toSeq);
    }
    const sql = `SELECT * FROM records${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`;
    return this.db.prepare<(string | number)[], RecordRow>(sql).all(...params).map(rowToRecord);
  }

  /**
   * The task of the first span recorded for `traceId`, if any (one trace per task): the first
   * `span` record whose key is `<traceId>:<spanId>`, as the span exporter writes them.
   */
  taskIdOfTrace(traceId: string): string | undefined {
    this.assertOpen();
    return this.stmts.taskOfTrace.get(`${traceId}:`, `${traceId};`)?.task_id;
  }

  latestCheckpoint(): Checkpoint | undefined {
    this.assertOpen();
    const row = this.stmts.latestCheckpoint.get();
    return row === undefined ? undefined : rowToCheckpoint(row);
  }

  checkpoints(): Checkpoint[] {
    this.assertOpen();
    return this.stmts.checkpoints.all().map(rowToCheckpoint);
  }

  /** The latest checkpoint of exactly `treeSize` records, if one was taken. */
  checkpointAt(treeSize: number): Checkpoint | undefined {
    this.assertOpen();
    const row = this.stmts.checkpointAt.get(treeSize);
    return row === undefined ? undefined : rowToCheckpoint(row);
  }

  /** RFC 9162 leaf hashes of records 0..treeSize-1, from the stored record hashes. */
  leafHashes(treeSize: number = this.size()): Buffer[] {
    this.assertOpen();
    return this.db
      .prepare<[number], Pick<RecordRow, 'hash'>>('SELECT hash FROM records WHERE seq < ? ORDER BY seq')
      .all(treeSize)
      .map((row) => recordLeafHash(row.hash));
  }

  /** Public keys of the key folder (what a verifier of this ledger trusts), as JWKs. */
  publicKeys(): PublicJwk[] {
    return [...loadTrustedKeys(this.keyDir).values()].map(publicJwk);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new TypeError(`the custody ledger ${this.path} is closed`);
  }
}

/** Opens the ledger of a state folder (see {@link CustodyLedger.open}). */
export function openLedger(options: CustodyLedgerOptions = {}): CustodyLedger {
  return CustodyLedger.open(options);
}
