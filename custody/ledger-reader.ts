/**
 * Read-only access to a custody ledger file, for verification, proofs and forensic views. It
 * never creates keys, tables or records, so auditing a ledger cannot change it, and it returns
 * rows as stored (a tampered body is handed over as text, not parsed).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CustodyError } from '../errors';
import { ledgerPaths, rowToCheckpoint, rowToRecord, type CheckpointRow, type CustodyLedgerOptions, type RecordRow } from './ledger';
import type { Checkpoint, LedgerRecord } from './ledger-record';
import { recordLeafHash } from './ledger-record';

/** What verification and proofs read from a ledger: a SQLite file ({@link LedgerReader}) or a loaded snapshot of the shared one (ledger-snapshot.ts). */
export interface LedgerRows {
  readonly path: string;
  readonly keyDir: string;
  rows(): IterableIterator<RecordRow>;
  row(seq: number): RecordRow | undefined;
  record(seq: number): LedgerRecord;
  records(taskId?: string): LedgerRecord[];
  copyOf(row: Pick<RecordRow, 'kind' | 'body' | 'prev_hash' | 'seq'>): number | undefined;
  count(): number;
  countForTask(taskId: string): { count: number; maxSeq: number | null };
  checkpointRows(): CheckpointRow[];
  checkpoints(): Checkpoint[];
  latestCheckpoint(): Checkpoint | undefined;
  checkpointAt(treeSize: number): Checkpoint | undefined;
  leafHashes(treeSize: number): Buffer[];
  close(): void;
}

export class LedgerReader implements LedgerRows {
  readonly path: string;
  readonly keyDir: string;
  private readonly db: Database.Database;

  private constructor(path: string, keyDir: string, db: Database.Database) {
    this.path = path;
    this.keyDir = keyDir;
    this.db = db;
  }

