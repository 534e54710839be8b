/**
 * Compensation descriptors: how one successful tool call is undone, as data the workflow can
 * record after each step and hand back (newest first) to `runCompensation` when the task fails.
 *
 * Deliberately free of side effects and Node imports: workflow code may import this file.
 *
 * The plan follows the tool's descriptor (`profile.undo`, tools/tool-descriptor.ts), so a new tool
 * kind needs no change here:
 * - `overlay` (fs.write, tools with that capability): nothing per call at the root. Every write
 *   of the task tree lands in its overlay, which one `fs-overlay-discard` (registered once per
 *   task, `overlayCompensation`) throws away whole. A sub-agent's call is undone on its own
 *   (`fs-overlay-undo`, with `overlayUndo`), so a sub-agent that does not complete leaves no file
 *   behind while its parent goes on.
 * - `sql-journal` (sql.exec, tools with that capability): `sql-undo` of the call id, when the
 *   call ran with the undo journal; without it the change cannot be undone.
 * - `tool`: the declared compensating tool runs with the original arguments and output.
 * - `impossible` (an HTTP request, an MCP or process tool with no compensating tool): nothing
 *   can undo it, and the plan says so (`undoable: false`) so the result can report it.
 * - no mechanism: a read-only tool; nothing to undo.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { getBuiltinTool } from '../tools/builtin-tools';
import { CAPABILITY_NAMES, defineTool, type CapabilityName, type ToolDescriptor } from '../tools/tool-descriptor';

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('recovery/compensation', () => {
  const OriginalCallSchema = z.strictObject({ tool: z.string(), args: z.unknown(), output: z.unknown() });
  /**
   * The original call was stopped but not confirmed stopped (an HTTP MCP server that never answered
   * the cancellation): it may have completed after this compensation ran, which the task's
   * recovery then reports `unconfirmed`, never `done` (workflows/task-saga.ts). Kept in the
   * workflow: the compensation's activity is sent the descriptor without it.
   */
  const unconfirmed = z.literal(true).optional();
  /**
   * The original call may never have started (its undo was registered without a result): the
   * compensating tool runs only if the call's start record says it started (recovery/call-starts.ts).
   * Kept in the workflow: the compensation's activity gets it as its input's `startedOnly`.
   */
  const startedOnly = z.literal(true).optional();
  const CompensationSchema = z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('fs-overlay-discard'),
      /** The task tree whose overlay is thrown away (see recovery-paths `taskKeyOf`). */
      taskKey: z.string(),
    }),
    z.strictObject({
      kind: z.literal('fs-overlay-undo'),
      /** The tool call whose overlay writes are undone (a sub-agent's: the root's overlay is discarded whole). */
      callId: z.string(),
      forTool: z.string(),
      unconfirmed,
    }),
    z.strictObject({
      kind: z.literal('sql-undo'),
      /** The tool call's id: its journaled `sql.exec`s (and their `#n` sub-calls) are undone. */
      callId: z.string(),
      /** The tool that made the change (for reports). */
      forTool: z.string(),
      unconfirmed,
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
      unconfirmed,
      startedOnly,
    }),
  ]);
  return { OriginalCallSchema, CompensationSchema };
});

export const { OriginalCallSchema, CompensationSchema } = schemas;
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
  /**
   * Whether the call's overlay writes are undone one by one (`fs-overlay-undo`): for a sub-agent,
   * whose writes must go when it does not complete while the rest of the tree goes on.
   */
  overlayUndo?: boolean;
}

/** The compensation of the task tree's overlay: registered once, before the first tool runs. */
export function overlayCompensation(taskKey: string): Compensation {
  return { kind: 'fs-overlay-discard', taskKey };
}

/** How to undo one call of `descriptor` (also a failed one: it may have changed rows before failing) that returned `output`. */
export function compensationOf(descriptor: ToolDescriptor, output: unknown, context: CompensationContext): CompensationPlan {
  const undo = descriptor.profile.undo;
  if (undo.length === 0) return { compensations: [], undoable: true, note: 'read-only' };
  const compensator = undo.find((u) => u.kind === 'tool');
  const overlayUndo: Compensation[] =
    context.overlayUndo === true && undo.some((u) => u.kind === 'overlay') ? [{ kind: 'fs-overlay-undo', callId: context.callId, forTool: descriptor.name }] : [];
  if (compensator !== undefined) {
    return {
      compensations: [
        ...overlayUndo,
        {
          kind: 'tool',
          tool: compensator.tool,
          forTool: descriptor.name,
          callId: context.callId,
          input: { compensationId: `${compensator.tool}:${context.callId}`, original: { tool: descriptor.name, args: context.args ?? null, output: output ?? null } },
        },
      ],
      undoable: true,
      note: `undone by its compensating tool ${compensator.tool}`,
    };
  }
  const builtin = descriptor.executor.kind === 'builtin';
  const compensations: Compensation[] = [];
  const notes: string[] = [];
  let undoable = true;
  for (const mechanism of undo) {
    switch (mechanism.kind) {
      case 'overlay':
        if (overlayUndo.length > 0) {
          compensations.push(...overlayUndo);
          notes.push('in the overlay; undone if the sub-agent does not complete');
        } else {
          notes.push(builtin ? 'in the overlay, discarded as a whole' : 'file writes are in the overlay');
        }
        break;
      case 'sql-journal': {
        const result = typeof output === 'object' && output !== null ? (output as { changes?: unknown; rowsChanged?: unknown }) : {};
        if (builtin && result.changes === 0 && (result.rowsChanged === undefined || result.rowsChanged === 0)) {
          notes.push('changed no rows');
        } else if (context.journaled === true) {
          compensations.push({ kind: 'sql-undo', callId: context.callId, forTool: descriptor.name });
          notes.push(builtin ? 'undone from the SQL journal' : 'SQL changes are undone from the journal');
        } else {
          undoable = false;
          notes.push(builtin ? 'ran without an undo journal' : 'SQL changes were not journaled');
        }
        break;
      }
      case 'impossible':
        undoable = false;
        notes.push(builtin ? 'an HTTP request cannot be undone' : `${mechanism.why} (declare a compensating tool)`);
        break;
      case 'tool':
        break;
    }
  }
  return { compensations, undoable, note: notes.join('; ') };
}

/**
 * How to undo one call of `toolName`: a built-in by its descriptor, any other tool by a
 * descriptor built from the context (its capabilities and compensating tool). Prefer
 * `compensationOf` with the task's catalog entry.
 */
export function compensationFor(toolName: string, output: unknown, context: CompensationContext): CompensationPlan {
  const descriptor =
    getBuiltinTool(toolName) ??
    defineTool({
      name: toolName,
      description: toolName,
      executor: { kind: 'isolate', source: 'return null;' },
      capabilities: (context.capabilities ?? []).filter((c): c is CapabilityName => (CAPABILITY_NAMES as readonly string[]).includes(c)),
      ...(context.compensate === undefined ? {} : { compensate: context.compensate }),
    });
  return compensationOf(descriptor, output, context);
}
