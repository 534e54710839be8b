/**
 * A read-only, in-memory copy of the shared custody ledger (state database), taken in one
 * repeatable-read transaction so records and checkpoints belong to one moment, with the same
 * reading interface as a SQLite ledger file ({@link LedgerRows}). `verifyLedger`, proofs and
 * `warden trace` work on it unchanged. Rows are kept exactly as stored (a tampered body stays text).
 *
 * Known limit: the whole ledger is held in memory (about 1-2 KB a span record); very large
 * ledgers should be verified in ranges against published checkpoints.
 */
import { CustodyError } from '../errors';
import type { SqlDatabase } from '../state/sql-database';
import { toSafeInteger } from '../state/sql-database';
import { rowToCheckpoint, rowToRecord, type CheckpointRow, type RecordRow } from './ledger';
import type { LedgerRows } from './ledger-reader';
import { recordLeafHash, type Checkpoint, type LedgerRecord } from './ledger-record';

export class LedgerSnapshot implements LedgerRows {
  private readonly bySeq = new Map<number, RecordRow>();

  constructor(
    readonly path: string,
    /** Where trusted keys are read when none are given (the local custody key folder). */
    readonly keyDir: string,
    private readonly stored: readonly RecordRow[],
    private readonly checkpointList: readonly CheckpointRow[],
  ) {
    for (const row of stored) if (!this.bySeq.has(row.seq)) this.bySeq.set(row.seq, row);
  }

  rows(): IterableIterator<RecordRow> {
    return this.stored[Symbol.iterator]();
  }

  row(seq: number): RecordRow | undefined {
    return this.bySeq.get(seq);
  }

  record(seq: number): LedgerRecord {
    const row = this.row(seq);
    if (row === undefined) throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `no custody record ${seq} in ${this.path}`, { details: { seq } });
    return rowToRecord(row);
  }

  records(taskId?: string): LedgerRecord[] {
    return this.stored.filter((row) => taskId === undefined || row.task_id === taskId).map(rowToRecord);
  }

  copyOf(row: Pick<RecordRow, 'kind' | 'body' | 'prev_hash' | 'seq'>): number | undefined {
    return this.stored.find((r) => r.seq < row.seq && r.kind === row.kind && r.body === row.body && r.prev_hash === row.prev_hash)?.seq;
  }

  count(): number {
    return this.stored.length;
  }

  countForTask(taskId: string): { count: number; maxSeq: number | null } {
    let count = 0;
    let maxSeq: number | null = null;
    for (const row of this.stored) {
      if (row.task_id !== taskId) continue;
      count += 1;
      maxSeq = maxSeq === null ? row.seq : Math.max(maxSeq, row.seq);
    }
    return { count, maxSeq };
  }

  checkpointRows(): CheckpointRow[] {
    return [...this.checkpointList];
  }

  checkpoints(): Checkpoint[] {
    return this.checkpointList.map(rowToCheckpoint);
  }

  latestCheckpoint(): Checkpoint | undefined {
    const last = this.checkpointList.at(-1);
    return last === undefined ? undefined : rowToCheckpoint(last);
  }

  checkpointAt(treeSize: number): Checkpoint | undefined {
    const row = [...this.checkpointList].reverse().find((c) => c.tree_size === treeSize);
    return row === undefined ? undefined : rowToCheckpoint(row);
  }

  leafHashes(treeSize: number): Buffer[] {
    const rows = this.stored.filter((row) => row.seq < treeSize);
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
    // Nothing held open.
  }
}

/** Reads the shared ledger of `db` into a {@link LedgerSnapshot} (one consistent moment). */
export async function loadLedgerSnapshot(db: SqlDatabase, keyDir: string): Promise<LedgerSnapshot> {
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const records = await tx.all<RecordRow>(
      'SELECT seq, record_key, task_id, workflow_id, kind, body, prev_hash, hash, signature, kid, appended_at FROM warden_custody_records ORDER BY seq',
    );
    const checkpoints = await tx.all<CheckpointRow>('SELECT * FROM warden_custody_checkpoints ORDER BY id');
    return new LedgerSnapshot(
      db.description,
      keyDir,
      records.map((row) => ({ ...row, seq: toSafeInteger(row.seq, 'seq') })),
      checkpoints.map((row) => ({ ...row, id: toSafeInteger(row.id, 'id'), tree_size: toSafeInteger(row.tree_size, 'tree_size') })),
    );
  });
}
