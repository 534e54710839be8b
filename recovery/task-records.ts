/** Everything recovery recorded for one task tree, found by workflow id (for the CLI). */
import * as fs from 'node:fs';
import { journalPathOf, overlayPathsOf, taskKeyOf } from './recovery-paths';
import { listSnapshots, type SnapshotManifest } from './snapshot-store';
import { listJournaledCalls, type JournaledCall } from './sql-undo-journal';
import { walkFiles } from './walk-files';

export interface TaskRecords {
  workflowId: string;
  taskKey: string;
  snapshots: SnapshotManifest[];
  journal: string;
  sqlCalls: JournaledCall[];
  /** Files in the overlay not committed (the task runs, or ended without commit or discard). */
  pendingOverlayFiles: string[];
}

async function recordsOfKey(stateDir: string, workflowId: string, taskKey: string): Promise<TaskRecords> {
  const journal = journalPathOf(stateDir, taskKey);
  return {
    workflowId,
    taskKey,
    snapshots: await listSnapshots(stateDir, taskKey),
    journal,
    sqlCalls: listJournaledCalls(journal),
    pendingOverlayFiles: await walkFiles(overlayPathsOf(stateDir, taskKey).upper),
  };
}

function isEmpty(records: TaskRecords): boolean {
  return records.snapshots.length === 0 && records.sqlCalls.length === 0 && records.pendingOverlayFiles.length === 0 && !fs.existsSync(records.journal);
}

/**
 * The records of `workflowId`'s task tree. Recovery state is kept per root workflow, so for a
 * sub-agent's id (`<root>/<child>`) the nearest ancestor id with records is used.
 */
export async function findTaskRecords(stateDir: string, workflowId: string): Promise<TaskRecords | undefined> {
  const candidates = [workflowId];
  for (let cut = workflowId.lastIndexOf('/'); cut > 0; cut = workflowId.lastIndexOf('/', cut - 1)) candidates.push(workflowId.slice(0, cut));
  for (const id of candidates) {
    const records = await recordsOfKey(stateDir, id, taskKeyOf(id));
    if (!isEmpty(records)) return records;
  }
  return undefined;
}
