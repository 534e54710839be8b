/**
 * Ends an agent workflow run the way Temporal should show it (`task-close.ts`): `WardenStatus`
 * set to the status, and a task that did not complete fails, carrying its result. Both behind
 * patches decided at the start (`workflow-patches.ts`). Shared by the original loop
 * (`agent-task.ts`) and the data flow (`agent-task-flow.ts`).
 *
 * Deterministic: workflow code.
 */
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { TaskResult } from '../task/task-run';
import type { AgentRun } from './agent-run';
import { WARDEN_SEARCH_ATTRIBUTES } from './search-attributes';
import { taskEndFailure } from './task-close';

/** `result` to return, or throws the failure a task that did not complete closes with. */
export function closeRun(run: AgentRun, result: TaskResult): TaskResult {
  if (run.patches.statusSearchAttribute) upsertSearchAttributes([{ key: WARDEN_SEARCH_ATTRIBUTES.status, value: result.status }]);
  if (result.status !== 'completed' && run.patches.closeAsFailed) throw taskEndFailure(result);
  return result;
}