  /**
   * Opens the ledger of `options` (a file path, or state folder / path / key folder options).
   * @throws CustodyError `ERR_CUSTODY_NOT_FOUND` when there is no ledger file.
   */
  static open(options: string | Pick<CustodyLedgerOptions, 'stateDir' | 'path' | 'keyDir'>): LedgerReader {
    const { path, keyDir } = ledgerPaths(typeof options === 'string' ? { path: options } : options);
    if (!existsSync(path)) throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `no custody ledger at ${path}`, { details: { path } });
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true, timeout: 15_000 });
      db.prepare('SELECT count(*) FROM records').get();
    } catch (error) {
      throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `${path} is not a readable custody ledger: ${error instanceof Error ? error.message : String(error)}`, {
        details: { path },
        cause: error,
      });
    }
    return new LedgerReader(path, keyDir, db);
  }

  /** Stored rows in seq order, lazily. Do not run other queries on this reader while iterating. */
  rows(): IterableIterator<RecordRow> {
    return this.db.prepare<[], RecordRow>('SELECT * FROM records ORDER BY seq').iterate();
  }

  row(seq: number): RecordRow | undefined {
    return this.db.prepare<[number], RecordRow>('SELECT * FROM records WHERE seq = ?').get(seq);
  }

  /** Parsed record at `seq`. @throws CustodyError `ERR_CUSTODY_NOT_FOUND`. */
  record(seq: number): LedgerRecord {
    const row = this.row(seq);
    if (row === undefined) throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `no custody record ${seq} in ${this.path}`, { details: { seq } });
    return rowToRecord(row);
  }

  records(taskId?: string): LedgerRecord[] {
    const rows =
      taskId === undefined
        ? this.db.prepare<[], RecordRow>('SELECT * FROM records ORDER BY seq').all()
        : this.db.prepare<[string], RecordRow>('SELECT * FROM records WHERE task_id = ? ORDER BY seq').all(taskId);
    return rows.map(rowToRecord);
  }

  /** Earlier row with exactly this kind, body and prevHash (a copied record), if any. */
  copyOf(row: Pick<RecordRow, 'kind' | 'body' | 'prev_hash' | 'seq'>): number | undefined {
    return this.db
      .prepare<[string, string, string, number], { seq: number }>('SELECT seq FROM records WHERE kind = ? AND body = ? AND prev_hash = ? AND seq < ? ORDER BY seq LIMIT 1')
      .get(row.kind, row.body, row.prev_hash, row.seq)?.seq;
  }

  /**
   * The ledger's head as one string: seq and hash of the last record, and size and root of the
   * latest checkpoint; `empty` for an empty ledger. Changes whenever a record or checkpoint is
   * appended or the last one is rewritten (not when an earlier record is edited in place).
   */
  head(): string {
    const last = this.db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1').get();
    const checkpoint = this.db.prepare<[], { tree_size: number; root_hash: string }>('SELECT tree_size, root_hash FROM checkpoints ORDER BY id DESC LIMIT 1').get();
    if (last === undefined) return 'empty';
    return `${last.seq}:${last.hash}:${checkpoint === undefined ? '-' : `${checkpoint.tree_size}:${checkpoint.root_hash}`}`;
  }

  count(): number {
    return this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM records').get()?.n ?? 0;
  }

  /** Number of records stored for a task (as their `taskId` says). */
  /** The number of records of one workflow (`workflow_id`) of the task tree `taskId`: a sub-agent's, or the root's own. */
  countForWorkflow(taskId: string, workflowId: string): number {
    return this.db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM records WHERE task_id = ? AND workflow_id = ?').get(taskId, workflowId)?.n ?? 0;
  }

  /** The bodies (as stored) of the task tree's records whose body holds `fragment` (a plain substring, no wildcards), in seq order. */
  bodiesContaining(taskId: string, fragment: string): string[] {
    return this.db.prepare<[string, string], { body: string }>("SELECT body FROM records WHERE task_id = ? AND instr(body, ?) > 0 ORDER BY seq").all(taskId, fragment).map((row) => row.body);
  }

  countForTask(taskId: string): { count: number; maxSeq: number | null } {
    const row = this.db.prepare<[string], { n: number; maxSeq: number | null }>('SELECT count(*) AS n, max(seq) AS maxSeq FROM records WHERE task_id = ?').get(taskId);
    return { count: row?.n ?? 0, maxSeq: row?.maxSeq ?? null };
  }

  checkpointRows(): CheckpointRow[] {
    return this.db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY id').all();
  }

  checkpoints(): Checkpoint[] {
    return this.checkpointRows().map(rowToCheckpoint);
  }

  latestCheckpoint(): Checkpoint | undefined {
    const row = this.db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1').get();
    return row === undefined ? undefined : rowToCheckpoint(row);
  }

  checkpointAt(treeSize: number): Checkpoint | undefined {
    const row = this.db.prepare<[number], CheckpointRow>('SELECT * FROM checkpoints WHERE tree_size = ? ORDER BY id DESC LIMIT 1').get(treeSize);
    return row === undefined ? undefined : rowToCheckpoint(row);
  }

  /** RFC 9162 leaf hashes of the first `treeSize` stored records, from their stored hashes. */
  leafHashes(treeSize: number): Buffer[] {
    const rows = this.db.prepare<[number], { seq: number; hash: string }>('SELECT seq, hash FROM records WHERE seq < ? ORDER BY seq').all(treeSize);
    if (rows.length !== treeSize || rows.some((row, index) => row.seq !== index)) {
      throw new CustodyError('ERR_CUSTODY_BROKEN', `the custody ledger ${this.path} does not hold records 0..${treeSize - 1} contiguously; run \`warden audit verify\``);
    }
    try {
      return rows.map((row) => recordLeafHash(row.hash));
    } catch (error) {
      throw new CustodyError('ERR_CUSTODY_BROKEN', `a record hash in ${this.path} is malformed; run \`warden audit verify\``, { cause: error });
    }
  }

  close(): void {
    this.db.close();
  }
}
