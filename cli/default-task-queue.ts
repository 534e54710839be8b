/**
 * The task queue a command uses when `--task-queue` is not given: `WARDEN_TASK_QUEUE`, else
 * Warden's default (`warden-agent-tasks`). One variable lets a whole deployment, or a test run
 * sharing a Temporal server with others, keep its tasks and workers to a queue of its own.
 */
import { TASK_QUEUE } from '../workflows/definitions';

export function defaultTaskQueue(env: Record<string, string | undefined>): string {
  return env['WARDEN_TASK_QUEUE']?.trim() || TASK_QUEUE;
}
