/**
 * The bench's task queues. The bench may reuse a Temporal server that a user's own `warden worker`
 * (another state folder) also uses; on the default queue (`warden-agent-tasks`) that worker would
 * take the bench's tasks and refuse them (their grants are the bench's, ERR_CREDENTIAL_GRANT_UNKNOWN),
 * and the user's tasks could reach the bench's workers. So every task and worker the bench starts
 * runs on a queue unique to the run, which no user's worker polls.
 */
import { randomBytes } from 'node:crypto';
import type { BenchContext } from '../bench-section';

/** A task queue unique to this process and run: `warden-bench-<pid>-<12 hex>` (or `-<purpose>`). */
export function benchTaskQueue(purpose?: string): string {
  return `warden-bench-${process.pid}-${randomBytes(6).toString('hex')}${purpose === undefined ? '' : `-${purpose}`}`;
}

/**
 * The environment of a `warden` CLI process the bench spawns: the bench's state folder and its
 * run's task queue, whatever the user's environment says (`WARDEN_STATE_DIR`, `WARDEN_TASK_QUEUE`).
 */
export function benchCliEnv(context: Pick<BenchContext, 'stateDir' | 'taskQueue'>, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, WARDEN_STATE_DIR: context.stateDir, WARDEN_TASK_QUEUE: context.taskQueue };
}
