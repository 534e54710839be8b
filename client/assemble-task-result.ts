/**
 * A task's result as the user expects it, whatever the data flow did to keep history small: the
 * steps and sub-agents of earlier runs (a long task continues as new and archives them in the blob
 * store) are put back in front, and outputs and arguments kept out of history (claim checks) are
 * replaced by their values, checked against their digests.
 *
 * Without access to the blob store (a client on another machine than the shared folder) the
 * result is returned as the workflow gave it: `earlier` names the archive and claim checks keep
 * their `{ $warden: 'claim-check', sha256, bytes }` form.
 */
import { STEP_ARCHIVE_KIND } from '../activities/archive-run';
import { BlobChains } from '../dataplane/blob-chain';
import type { BlobStore } from '../dataplane/blob-store';
import { resolveClaimChecks } from '../dataplane/claim-check';
import type { StepRecord, TaskResult, TurnRecord } from '../task/task-run';

export interface AssembleOptions {
  /** Replace claim checks in step outputs and arguments by their values (default true). */
  resolveClaimChecks?: boolean;
}

/** `result` with earlier runs' steps and children put back and claim checks resolved. */
export async function assembleTaskResult(result: TaskResult, blobs: BlobStore, options: AssembleOptions = {}): Promise<TaskResult> {
  return assemble(result, blobs, new BlobChains(blobs), options.resolveClaimChecks ?? true);
}

async function assemble(result: TaskResult, blobs: BlobStore, chains: BlobChains, resolve: boolean): Promise<TaskResult> {
  let steps = result.steps;
  let children = result.children;
  let turns = result.turns;
  const { earlier, ...rest } = result;
  if (earlier !== undefined) {
    const runs = await chains.read<{ steps: StepRecord[]; children: TaskResult[]; turns?: TurnRecord[] }>(STEP_ARCHIVE_KIND, earlier.ref);
    steps = [...runs.flatMap((r) => r.steps), ...steps];
    children = [...runs.flatMap((r) => r.children), ...children];
    const earlierTurns = runs.flatMap((r) => r.turns ?? []);
    if (earlierTurns.length > 0 || turns !== undefined) turns = [...earlierTurns, ...(turns ?? [])];
  }
  if (resolve) steps = (await resolveClaimChecks(blobs, steps)) as StepRecord[];
  return { ...rest, steps, ...(turns === undefined ? {} : { turns }), children: await Promise.all(children.map((c) => assemble(c, blobs, chains, resolve))) };
}
