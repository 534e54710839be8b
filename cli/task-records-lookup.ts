/**
 * Where `warden snapshots` and `warden rollback` find a task's recovery records: where the workers
 * write them, and what to say when there are none.
 *
 *   records    the recovery folder: WARDEN_SHARED_DIR when set (every worker writes its commits,
 *              snapshots and SQL journals there: activities/flow-deps.ts `recoveryDirOf`), else
 *              the state folder; with a shared database, the SQL journals shipped to it are
 *              taken into that folder first (a call may have run on another worker)
 *   none       the custody ledger (of the state folder, or the shared database) tells three cases
 *              apart: a task that ran and made no call that may change anything (it changed
 *              nothing); one that made such calls, whose records are not where this command looks
 *              (another worker's state folder, a WARDEN_SHARED_DIR this command was not given);
 *              and an id that never ran here
 */
import { taskCustodySummaryOf } from '../custody/task-custody-summary';
import { sharedDirOf } from '../dataplane/shared-storage';
import { journalPathOf, RUN_SEPARATOR_TEXT, taskKeyOf } from '../recovery/recovery-paths';
import { hydrateJournal } from '../recovery/shared-journal';
import { lookUpTaskRecords, type TaskRecordsLookup } from '../recovery/task-records';
import { openStateStore, usesSharedDatabase } from '../state/state-store';

/** Why there are no records, when there are none. */
export type NoRecords =
  /** The ledger has records of this workflow id, and its tree made no call that may change anything: nothing to undo. */
  | { kind: 'changed-nothing'; custodyRecords: number }
  /** The ledger shows calls of `tools` that may have changed things (../custody/task-custody-summary.ts), but no recovery record of them is here. */
  | { kind: 'changes-not-found'; custodyRecords: number; tools: string[] }
  /** No custody record of this workflow id either (or a run named: the ledger counts workflows, not runs). */
  | { kind: 'never-ran-here' };

export interface CliTaskRecords {
  /** The folder the records were looked for in (and rollback restores from). */
  recoveryDir: string;
  lookup: TaskRecordsLookup;
  /** Set when `lookup` is undefined. */
  none?: NoRecords;
}

/** Takes every journal the shared database holds for the task tree of `workflowId` into `recoveryDir` (each run's into its own). */
async function hydrateSharedJournals(env: NodeJS.ProcessEnv, stateDir: string, recoveryDir: string, workflowId: string): Promise<void> {
  const state = await openStateStore({ stateDir, env });
  try {
    const legacy = taskKeyOf(workflowId.split('/')[0]!);
    const prefix = `${legacy}${RUN_SEPARATOR_TEXT}`;
    const rows = await state.db.all<{ journal_key: string }>('SELECT DISTINCT journal_key FROM warden_undo_calls WHERE journal_key = $1 OR substr(journal_key, 1, $2) = $3', [legacy, prefix.length, prefix]);
    for (const { journal_key: taskKey } of rows) await hydrateJournal(state.db, { journal: journalPathOf(recoveryDir, taskKey), journalKey: taskKey });
  } finally {
    await state.close();
  }
}

/**
 * The recovery records of `workflowId` (a run of it when `runId` is given) as the CLI sees them,
 * and, when there are none, why (see the module comment).
 * @throws the state store's errors when a shared database cannot be reached.
 */
export async function lookUpCliTaskRecords(env: NodeJS.ProcessEnv, stateDir: string, workflowId: string, runId?: string): Promise<CliTaskRecords> {
  const recoveryDir = sharedDirOf(env, stateDir);
  const sharedDatabase = usesSharedDatabase(env);
  if (sharedDatabase) await hydrateSharedJournals(env, stateDir, recoveryDir, workflowId);
  const lookup = await lookUpTaskRecords(recoveryDir, workflowId, runId);
  if (lookup !== undefined) return { recoveryDir, lookup };
  if (runId !== undefined) return { recoveryDir, lookup, none: { kind: 'never-ran-here' } };
  const custody = await taskCustodySummaryOf(stateDir, workflowId, env);
  if (custody.records === 0) return { recoveryDir, lookup, none: { kind: 'never-ran-here' } };
  if (custody.changingTools.length > 0) return { recoveryDir, lookup, none: { kind: 'changes-not-found', custodyRecords: custody.records, tools: custody.changingTools } };
  return { recoveryDir, lookup, none: { kind: 'changed-nothing', custodyRecords: custody.records } };
}
