/**
 * The SQL undo journal across workers. The sandbox host still writes a call's row images to the
 * task tree's journal FILE synchronously, before the change commits in the target database (the
 * invariant of sql-undo-journal.ts, kept where it is enforced); the worker then ships every
 * journaled call of the tool call to the shared state database before the activity completes, and
 * whichever worker runs a compensation first hydrates its own journal file from there. So a task
 * whose SQL ran on one worker is undone by another.
 *
 * Invariants: shipping is idempotent (`(journal_key, call_id)` is the key; a call is shipped with
 * all its rows in one transaction, or not at all); hydration only adds calls the local file lacks
 * and never overwrites one it has; values keep their exact SQLite types (the same tagged encoding
 * as the file, rowids as decimal text). Whether a call was applied or undone is decided by the
 * target database's `warden_applied_calls`, never by either journal, so undo stays exactly-once.
 *
 * Known window: a worker killed after the target committed and before shipping leaves the images
 * on its disk only; a retry on the same worker ships them, a retry elsewhere cannot. Keeping a
 * task's data plane on one worker (task placements, worker task queues) closes it.
 */
import type { SqlDatabase } from '../state/sql-database';
import { journaledRowsOf, listJournaledCalls, recordJournaledCall, decodeValue, encodeValue, type CapturedRow, type EncodedValue, type StoredValue } from './sql-undo-journal';

interface CallRow {
  call_id: string;
  base_call_id: string;
  database_name: string;
  database_path: string;
  table_name: string;
  op: string;
  sql: string;
  changes: number | string;
  recorded_at: string;
}

interface ImageRow {
  call_id: string;
  seq: number;
  table_name: string;
  op: CapturedRow['op'];
  old_rowid: string | null;
  new_rowid: string | null;
  columns: string;
  before: string | null;
  after: string | null;
}

function encodeImage(values: readonly StoredValue[] | null): string | null {
  return values === null ? null : JSON.stringify(values.map(encodeValue));
}

function decodeImage(text: string | null): StoredValue[] | null {
  return text === null ? null : (JSON.parse(text) as EncodedValue[]).map(decodeValue);
}

/**
 * Ships every call of `journal` that belongs to the tool call `baseCallId` (or every call, when
 * omitted) to the shared journal under `journalKey` (the task key). Returns the call ids shipped now.
 */
export async function shipJournal(db: SqlDatabase, options: { journal: string; journalKey: string; baseCallId?: string; workerId: string }): Promise<string[]> {
  const calls = listJournaledCalls(options.journal).filter((c) => options.baseCallId === undefined || c.baseCallId === options.baseCallId || c.callId === options.baseCallId);
  const shipped: string[] = [];
  for (const call of calls) {
    const rows = journaledRowsOf(options.journal, call.callId);
    const inserted = await db.transaction(async (tx) => {
      const fresh =
        (await tx.run(
          `INSERT INTO warden_undo_calls (journal_key, call_id, base_call_id, database_name, database_path, table_name, op, sql, changes, rows_changed, recorded_at, shipped_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (journal_key, call_id) DO NOTHING`,
          [options.journalKey, call.callId, call.baseCallId, call.database, call.databasePath, call.table, call.op, call.sql, call.changes, rows.length, call.recordedAt, options.workerId],
        )) === 1;
      if (!fresh) return false;
      for (const row of rows) {
        await tx.run(
          `INSERT INTO warden_undo_rows (journal_key, call_id, seq, table_name, op, old_rowid, new_rowid, columns, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
            options.journalKey,
            call.callId,
            row.seq,
            row.table,
            row.op,
            row.oldRowid === null ? null : row.oldRowid.toString(),
            row.newRowid === null ? null : row.newRowid.toString(),
            JSON.stringify(row.columns),
            encodeImage(row.before),
            encodeImage(row.after),
          ],
        );
      }
      return true;
    });
    if (inserted) shipped.push(call.callId);
  }
  return shipped;
}

/**
 * Adds to the journal file `journal` every call shipped under `journalKey` that the file does not
 * hold yet (in the order they were recorded). Returns the call ids added.
 */
export async function hydrateJournal(db: SqlDatabase, options: { journal: string; journalKey: string }): Promise<string[]> {
  const calls = await db.all<CallRow>('SELECT * FROM warden_undo_calls WHERE journal_key = $1 ORDER BY recorded_at, call_id', [options.journalKey]);
  if (calls.length === 0) return [];
  const local = new Set(listJournaledCalls(options.journal).map((c) => c.callId));
  const added: string[] = [];
  for (const call of calls) {
    if (local.has(call.call_id)) continue;
    const images = await db.all<ImageRow>('SELECT * FROM warden_undo_rows WHERE journal_key = $1 AND call_id = $2 ORDER BY seq', [options.journalKey, call.call_id]);
    recordJournaledCall(options.journal, {
      callId: call.call_id,
      baseCallId: call.base_call_id,
      database: call.database_name,
      databasePath: call.database_path,
      table: call.table_name,
      op: call.op,
      sql: call.sql,
      changes: Number(call.changes),
      recordedAt: call.recorded_at,
      rows: images.map((r) => ({
        seq: Number(r.seq),
        table: r.table_name,
        op: r.op,
        oldRowid: r.old_rowid === null ? null : BigInt(r.old_rowid),
        newRowid: r.new_rowid === null ? null : BigInt(r.new_rowid),
        columns: JSON.parse(r.columns) as string[],
        before: decodeImage(r.before),
        after: decodeImage(r.after),
      })),
    });
    added.push(call.call_id);
  }
  return added;
}
