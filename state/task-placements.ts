/**
 * Which worker holds a task tree's data plane (its workspace overlay, databases, sandbox host):
 * `warden_task_placements`, keyed by task key (recovery/recovery-paths.ts). The worker that
 * prepares a task claims it with its own task queue; later data-plane activities go to that
 * queue; when the worker is gone another one takes the placement over explicitly (`move`), so
 * the recovery path (rebuild from a shared copy, or roll back) is a visible, recorded decision.
 *
 * Invariants: `claim` is one `INSERT … ON CONFLICT DO NOTHING` and returns whoever holds the
 * placement, so two workers preparing one task at once agree on one holder; `move` changes the
 * holder only if it is still the one the caller saw (compare-and-set), so two workers taking over
 * a dead worker's task cannot both win.
 */
import { z } from 'zod';
import type { SqlDatabase } from './sql-database';

export const PLACEMENT_STATES = ['active', 'moved', 'committed', 'rolled-back'] as const;

export const TaskPlacementSchema = z.strictObject({
  taskKey: z.string().min(1),
  rootWorkflowId: z.string().min(1),
  workerId: z.string().min(1),
  /** The worker-specific task queue data-plane activities go to. */
  taskQueue: z.string().nullable(),
  overlayId: z.string().nullable(),
  workspace: z.string().nullable(),
  state: z.enum(PLACEMENT_STATES),
  updatedAt: z.string(),
});
export type TaskPlacement = z.infer<typeof TaskPlacementSchema>;

interface Row {
  task_key: string;
  root_workflow_id: string;
  worker_id: string;
  task_queue: string | null;
  overlay_id: string | null;
  workspace: string | null;
  state: string;
  updated_at: string;
}

function fromRow(row: Row): TaskPlacement {
  return TaskPlacementSchema.parse({
    taskKey: row.task_key,
    rootWorkflowId: row.root_workflow_id,
    workerId: row.worker_id,
    taskQueue: row.task_queue,
    overlayId: row.overlay_id,
    workspace: row.workspace,
    state: row.state,
    updatedAt: row.updated_at,
  });
}

export interface TaskPlacements {
  /** Records `placement` unless the task is already placed; returns the placement that holds. */
  claim(placement: Omit<TaskPlacement, 'updatedAt' | 'state'>): Promise<TaskPlacement>;
  get(taskKey: string): Promise<TaskPlacement | undefined>;
  /** Moves the task to `to` if `expectedWorkerId` still holds it; returns the placement that holds afterwards. */
  move(taskKey: string, expectedWorkerId: string, to: Pick<TaskPlacement, 'workerId' | 'taskQueue' | 'overlayId'>): Promise<TaskPlacement | undefined>;
  /** Marks the end of the task's data plane (`committed` or `rolled-back`). */
  finish(taskKey: string, state: 'committed' | 'rolled-back'): Promise<void>;
}

export function createTaskPlacements(db: SqlDatabase, now: () => Date = () => new Date()): TaskPlacements {
  const get = async (taskKey: string) => {
    const row = await db.get<Row>('SELECT * FROM warden_task_placements WHERE task_key = $1', [taskKey]);
    return row === undefined ? undefined : fromRow(row);
  };
  return {
    async claim(placement) {
      const p = TaskPlacementSchema.omit({ updatedAt: true, state: true }).parse(placement);
      await db.run(
        `INSERT INTO warden_task_placements (task_key, root_workflow_id, worker_id, task_queue, overlay_id, workspace, state, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) ON CONFLICT (task_key) DO NOTHING`,
        [p.taskKey, p.rootWorkflowId, p.workerId, p.taskQueue, p.overlayId, p.workspace, now().toISOString()],
      );
      return (await get(p.taskKey)) as TaskPlacement;
    },
    get,
    async move(taskKey, expectedWorkerId, to) {
      await db.run(
        `UPDATE warden_task_placements SET worker_id = $1, task_queue = $2, overlay_id = $3, state = 'moved', updated_at = $4
         WHERE task_key = $5 AND worker_id = $6 AND state IN ('active', 'moved')`,
        [to.workerId, to.taskQueue, to.overlayId, now().toISOString(), taskKey, expectedWorkerId],
      );
      return get(taskKey);
    },
    async finish(taskKey, state) {
      await db.run('UPDATE warden_task_placements SET state = $1, updated_at = $2 WHERE task_key = $3', [state, now().toISOString(), taskKey]);
    },
  };
}
