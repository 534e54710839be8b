/**
 * The naming rules for worker ids and task queue names, in one place, because the two are joined:
 * a worker's private data-plane queue is `<taskQueue>@<workerId>` (dataPlaneQueueOf), and that
 * name travels in a sub-agent's signed handoff (task/task-run.ts, whose cap is DATA_PLANE_QUEUE_MAX).
 *
 * - A worker id is 1..128 of `[A-Za-z0-9._-]`: it names a file (`workers/<id>.json`), a lease row
 *   and a queue suffix, so nothing in it needs escaping, and it cannot hold '@'.
 * - A task queue name a user gives is 1..200 characters, printable ASCII without '@' or spaces:
 *   '@' separates a queue from a worker id, so `q@b` would be worker `b`'s private queue for `q`.
 * - Hence `<queue>@<id>` is at most 200 + 1 + 128 = 329 characters, within the handoff's cap (derived
 *   from these constants) and Temporal's 1,000-byte limit on task queue names (ASCII: bytes = characters).
 *
 * Deliberately no node:* imports: task/task-run.ts (read in workflow code) derives its cap from here.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { cutText } from '../cut-text';

export const WORKER_ID_MAX = 128;
export const TASK_QUEUE_NAME_MAX = 200;
/** The longest data-plane queue, `<queue>@<id>`. */
export const DATA_PLANE_QUEUE_MAX = TASK_QUEUE_NAME_MAX + 1 + WORKER_ID_MAX;
/** Temporal's own limit on a task queue name (frontend `limit.maxIDLength`, bytes). */
export const TEMPORAL_TASK_QUEUE_MAX = 1000;

const WORKER_ID_PATTERN = /^[A-Za-z0-9._-]+$/;
// Printable ASCII (0x21..0x7e) except '@'.
const TASK_QUEUE_PATTERN = /^[\x21-\x3f\x41-\x7e]+$/;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('dataplane/worker-naming', () => {
  const WorkerIdSchema = z
    .string()
    .min(1, 'is empty')
    .max(WORKER_ID_MAX, `is longer than ${WORKER_ID_MAX} characters`)
    .regex(WORKER_ID_PATTERN, "may hold only letters A-Z a-z, digits and '.', '_', '-'");
  const TaskQueueNameSchema = z
    .string()
    .min(1, 'is empty')
    .max(TASK_QUEUE_NAME_MAX, `is longer than ${TASK_QUEUE_NAME_MAX} characters`)
    .refine((s) => !s.includes('@'), { message: "holds '@', which separates a task queue from a worker id (`<queue>@<worker id>` is that worker's private data-plane queue)" })
    .refine((s) => s.includes('@') || TASK_QUEUE_PATTERN.test(s), { message: 'may hold only printable ASCII characters, without spaces' });
  /** A data-plane queue, `<queue>@<id>`, as a handoff carries it. */
  const DataPlaneQueueSchema = z.string().min(1).max(DATA_PLANE_QUEUE_MAX);
  return { WorkerIdSchema, TaskQueueNameSchema, DataPlaneQueueSchema };
});

export const { WorkerIdSchema, TaskQueueNameSchema, DataPlaneQueueSchema } = schemas;

/** Why `value` is not a valid worker id, or undefined when it is. */
export function workerIdProblem(value: string): string | undefined {
  const parsed = WorkerIdSchema.safeParse(value);
  return parsed.success ? undefined : parsed.error.issues.map((i) => i.message).join('; ');
}

/** Why `value` is not a valid task queue name, or undefined when it is. */
export function taskQueueNameProblem(value: string): string | undefined {
  const parsed = TaskQueueNameSchema.safeParse(value);
  return parsed.success ? undefined : parsed.error.issues.map((i) => i.message).join('; ');
}

/** Shows a name in a message: quoted, cut at 80 characters with its length. */
export function showName(value: string): string {
  return value.length <= 80 ? JSON.stringify(value) : `${JSON.stringify(cutText(value, 80))}… (${value.length} characters)`;
}
