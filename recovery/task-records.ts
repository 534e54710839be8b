/** Everything recovery recorded for one task tree, found by workflow id (for the CLI). */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { journalPathOf, overlayPathsOf, runKeysAmong, snapshotsDirOf, taskKeyOf } from './recovery-paths';
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

/** Every task key recovery holds a record under (overlays, journals, commit and pre-task manifests). */
function taskKeysIn(stateDir: string): Set<string> {
  const keys = new Set<string>();
  const names = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const name of names(join(stateDir, 'overlays'))) keys.add(name);
  for (const name of names(join(stateDir, 'journals'))) if (name.endsWith('.sqlite')) keys.add(name.slice(0, -'.sqlite'.length));
  for (const dir of [snapshotsDirOf(stateDir), join(snapshotsDirOf(stateDir), 'pre-task')]) {
    for (const name of names(dir)) if (name.endsWith('.json')) keys.add(name.slice(0, -'.json'.length));
  }
  return keys;
}

/** The keys recorded for one root workflow id: one per run (trees keyed by run) plus its key from before. */
export function taskKeysOfWorkflow(stateDir: string, workflowId: string, extraKeys: Iterable<string> = []): { runs: string[]; legacy: string } {
  return runKeysAmong(workflowId, new Set([...taskKeysIn(stateDir), ...extraKeys]));
}

/** What `findTaskRecords` found: one run's records, or several runs under the id (the caller names one). */
export type TaskRecordsLookup = { found: TaskRecords } | { ambiguous: { workflowId: string; taskKeys: string[] } } | undefined;

/**
 * The records of `workflowId`'s task tree. Recovery state is kept per root workflow run, so for a
 * sub-agent's id (`<root>/<child>`) the nearest ancestor id with records is used. A workflow id
 * reused by several runs is ambiguous unless `runId` (the root's first run id) names one: the
 * records of one run are never mixed with another's.
 */
export async function lookUpTaskRecords(stateDir: string, workflowId: string, runId?: string): Promise<TaskRecordsLookup> {
  const candidates = [workflowId];
  for (let cut = workflowId.lastIndexOf('/'); cut > 0; cut = workflowId.lastIndexOf('/', cut - 1)) candidates.push(workflowId.slice(0, cut));
  for (const id of candidates) {
    if (runId !== undefined) {
      const records = await recordsOfKey(stateDir, id, taskKeyOf(id, runId));
      if (!isEmpty(records)) return { found: records };
      continue;
    }
    const { runs, legacy } = taskKeysOfWorkflow(stateDir, id);
    const withRecords: TaskRecords[] = [];
    for (const key of [...runs, legacy]) {
      const records = await recordsOfKey(stateDir, id, key);
      if (!isEmpty(records)) withRecords.push(records);
    }
    if (withRecords.length === 1) return { found: withRecords[0]! };
    if (withRecords.length > 1) return { ambiguous: { workflowId: id, taskKeys: withRecords.map((r) => r.taskKey) } };
  }
  return undefined;
}

/** The records of `workflowId`'s task tree, or undefined when none or several runs have records (see lookUpTaskRecords). */
export async function findTaskRecords(stateDir: string, workflowId: string, runId?: string): Promise<TaskRecords | undefined> {
  const lookup = await lookUpTaskRecords(stateDir, workflowId, runId);
  return lookup !== undefined && 'found' in lookup ? lookup.found : undefined;
}

/** The records kept under one task key (as `lookUpTaskRecords` names them). */
export async function findTaskRecordsOfKey(stateDir: string, workflowId: string, taskKey: string): Promise<TaskRecords> {
  return recordsOfKey(stateDir, workflowId, taskKey);
}
