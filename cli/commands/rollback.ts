/**
 * `warden rollback <workflowId> [--force] [--snapshot]`: puts the workspace back to how it was
 * before the task (also after the task committed) and undoes its journaled SQL calls.
 */
import { WardenError } from '../../errors';
import { undoAllSqlCalls } from '../../recovery/sql-undo-journal';
import { RUN_SEPARATOR_TEXT } from '../../recovery/recovery-paths';
import { restoreSnapshot } from '../../recovery/workspace-snapshot';
import { rollbackTask } from '../../recovery/workspace-rollback';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { parseCommandArgs, usageError, workflowIdUsageError } from '../parse-command-args';
import { terminalJson, terminalLine } from '../../terminal-text';
import { printCommandError } from '../command-error';
import { changedNothingText, noRecordsText } from './snapshots';
import { lookUpCliTaskRecords } from '../task-records-lookup';

export const ROLLBACK_USAGE = `usage: warden rollback <workflowId> [--run <runId>] [--force] [--snapshot] [--json]

  restores every workspace file the task's commit wrote to what it replaced (files the task
  created are deleted) and undoes the task's journaled SQL calls, newest first; a task with no
  recovery record that ran and made no call that may change things (its custody records say
  so) exits 0 saying so; any other id without records exits 1 (ERR_TASK_RECORDS_NOT_FOUND)

  --run       the run to roll back (its first run id), when the workflow id was used by several
              runs (each run's files and SQL are kept apart; without --run that is refused:
              ERR_TASK_RUN_AMBIGUOUS, exit 2, naming the runs)
  --force     also overwrite files and rows changed since the task (otherwise refused)
  --snapshot  restore the pre-task snapshot instead (workspace files and databases), for tasks
              run with snapshot: true
  --json      one JSON object with what was restored, deleted and undone; on an error,
              { workflowId, error: { code, message } } (and the error line on stderr)`;

export async function rollbackCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('rollback', ROLLBACK_USAGE, argv, io, { run: { type: 'string' }, force: { type: 'boolean' }, snapshot: { type: 'boolean' }, json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) return usageError('rollback', ROLLBACK_USAGE, io, 'expected one workflow id');
  const badId = workflowIdUsageError('rollback', ROLLBACK_USAGE, io, workflowId);
  if (badId !== undefined) return badId;
  const runId = args.values.run;
  if (runId !== undefined && (runId === '' || runId.startsWith('-'))) return usageError('rollback', ROLLBACK_USAGE, io, '--run needs a run id');
  const force = args.values.force === true;
  const json = args.values.json === true;
  const stateDir = stateDirOf(io.env);
  try {
    // Where the workers write recovery records, with a shared database's SQL journals taken in first (../task-records-lookup.ts).
    const { recoveryDir, lookup, none } = await lookUpCliTaskRecords(io.env, stateDir, workflowId, runId);
    if (lookup === undefined) {
      if (none?.kind === 'changed-nothing') {
        const nothing = { status: 'nothing-to-roll-back' as const, restored: [], deleted: [], unchanged: [], forced: [] };
        io.stdout(json ? `${terminalJson({ workflowId, taskKey: null, files: nothing, sql: [], changedNothing: true, custodyRecords: none.custodyRecords })}\n` : `${terminalLine(`nothing to roll back: ${changedNothingText(workflowId, recoveryDir, none.custodyRecords)}`)}\n`);
        return EXIT.ok;
      }
      printCommandError(io, 'rollback', { code: 'ERR_TASK_RECORDS_NOT_FOUND', message: noRecordsText(workflowId, recoveryDir, runId, none) }, { json, context: { workflowId, ...(runId === undefined ? {} : { runId }) } });
      return EXIT.failed;
    }
    if ('ambiguous' in lookup) {
      const runs = lookup.ambiguous.taskKeys.map((k) => (k.includes(RUN_SEPARATOR_TEXT) ? k.slice(k.indexOf(RUN_SEPARATOR_TEXT) + RUN_SEPARATOR_TEXT.length) : '(a run from before runs were kept apart)'));
      const message = `${lookup.ambiguous.workflowId} was used by ${runs.length} runs with recorded changes; name one with --run <runId> (nothing was rolled back): ${runs.join(', ')}`;
      printCommandError(io, 'rollback', { code: 'ERR_TASK_RUN_AMBIGUOUS', message }, { json, context: { workflowId, runs } });
      return EXIT.usage;
    }
    const records = lookup.found;
    const { taskKey } = records;
    if (args.values.snapshot === true) {
      const restored = await restoreSnapshot({ stateDir: recoveryDir, taskKey, force, databases: true });
      io.stdout(
        json
          ? `${terminalJson({ workflowId, taskKey, snapshot: restored })}\n`
          : `${terminalLine(`restored the pre-task snapshot of ${workflowId}: ${restored.restored.length} file(s) restored, ${restored.deleted.length} deleted, ${restored.databases.length} database(s)`)}\n`,
      );
      return EXIT.ok;
    }
    const files = await rollbackTask({ stateDir: recoveryDir, taskKey, force });
    const sql = undoAllSqlCalls({ journal: records.journal, force });
    if (json) {
      io.stdout(`${terminalJson({ workflowId, taskKey, files, sql })}\n`);
      return EXIT.ok;
    }
    const lines: string[] = [];
    if (files.status === 'nothing-to-roll-back') lines.push('workspace: the task committed no files');
    else if (files.status === 'already-rolled-back') lines.push('workspace: already rolled back');
    else {
      lines.push(`workspace: ${files.restored.length} file(s) restored, ${files.deleted.length} deleted${files.forced.length > 0 ? `, ${files.forced.length} forced` : ''}`);
      for (const path of files.restored) lines.push(`  restored ${path}`);
      for (const path of files.deleted) lines.push(`  deleted  ${path}`);
    }
    const undone = sql.filter((c) => c.outcome === 'undone');
    lines.push(sql.length === 0 ? 'SQL: nothing to undo' : `SQL: ${undone.length} call(s) undone`);
    for (const call of sql) lines.push(`  ${call.outcome.padEnd(14)} ${call.callId}  ${call.database}.${call.table}  ${call.rows} row image(s)`);
    // The paths are the task's: an agent chose them (../../terminal-text.ts).
    io.stdout(`${lines.map(terminalLine).join('\n')}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      printCommandError(io, 'rollback', error, { json, context: { workflowId, ...(runId === undefined ? {} : { runId }) } });
      return EXIT.failed;
    }
    throw error;
  }
}
