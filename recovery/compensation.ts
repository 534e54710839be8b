/**
 * Compensation descriptors: how one successful tool call is undone, as data the workflow can
 * record after each step and hand back (newest first) to `runCompensation` when the task fails.
 *
 * Deliberately free of side effects and Node imports: workflow code may import this file.
 *
 * What each built-in needs:
 * - `fs.write`: nothing per call. Every write of the task tree lands in its overlay, which one
 *   `fs-overlay-discard` (registered once per task, `overlayCompensation`) throws away whole.
 * - `sql.exec`: `sql-undo` of the call id (journaled calls only).
 * - `http.fetch`: none; a request that reached a server cannot be taken back by Warden. The plan
 *   says so (`undoable: false`) so the result can report it.
 * - reads (`fs.read`, `fs.list`, `sql.query`): nothing to undo.
 * A user-defined tool that declares `compensate: <tool>` is undone by running that tool with the
 * original arguments and output; otherwise by what its capabilities imply (as above).
 */
import { z } from 'zod';

export const OriginalCallSchema = z.strictObject({ tool: z.string(), args: z.unknown(), output: z.unknown() });

export const CompensationSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('fs-overlay-discard'),
    /** The task tree whose overlay is thrown away (see recovery-paths `taskKeyOf`). */
    taskKey: z.string(),
  }),
  z.strictObject({
    kind: z.literal('sql-undo'),
    /** The tool call's id: its journaled `sql.exec`s (and their `#n` sub-calls) are undone. */
    callId: z.string(),
    /** The tool that made the change (for reports). */
    forTool: z.string(),
  }),
  z.strictObject({
    kind: z.literal('tool'),
    /** The compensating tool the task declares. */
    tool: z.string(),
    forTool: z.string(),
    /** The original call's id; with the tool name it keys the compensation (run once). */
    callId: z.string(),
    /** What the compensating tool receives as input. */
    input: z.strictObject({ compensationId: z.string(), original: OriginalCallSchema }),
  }),
]);
export type Compensation = z.infer<typeof CompensationSchema>;

/** How one call is undone. */
export interface CompensationPlan {
  /** Run these (in order) to undo the call; empty when nothing per call is needed or possible. */
  compensations: Compensation[];
  /** False when the call may have had an effect Warden cannot undo. */
  undoable: boolean;
  /** Why, in a few words, for the task result. */
  note: string;
}

export interface CompensationContext {
  /** The call's idempotency key (the same id passed as the sql grant's `callId`). */
  callId: string;
  /** The call's arguments (passed on to a compensating tool). */
  args?: unknown;
  /** A user-defined tool's declared capabilities. */
  capabilities?: readonly string[];
  /** A user-defined tool's compensating tool. */
  compensate?: string;
  /** Whether `sql.exec` ran with an undo journal. */
  journaled?: boolean;
}

const READ_ONLY = new Set(['fs.read', 'fs.list', 'sql.query']);
const BUILTINS = new Set(['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'sql.exec']);

/** The compensation of the task tree's overlay: registered once, before the first tool runs. */
export function overlayCompensation(taskKey: string): Compensation {
  return { kind: 'fs-overlay-discard', taskKey };
}

/** How to undo one successful call of `toolName` that returned `output`. */
export function compensationFor(toolName: string, output: unknown, context: CompensationContext): CompensationPlan {
  if (BUILTINS.has(toolName)) return builtinPlan(toolName, output, context);
  if (context.compensate !== undefined) {
    return {
      compensations: [
        {
          kind: 'tool',
          tool: context.compensate,
          forTool: toolName,
          callId: context.callId,
          input: { compensationId: `${context.compensate}:${context.callId}`, original: { tool: toolName, args: context.args ?? null, output: output ?? null } },
        },
      ],
      undoable: true,
      note: `undone by its compensating tool ${context.compensate}`,
    };
  }
  const capabilities = new Set(context.capabilities ?? []);
  const compensations: Compensation[] = [];
  const notes: string[] = [];
  let undoable = true;
  if (capabilities.has('fs.write')) notes.push('file writes are in the overlay');
  if (capabilities.has('sql.exec')) {
    if (context.journaled === true) {
      compensations.push({ kind: 'sql-undo', callId: context.callId, forTool: toolName });
      notes.push('SQL changes are undone from the journal');
    } else {
      undoable = false;
      notes.push('SQL changes were not journaled');
    }
  }
  if (capabilities.has('http.fetch')) {
    undoable = false;
    notes.push('HTTP requests cannot be undone (declare a compensating tool)');
  }
  return { compensations, undoable, note: notes.length === 0 ? 'no side effects' : notes.join('; ') };
}

function builtinPlan(toolName: string, output: unknown, context: CompensationContext): CompensationPlan {
  if (READ_ONLY.has(toolName)) return { compensations: [], undoable: true, note: 'read-only' };
  if (toolName === 'fs.write') return { compensations: [], undoable: true, note: 'in the overlay, discarded as a whole' };
  if (toolName === 'http.fetch') return { compensations: [], undoable: false, note: 'an HTTP request cannot be undone' };
  // sql.exec
  const result = typeof output === 'object' && output !== null ? (output as { changes?: unknown; rowsChanged?: unknown }) : {};
  if (result.changes === 0 && (result.rowsChanged === undefined || result.rowsChanged === 0)) {
    return { compensations: [], undoable: true, note: 'changed no rows' };
  }
  if (context.journaled !== true) {
    return { compensations: [], undoable: false, note: 'ran without an undo journal' };
  }
  return { compensations: [{ kind: 'sql-undo', callId: context.callId, forTool: toolName }], undoable: true, note: 'undone from the SQL journal' };
}
