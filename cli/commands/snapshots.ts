/** `warden snapshots <workflowId>`: what recovery recorded for a task (snapshots, commit, SQL journal). */
import { WardenError } from '../../errors';
import { findTaskRecordsOfKey, type TaskRecords } from '../../recovery/task-records';
import { lookUpCliTaskRecords, type NoRecords } from '../task-records-lookup';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { parseCommandArgs, usageError, workflowIdUsageError } from '../parse-command-args';
import { terminalJson, terminalLine } from '../../terminal-text';
import { printCommandError } from '../command-error';

export const SNAPSHOTS_USAGE = `usage: warden snapshots <workflowId> [--json]

  lists the snapshots of a task (pre-task copy, the commit of its overlay with what each file
  replaced) and its journaled SQL calls; a task with no recovery record that ran and made no
  call that may change things says so (exit 0); any other id without records exits 1
  (ERR_TASK_RECORDS_NOT_FOUND)
  --json  one JSON object with the records; on an error, { workflowId, error: { code, message } }
          (and the error line on stderr)`;

export async function snapshotsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('snapshots', SNAPSHOTS_USAGE, argv, io, { json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const json = args.values.json === true;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) return usageError('snapshots', SNAPSHOTS_USAGE, io, 'expected one workflow id');
  const badId = workflowIdUsageError('snapshots', SNAPSHOTS_USAGE, io, workflowId);
  if (badId !== undefined) return badId;
  const stateDir = stateDirOf(io.env);
  try {
    const { recoveryDir, lookup, none } = await lookUpCliTaskRecords(io.env, stateDir, workflowId);
    // A workflow id reused by several runs: each run's records, apart.
    const all = lookup === undefined ? [] : 'found' in lookup ? [lookup.found] : await Promise.all(lookup.ambiguous.taskKeys.map(async (key) => (await findTaskRecordsOfKey(recoveryDir, lookup.ambiguous.workflowId, key))!));
    const records = all[0];
    if (records === undefined) {
      if (none?.kind === 'changed-nothing') {
        io.stdout(json ? `${terminalJson({ workflowId, snapshots: [], sqlCalls: [], pendingOverlayFiles: [], changedNothing: true, custodyRecords: none.custodyRecords })}\n` : `${terminalLine(changedNothingText(workflowId, recoveryDir, none.custodyRecords))}\n`);
        return EXIT.ok;
      }
      printCommandError(io, 'snapshots', { code: 'ERR_TASK_RECORDS_NOT_FOUND', message: noRecordsText(workflowId, recoveryDir, undefined, none) }, { json, context: { workflowId } });
      return EXIT.failed;
    }
    io.stdout(json ? `${terminalJson(all.length === 1 ? records : all)}\n` : all.map(formatRecords).join(''));
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      printCommandError(io, 'snapshots', error, { json, context: { workflowId } });
      return EXIT.failed;
    }
    throw error;
  }
}

/**
 * What `snapshots` and `rollback` say (ERR_TASK_RECORDS_NOT_FOUND, exit 1 as ERR_TASK_NOT_FOUND)
 * when `recoveryDir` holds no recovery record of the workflow id (`run`: of that run); `none`
 * says why, when the shared custody ledger knows the task ran (../task-records-lookup.ts).
 */
export function noRecordsText(workflowId: string, recoveryDir: string, runId?: string, none?: NoRecords): string {
  if (none?.kind === 'changes-not-found') {
    return `${workflowId} ran and made calls that may have changed things (${none.tools.join(', ')}: ${none.custodyRecords} custody record${none.custodyRecords === 1 ? '' : 's'} of it), but ${recoveryDir} holds no recovery record of them: either they left nothing Warden can undo, or the worker that ran it keeps its records elsewhere (set WARDEN_SHARED_DIR as the workers have it, or run this with that worker's state folder)`;
  }
  return `nothing recorded for ${workflowId}${runId === undefined ? '' : ` run ${runId}`} under ${recoveryDir}: no task of this state folder with that workflow id took a snapshot, committed files or journaled SQL (warden list shows the tasks)`;
}

/**
 * What `snapshots` and `rollback` say (exit 0) of a task that ran (the custody ledger holds
 * `custodyRecords` records of its workflow id), made no call that may have changed things, and
 * left no recovery record in `recoveryDir`: there is nothing to list or roll back.
 */
export function changedNothingText(workflowId: string, recoveryDir: string, custodyRecords: number): string {
  return `task ${workflowId} ran (${custodyRecords} custody record${custodyRecords === 1 ? '' : 's'}) and changed nothing Warden keeps a record to undo: no snapshot, committed file or journaled SQL call of it under ${recoveryDir} (warden trace ${workflowId} shows what it did)`;
}

const short = (sha: string | null) => (sha === null ? 'absent' : sha.slice(0, 12));

export function formatRecords(records: TaskRecords): string {
  const lines = [`task ${records.workflowId}${records.taskKey === records.workflowId ? '' : ` (key ${records.taskKey})`}`];
  if (records.snapshots.length === 0) lines.push('no snapshots');
  for (const snapshot of records.snapshots) {
    const when = snapshot.kind === 'pre-task' ? snapshot.createdAt : (snapshot.rolledBackAt ?? snapshot.committedAt ?? snapshot.createdAt);
    lines.push(`${snapshot.kind} snapshot, ${snapshot.status}, ${when}: ${snapshot.entries.length} file(s) in ${snapshot.workspace || '(no workspace)'}`);
    const width = Math.max(0, ...snapshot.entries.map((e) => e.path.length));
    for (const entry of snapshot.entries) {
      lines.push(
        snapshot.kind === 'pre-task'
          ? `  ${entry.path.padEnd(width)}  ${short(entry.after)}`
          : `  ${entry.path.padEnd(width)}  ${short(entry.before)} -> ${short(entry.after)}${entry.before === null ? '  (created by the task)' : ''}`,
      );
    }
    for (const database of snapshot.databases ?? []) lines.push(`  database ${database.name} (${database.path})  ${short(database.object)}`);
  }
  if (records.sqlCalls.length > 0) {
    lines.push(`SQL journal ${records.journal}: ${records.sqlCalls.length} call(s)`);
    for (const call of records.sqlCalls) {
      const state = call.undoneAt === null ? 'not undone' : `${call.undoOutcome ?? 'undone'} ${call.undoneAt}`;
      lines.push(`  ${call.callId}  ${call.op} ${call.database}.${call.table}  ${call.changes} change(s), ${call.rowsChanged} row image(s)  ${call.recordedAt}  ${state}`);
    }
  }
  if (records.pendingOverlayFiles.length > 0) {
    lines.push(`overlay not committed: ${records.pendingOverlayFiles.length} file(s): ${records.pendingOverlayFiles.join(', ')}`);
  }
  // Paths, database and table names are the task's: an agent chose them (../../terminal-text.ts).
  return `${lines.map(terminalLine).join('\n')}\n`;
}
