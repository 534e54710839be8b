/**
 * Runs one compensation descriptor (recovery/compensation.ts). Meant for an activity: every kind
 * is idempotent, so Temporal may retry it freely.
 *
 * - `fs-overlay-discard` removes the overlay; if a commit of the task was interrupted halfway, it
 *   also rolls that partial commit back, so a failed task leaves the workspace as it found it.
 * - `fs-overlay-undo` gives the overlay paths one call wrote back what they held before it.
 * - `sql-undo` applies the journal's inverse in one transaction per database, recorded in the
 *   target database itself (exactly once).
 * - `tool` runs the compensating tool once per compensation id: completed ids are kept in a
 *   ledger under the state folder. A crash after the tool ran and before the ledger was written
 *   runs it again, so a compensating tool should itself be idempotent (it receives the id).
 *   For a call whose start is in doubt (`startedOnly`), only when the call's start record says it
 *   started (recovery/call-starts.ts): else `not-run` (fenced off, it never will), or `unknown`
 *   when this folder cannot say (it is not the one the call's worker wrote to).
 */
import * as fsp from 'node:fs/promises';
import { RecoveryError, WardenError } from '../errors';
import { writeJsonAtomic } from './atomic-file';
import { CompensationSchema, type Compensation } from './compensation';
import { callStartPathOf, compensationLedgerPathOf, journalPathOf } from './recovery-paths';
import { fenceUnstartedCall, readCallStart } from './call-starts';
import { undoSqlCall } from './sql-undo-journal';
import { discardOverlay } from './workspace-overlay';
import { undoOverlayCall } from './overlay-undo';
import { rollbackTask } from './workspace-rollback';

export interface CompensationDeps {
  /** Where recovery records live (journals, snapshots, the compensation ledger). */
  stateDir: string;
  /** The state folder holding the task's overlay, when it is not `stateDir`. */
  overlayStateDir?: string;
  taskKey: string;
  /** The undo journal; defaults to `journalPathOf(stateDir, taskKey)`. */
  journal?: string;
  /** Database name -> file; defaults to the paths recorded in the journal. */
  databases?: Readonly<Record<string, string>>;
  /** Runs a compensating tool (in the sandbox, like any tool call) and returns its output. */
  runTool?: (tool: string, input: unknown) => Promise<unknown>;
  /** Overwrite later changes when undoing (otherwise conflicts fail with ERR_ROLLBACK_CONFLICT). */
  force?: boolean;
  /**
   * A `tool` compensation's call may never have started: run the compensating tool only when the
   * call's start record in `stateDir` says it started. `fence`: `stateDir` is the folder every
   * worker of the call wrote its record to, so no record means never started, and the call is
   * fenced off for good; `read`: it may not be, so no record means `unknown`.
   */
  startedOnly?: 'fence' | 'read';
}

export interface CompensationOutcome {
  kind: Compensation['kind'];
  /** `not-run`: the original call never started, nothing was run for it; `unknown`: whether it started cannot be told here, nothing was run. */
  status: 'done' | 'already-done' | 'nothing-to-do' | 'not-run' | 'unknown';
  detail: string;
}

