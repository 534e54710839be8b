/**
 * `warden replay`: proves a recorded run is consistent with the current workflow code (its
 * Temporal history replayed with `Worker.runReplayHistory`; sub-agents' histories too) and with
 * the custody ledger (every `proposeTurn`/`runTool` activity the history shows ran has its
 * record, and every such record has its activity; see custody/history-cross-check.ts).
 * `--repair` appends records re-derived from the history for activities whose span never reached
 * the ledger (a worker killed between effect and record). Histories export to files in the
 * format of test/history-files/ and replay offline with `--file`.
 */
import { parseCommandArgs } from '../parse-command-args';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { childWorkflowIdsOf, crossCheckHistory, deriveMissingRecords, type CrossCheckReport } from '../../custody/history-cross-check';
import { ledgerLocation, openCommandLedger, readTaskRecords } from '../../custody/process-ledger';
import type { LedgerRecord } from '../../custody/ledger-record';
import { ConfigError, WardenError } from '../../errors';
import { stateDirOf } from '../../state-dir';
import { rootWorkflowIdOf } from '../../telemetry/warden-span-attributes';
import { connectClient } from '../../temporal/connect';
import { TaskNotFoundError, withTaskOf } from '../../client/task-not-found';
import { AGENT_TASK_WORKFLOW } from '../../workflows/definitions';
import { runningServerConfig } from '../temporal-client';
import { installQuietRuntime } from '../../worker/create-warden-worker';
import { workflowBundle } from '../../worker/workflow-bundle';
import type { CliIo } from '../cli-io';
import { readHistoryFile } from '../history-file';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const REPLAY_USAGE = `usage: warden replay <workflowId> [--export <file>] [--repair] [--json]
       warden replay --file <history.json> [--repair] [--json]

  Replays the workflow's Temporal history (and its sub-agents') against the current workflow
  code, then cross-checks every proposeTurn/runTool activity in the history against the custody
  ledger (<state folder>/custody.db). Exit 0 when both agree, 1 naming each disagreement.
  --export <file>  also write the history as JSON ({ workflowId, history }) for offline replay
  --file <file>    replay a history file instead of fetching one from Temporal: Warden's export, or
                   Temporal's JSON (temporal workflow show --output json, the Web UI's download)
  --repair         append records re-derived from the history (kind derived-from-history) for
                   activities that ran but whose span never reached the ledger
  --json           print the report as one JSON object`;

const { History } = temporal.api.history.v1;
type IHistory = temporal.api.history.v1.IHistory;
/** Protobuf's canonical object form, as test/history-files/ stores histories. */
const TO_OBJECT = { longs: String, enums: String, bytes: String } as const;

/** A history in the exported file format: `{ workflowId, history }`. */
export function exportHistoryJson(workflowId: string, history: IHistory): string {
  return `${terminalJson({ workflowId, history: History.toObject(History.fromObject(history), TO_OBJECT) }, 1)}\n`;
}

export interface WorkflowReplayReport {
  workflowId: string;
  events: number;
  /** Error of the replay (nondeterminism), if any. */
  replayError?: string;
  custody?: CrossCheckReport;
  /** Records appended by `--repair`. */
  repaired?: number[];
}

export interface ReplayReport {
  ok: boolean;
  ledger: string | null;
  workflows: WorkflowReplayReport[];
}

/** The workflow type a history's first event (WorkflowExecutionStarted) names; undefined when it names none. */
function workflowTypeOf(history: IHistory): string | undefined {
  return history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? undefined;
}

async function loadHistories(io: CliIo, workflowId: string | undefined, file: string | undefined): Promise<{ workflowId: string; history: IHistory }[]> {
  if (file !== undefined) return [await readHistoryFile(file)];
  const { client, connection } = await connectClient(await runningServerConfig(io.env));
  try {
    const out: { workflowId: string; history: IHistory }[] = [];
    const queue = [workflowId as string];
    while (queue.length > 0) {
      const id = queue.shift() as string;
      // A long task continues as new: every run of it has its own history, oldest first.
      const runs: IHistory[] = [];
      let history: IHistory | undefined = await withTaskOf(id, () => client.workflow.getHandle(id).fetchHistory());
      // Only Warden's own workflows replay against Warden's code: another type has no function here.
      const type = workflowTypeOf(history);
      if (type !== AGENT_TASK_WORKFLOW) throw new TaskNotFoundError(id, undefined, type ?? 'unknown');
      while (history !== undefined) {
        runs.unshift(history);
        const previous: string | null | undefined = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
        history = previous ? await withTaskOf(id, () => client.workflow.getHandle(id, previous).fetchHistory()) : undefined;
      }
      for (const run of runs) {
        out.push({ workflowId: id, history: run });
        queue.push(...childWorkflowIdsOf(run));
      }
    }
    return out;
  } finally {
    await connection.close();
  }
}

