/**
 * How many custody records a task left in the ledger of a state folder (its SQLite file, or the
 * shared database's ledger when WARDEN_DATABASE_URL is set): the proof that a task ran here even
 * when it left no recovery record, because it changed no file and no SQL row. `rollback` and
 * `snapshots` use it to tell "this task changed nothing" (exit 0) from "no such task here" (exit 1).
 *
 * One indexed count (`records_by_task` in SQLite; `task_id` in the shared table), read-only: the
 * ledger is never created or written by asking.
 */
import { existsSync } from 'node:fs';
import { ledgerPaths } from './ledger';
import { LedgerReader } from './ledger-reader';
import { rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { openPostgresDatabase } from '../state/postgres-database';
import { stateStoreConfigOf } from '../state/state-store';

/**
 * The number of custody records of the task tree `workflowId` belongs to (its root's `task_id`),
 * 0 when the ledger has none or there is no ledger yet.
 * @throws the database's error when the shared database cannot be reached.
 */
export async function custodyRecordCountOf(stateDir: string, workflowId: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const taskId = rootWorkflowIdOf(workflowId);
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'sqlite') {
    if (!existsSync(ledgerPaths({ stateDir }).path)) return 0;
    const reader = LedgerReader.open({ stateDir });
    try {
      return reader.countForTask(taskId).count;
    } finally {
      reader.close();
    }
  }
  const db = openPostgresDatabase(config.url, { maxConnections: 1, applicationName: 'warden-records' });
  try {
    const row = await db.get<{ n: string | number }>('SELECT count(*) AS n FROM warden_custody_records WHERE task_id = $1', [taskId]);
    return Number(row?.n ?? 0);
  } catch (error) {
    // A database no worker has set up yet (undefined_table): no task has run there.
    if ((error as { code?: unknown }).code === '42P01') return 0;
    throw error;
  } finally {
    await db.close();
  }
}
