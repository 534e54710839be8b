/**
 * The custody ledger a command works on, from its configuration: the shared ledger in PostgreSQL
 * when `WARDEN_DATABASE_URL` is set, else `<stateDir>/custody.db`. For commands (trace, replay,
 * repair) that read a task's records or append re-derived ones, so they see what every worker
 * recorded, not only this machine.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresDatabase } from '../state/postgres-database';
import { stateStoreConfigOf, workerIdOf } from '../state/state-store';
import { CustodyLedger, KEY_DIR, ledgerPaths } from './ledger';
import { LedgerReader } from './ledger-reader';
import type { LedgerRecord } from './ledger-record';
import { SharedCustodyLedger } from './shared-ledger';

/** Where the ledger is (file path or database without password) and whether it exists yet. */
export function ledgerLocation(stateDir: string, env: NodeJS.ProcessEnv): { description: string; exists: boolean; shared: boolean } {
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'postgres') return { description: config.description, exists: true, shared: true };
  const { path } = ledgerPaths({ stateDir });
  return { description: path, exists: existsSync(path), shared: false };
}

/** Opens the ledger for appending (close it when done). */
export function openCommandLedger(stateDir: string, env: NodeJS.ProcessEnv): CustodyLedger | SharedCustodyLedger {
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'sqlite') return CustodyLedger.open({ stateDir });
  return SharedCustodyLedger.open({
    db: openPostgresDatabase(config.url, { maxConnections: 2, applicationName: 'warden-cli' }),
    keyDir: join(stateDir, KEY_DIR),
    workerId: workerIdOf(stateDir, env),
    closeDatabase: true,
  });
}

/** Every record of one task, in ledger order. */
export async function readTaskRecords(stateDir: string, env: NodeJS.ProcessEnv, taskId: string): Promise<LedgerRecord[]> {
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'sqlite') {
    const reader = LedgerReader.open({ stateDir });
    try {
      return reader.records(taskId);
    } finally {
      reader.close();
    }
  }
  const ledger = openCommandLedger(stateDir, env) as SharedCustodyLedger;
  try {
    return await ledger.records({ taskId });
  } finally {
    await ledger.close();
  }
}
