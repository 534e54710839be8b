/**
 * The task queue a command uses when `--task-queue` is not given: `WARDEN_TASK_QUEUE`, else
 * Warden's default (`warden-agent-tasks`). One variable lets a whole deployment, or a test run
 * sharing a Temporal server with others, keep its tasks and workers to a queue of its own.
 */
import { checkTaskQueueName } from '../dataplane/shared-storage';
import { TASK_QUEUE } from '../workflows/definitions';

export function defaultTaskQueue(env: Record<string, string | undefined>): string {
  return env['WARDEN_TASK_QUEUE']?.trim() || TASK_QUEUE;
}

/**
 * The task queue of a command: `--task-queue` (`flag`), else the default; checked against the
 * naming rules (dataplane/worker-naming.ts: no '@', 1..200 printable ASCII characters).
 * @throws ConfigError ERR_CONFIG_INVALID naming the flag or the variable (commands exit 2)
 */
export function taskQueueOf(flag: string | undefined, env: Record<string, string | undefined>): string {
  if (flag !== undefined) return checkTaskQueueName(flag, '--task-queue');
  const fromEnv = env['WARDEN_TASK_QUEUE']?.trim();
  return fromEnv ? checkTaskQueueName(fromEnv, 'WARDEN_TASK_QUEUE') : TASK_QUEUE;
}