/** Executes `compensation` once; running it again reports `already-done` or `nothing-to-do`. */
export async function runCompensation(compensation: Compensation, deps: CompensationDeps): Promise<CompensationOutcome> {
  const parsed = CompensationSchema.parse(compensation);
  try {
    switch (parsed.kind) {
      case 'fs-overlay-discard': {
        const discarded = await discardOverlay({ stateDir: deps.stateDir, taskKey: parsed.taskKey, ...(deps.overlayStateDir === undefined ? {} : { overlayStateDir: deps.overlayStateDir }) });
        if (discarded.interruptedCommit) {
          const rollback = await rollbackTask({ stateDir: deps.stateDir, taskKey: parsed.taskKey, ...(deps.force === true ? { force: true } : {}) });
          return { kind: parsed.kind, status: 'done', detail: `overlay discarded; interrupted commit rolled back (${rollback.restored.length} restored, ${rollback.deleted.length} deleted)` };
        }
        return discarded.discarded
          ? { kind: parsed.kind, status: 'done', detail: 'overlay discarded' }
          : { kind: parsed.kind, status: 'nothing-to-do', detail: 'no overlay' };
      }
      case 'fs-overlay-undo': {
        const undone = await undoOverlayCall({ stateDir: deps.overlayStateDir ?? deps.stateDir, taskKey: deps.taskKey, callId: parsed.callId });
        const count = undone.restored.length + undone.removed.length;
        if (count === 0) return { kind: parsed.kind, status: 'nothing-to-do', detail: 'no overlay write under this call id' };
        return { kind: parsed.kind, status: 'done', detail: `undid ${count} overlay write(s)` };
      }
      case 'sql-undo': {
        const result = undoSqlCall({
          journal: deps.journal ?? journalPathOf(deps.stateDir, deps.taskKey),
          callId: parsed.callId,
          ...(deps.databases === undefined ? {} : { databases: deps.databases }),
          ...(deps.force === true ? { force: true } : {}),
        });
        const undone = result.calls.filter((c) => c.outcome === 'undone');
        const already = result.calls.filter((c) => c.outcome === 'already-undone');
        const rows = undone.reduce((sum, c) => sum + c.rows, 0);
        if (undone.length > 0) return { kind: parsed.kind, status: 'done', detail: `undid ${undone.length} SQL call(s), ${rows} row change(s)` };
        if (already.length > 0) return { kind: parsed.kind, status: 'already-done', detail: 'already undone' };
        return { kind: parsed.kind, status: 'nothing-to-do', detail: 'no applied SQL change under this call id' };
      }
      case 'tool': {
        const ledgerFile = compensationLedgerPathOf(deps.stateDir, deps.taskKey);
        const ledger = await readLedger(ledgerFile);
        const id = parsed.input.compensationId;
        if (Object.hasOwn(ledger.done, id)) return { kind: parsed.kind, status: 'already-done', detail: `${parsed.tool} already ran` };
        if (deps.startedOnly !== undefined) {
          const record = callStartPathOf(deps.stateDir, deps.taskKey, parsed.callId);
          const start = deps.startedOnly === 'fence' ? await fenceUnstartedCall(record, parsed.callId) : await readCallStart(record);
          if (start === 'never') return { kind: parsed.kind, status: 'not-run', detail: `${parsed.forTool} never started: ${parsed.tool} not run` };
          if (start === undefined) return { kind: parsed.kind, status: 'unknown', detail: `no record here that ${parsed.forTool} started, and this worker's recovery folder is not shared: ${parsed.tool} not run` };
        }
        if (deps.runTool === undefined) throw new TypeError('runCompensation: a tool compensation needs deps.runTool');
        await deps.runTool(parsed.tool, parsed.input);
        const latest = await readLedger(ledgerFile);
        await writeJsonAtomic(ledgerFile, { done: { ...latest.done, [id]: new Date().toISOString() } });
        return { kind: parsed.kind, status: 'done', detail: `ran ${parsed.tool}` };
      }
    }
  } catch (error) {
    // Typed failures (conflicts, missing snapshots, unreadable databases) keep their code.
    if (error instanceof WardenError || error instanceof TypeError) throw error;
    throw new RecoveryError('ERR_COMPENSATION_FAILED', `compensation ${parsed.kind} failed: ${error instanceof Error ? error.message : String(error)}`, {
      details: { kind: parsed.kind },
      cause: error,
      retryable: true,
    });
  }
}

async function readLedger(file: string): Promise<{ done: Record<string, string> }> {
  try {
    const parsed = JSON.parse(await fsp.readFile(file, 'utf8')) as { done?: Record<string, string> };
    return { done: parsed.done ?? {} };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { done: {} };
    throw error;
  }
}
