/**
 * Archiving a run of a long task before it continues as new: its steps and finished sub-agents
 * (and its model turns) go to the blob store as one link of a hash-linked list, and the next run carries only the
 * list's head. `assembleTaskResult` (client/) reads them back into the task's result.
 */
import type { StepArchive } from '../task/data-refs';
import type { StepRecord, TaskResult, TurnRecord } from '../task/task-run';
import type { ActivityDeps } from './index';
import { dataPlaneOf } from './flow-deps';
import { atActivityBoundary } from './to-application-failure';

/** Kind of the archive list's links (see dataplane/blob-chain.ts). */
export const STEP_ARCHIVE_KIND = 'steps';

export interface ArchiveRunInput {
  previous: StepArchive | undefined;
  steps: StepRecord[];
  children: TaskResult[];
  /** The run's model turns (absent in links written before turns were archived). */
  turns?: TurnRecord[];
}

export function createArchiveRun(deps: ActivityDeps) {
  return async function archiveRun(input: ArchiveRunInput): Promise<StepArchive> {
    return atActivityBoundary(async () => {
      const ref = await dataPlaneOf(deps).chains.append(STEP_ARCHIVE_KIND, input.previous?.ref ?? null, [{ steps: input.steps, children: input.children, ...(input.turns === undefined ? {} : { turns: input.turns }) }]);
      return { ref, steps: (input.previous?.steps ?? 0) + input.steps.length, children: (input.previous?.children ?? 0) + input.children.length };
    });
  };
}