function describe(report: ReplayReport): string {
  const lines: string[] = [];
  for (const w of report.workflows) {
    lines.push(w.replayError === undefined ? `${w.workflowId}: ${w.events} events replay against the current workflow code` : `${w.workflowId}: REPLAY FAILED: ${w.replayError}`);
    const custody = w.custody;
    if (custody === undefined) continue;
    for (const seq of w.repaired ?? []) lines.push(`  repaired: appended custody record ${seq} re-derived from the history`);
    if (custody.ok) {
      lines.push(`  custody: ${custody.activities} activit${custody.activities === 1 ? 'y' : 'ies'} in the history, each with its record (${custody.matched.map((m) => `${m.activityType}#${m.activityId}→${m.seqs.join('/')}`).join(', ') || 'none'})`);
    } else {
      for (const m of custody.mismatches) lines.push(`  MISMATCH ${m.kind}: ${m.message}`);
    }
  }
  if (report.ledger === null) lines.push('custody: no ledger here; cross-check skipped');
  lines.push(report.ok ? 'replay: consistent' : 'replay: INCONSISTENT');
  // A replay error and a mismatch quote the history: others' text (../../terminal-text.ts).
  return `${lines.map(terminalLine).join('\n')}\n`;
}

export async function replayCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('replay', REPLAY_USAGE, argv, io, {
    export: { type: 'string' },
    file: { type: 'string' },
    repair: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  const file = args.values.file;
  if (extra.length > 0 || (workflowId === undefined) === (file === undefined) || (file !== undefined && args.values.export !== undefined)) {
    io.stderr(`warden replay: expected a workflow id or --file <history.json> (not both; --export only with a workflow id)\n${REPLAY_USAGE}\n`);
    return EXIT.usage;
  }
  const stateDir = stateDirOf(io.env);
  const exportTo = args.values.export;
  try {
    // Where the history goes is checked before it is fetched (cli/output-file.ts).
    if (exportTo !== undefined) await checkOutputFile(exportTo, { option: '--export' });
    let histories;
    try {
      histories = await loadHistories(io, workflowId, file);
    } catch (error) {
      // A history file that is not one is bad input: exit 2, as for a bad task file.
      if (file !== undefined && error instanceof ConfigError) {
        io.stderr(`warden replay: ${error.code}: ${terminalLines(error.message)}\n`);
        return EXIT.usage;
      }
      throw error;
    }
    if (exportTo !== undefined) {
      const first = histories[0];
      if (first !== undefined) await writeOutputFile(exportTo, exportHistoryJson(first.workflowId, first.history), { option: '--export' });
    }

    installQuietRuntime();
    const bundle = await workflowBundle(join(stateDir, 'cache'));

    const location = ledgerLocation(stateDir, io.env);
    const ledgerPath = location.description;
    const hasLedger = location.exists;
    if (!hasLedger && file === undefined) {
      io.stderr(`${terminalLine(`warden replay: ERR_CUSTODY_NOT_FOUND: no custody ledger at ${ledgerPath} to cross-check the history against`)}\n`);
      return EXIT.failed;
    }
    const recordsOf = (taskId: string): Promise<LedgerRecord[]> => readTaskRecords(stateDir, io.env, taskId);

    const workflows: WorkflowReplayReport[] = [];
    for (const { workflowId: id, history } of histories) {
      const report: WorkflowReplayReport = { workflowId: id, events: history.events?.length ?? 0 };
      const type = workflowTypeOf(history);
      // Another type has no function in Warden's bundle: the SDK only logs the failed activation and
      // the replay "passed" (a history file of someone else's workflow was reported consistent).
      if (type !== AGENT_TASK_WORKFLOW) report.replayError = `not a Warden task: its workflow type is ${type ?? 'not recorded'}, not ${AGENT_TASK_WORKFLOW}`;
      else {
        try {
          await Worker.runReplayHistory({ workflowBundle: bundle }, history, id);
        } catch (error) {
          report.replayError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        }
      }
      if (hasLedger) {
        const taskId = rootWorkflowIdOf(id);
        let custody = crossCheckHistory(id, history, await recordsOf(taskId));
        if (args.values.repair && custody.mismatches.some((m) => m.kind === 'missing-record')) {
          const ledger = openCommandLedger(stateDir, io.env);
          try {
            report.repaired = (await ledger.appendMany(deriveMissingRecords(custody, history, taskId))).map((r) => r.record.seq);
            await ledger.checkpoint(taskId);
          } finally {
            await ledger.close();
          }
          custody = crossCheckHistory(id, history, await recordsOf(taskId));
        }
        report.custody = custody;
      }
      workflows.push(report);
    }
    const ok = workflows.every((w) => w.replayError === undefined && (w.custody === undefined || w.custody.ok));
    const report: ReplayReport = { ok, ledger: hasLedger ? ledgerPath : null, workflows };
    io.stdout(args.values.json ? `${terminalJson(report, 2)}\n` : describe(report));
    return ok ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden replay: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    if (error instanceof TypeError) {
      io.stderr(`warden replay: ${terminalLines((error as Error).message)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
