/**
 * Shapes of the agent workflow's data flow (issue 12): where a task's data plane sits (the worker
 * whose task queue its overlay, grants and sandbox host belong to), references that stand in for
 * large values in history (claim checks, content-addressed by SHA-256), the files a task's steps
 * wrote, and the state a long task carries into its next run (continue-as-new).
 *
 * Plain zod and pure functions: workflow code imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { FileWriteSchema, Sha256Schema, StepArchiveSchema } from './data-refs';
import { AgentTaskInputSchema, ModelTurnSchema, StepRecordSchema, type AgentTaskInput } from './task-run';
import { CarriedMonitorSchema } from '../monitoring/monitor-carry';

export * from './data-refs';
export type Placement = z.infer<typeof PlacementSchema>;
export type DataFlowOptions = z.infer<typeof DataFlowOptionsSchema>;
export type Transcript = z.infer<typeof TranscriptSchema>;
export type CarriedState = z.infer<typeof CarriedStateSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('task/data-flow', () => {
  /**
   * Where a task tree's data plane sits. Every activity that touches the overlay, the grants or the
   * sandbox host is scheduled on `taskQueue`, which only the worker `workerId` polls (Temporal's
   * worker-specific task queue pattern). `generation` counts moves to another worker.
   */
  const PlacementSchema = z.strictObject({
    taskQueue: z.string().min(1),
    workerId: z.string().min(1),
    /** The task tree's recovery key (`taskKeyOf(rootWorkflowId)`). */
    taskKey: z.string().min(1),
    generation: z.number().int().min(0),
  });
  /** When a run hands over to its next one (continue-as-new); tests and benchmarks lower them. */
  const DataFlowOptionsSchema = z.strictObject({
    /** Continue as new once this run's history has this many events (default 2,000). */
    maxRunEvents: z.number().int().min(50).optional(),
    /** … or this many bytes (default 4 MiB). */
    maxRunHistoryBytes: z.number().int().min(64 * 1024).optional(),
    /** … or its step records take this many bytes of JSON (default 512 KiB: bounds the result). */
    maxRunStepBytes: z.number().int().min(1024).optional(),
    /** Seconds a data-plane activity may wait for its worker before the worker counts as lost (default 30). */
    dataPlaneStartTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
  });
  /** The model transcript so far: the head of its chain in the blob store and the steps not in it yet. */
  const TranscriptSchema = z.strictObject({
    ref: Sha256Schema.nullable(),
    pending: z.array(StepRecordSchema),
  });
  /** What a task carries into its next run: everything the loop and the saga need to go on. */
  const CarriedStateSchema = z.strictObject({
    /** Runs before this one. */
    runs: z.number().int().min(1),
    archive: StepArchiveSchema.optional(),
    turn: z.number().int().min(0),
    model: z.strictObject({ id: z.string(), version: z.string() }),
    /** A model turn proposed (folded into the last call) and not acted on yet, with its index. */
    pending: z.strictObject({ turn: z.number().int().min(0), modelTurn: ModelTurnSchema }).optional(),
    /** Steps taken in earlier runs (the next run's step indices continue from here). */
    steps: z.number().int().min(0),
    transcript: TranscriptSchema,
    saga: z.strictObject({
      compensations: z.array(z.unknown()),
      notUndoable: z.array(z.string()),
      snapshotTaken: z.boolean(),
      writes: z.array(FileWriteSchema),
    }),
    /** The monitor's state (bounded summary, monitoring/monitor-carry.ts); runs from before it carry none. */
    monitor: CarriedMonitorSchema.optional(),
  });
  /**
   * The `agentTask` input with the fields of the data flow: the public part is `{ task }` (see
   * AgentTaskInputSchema); a parent passes its placement and the child's task reference, a run that
   * continues as new passes what it carries, and anyone may tune when runs hand over (`flow`).
   */
  const AgentTaskFlowInputSchema = AgentTaskInputSchema.extend({
    placement: PlacementSchema.optional(),
    /** SHA-256 of the task in the blob store (activities load it from there instead of history). */
    taskRef: Sha256Schema.optional(),
    carried: CarriedStateSchema.optional(),
    flow: DataFlowOptionsSchema.optional(),
  });
  return { PlacementSchema, DataFlowOptionsSchema, TranscriptSchema, CarriedStateSchema, AgentTaskFlowInputSchema };
});

export const { PlacementSchema, DataFlowOptionsSchema, TranscriptSchema, CarriedStateSchema, AgentTaskFlowInputSchema } = schemas;
export interface AgentTaskFlowInput extends AgentTaskInput {
  placement?: Placement;
  taskRef?: string;
  carried?: CarriedState;
  flow?: DataFlowOptions;
}
