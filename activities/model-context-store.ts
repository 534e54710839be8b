/**
 * The steps a task's model has been shown, stored once per turn by digest, so a model turn's
 * input carries only the steps since the last turn. Every step holds its tool's output (the
 * outside world's to size: an MCP result may be 1 MiB), and the agent loop used to send all of
 * them to every turn: history grew with the square of the step count. Now `proposeTurn` stores
 * the steps it was given (canonical JSON in the state database's content-addressed blob store,
 * shared by every worker when the state is) and returns `{ count, sha256 }`; the next turn sends
 * that reference and the new steps, and the activity reads the earlier ones back.
 *
 * Invariant: earlier steps come back only as the exact bytes hashed to the reference (the blob
 * store re-hashes what it reads) and as exactly `count` step records; anything else fails the
 * turn (ERR_MODEL_CONTEXT_MISMATCH, ERR_MODEL_CONTEXT_MISSING), never a shortened conversation.
 */
import { z } from 'zod';
import { canonicalBytes } from '../custody/canonical-json';
import { ModelError, WardenError } from '../errors';
import type { BlobStore } from '../state/blob-store';
import { StepRecordSchema, type StepRecord } from '../task/task-run';

/** Steps a model was shown, by how many and the SHA-256 of their canonical JSON (RFC 8785). */
export interface StepsRef {
  count: number;
  sha256: string;
}

const StepsSchema = z.array(StepRecordSchema);

/** Stores `steps` and returns their reference. */
export async function storeModelSteps(blobs: BlobStore, steps: readonly StepRecord[]): Promise<StepsRef> {
  const { sha256 } = await blobs.put(canonicalBytes(steps));
  return { count: steps.length, sha256 };
}

/** The steps `ref` names, checked. Throws ModelError ERR_MODEL_CONTEXT_MISSING / ERR_MODEL_CONTEXT_MISMATCH. */
export async function loadModelSteps(blobs: BlobStore | undefined, ref: StepsRef): Promise<StepRecord[]> {
  const mismatch = (why: string) => new ModelError('ERR_MODEL_CONTEXT_MISMATCH', `the earlier steps of this task (${ref.sha256}) do not match their reference: ${why}`, { details: { sha256: ref.sha256, count: ref.count } });
  let bytes: Buffer | undefined;
  try {
    bytes = blobs === undefined ? undefined : await blobs.get(ref.sha256);
  } catch (error) {
    if (error instanceof WardenError && error.code === 'ERR_SNAPSHOT_CORRUPT') throw mismatch('the stored bytes do not hash to it');
    if (error instanceof TypeError) throw mismatch('not a SHA-256 digest');
    throw error;
  }
  if (bytes === undefined) {
    throw new ModelError('ERR_MODEL_CONTEXT_MISSING', `the earlier steps of this task (${ref.sha256}) are not in this worker's state database; the turn cannot be built without them`, {
      details: { sha256: ref.sha256, count: ref.count },
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw mismatch('not JSON');
  }
  const steps = StepsSchema.safeParse(parsed);
  if (!steps.success) throw mismatch('not a list of steps');
  if (steps.data.length !== ref.count) throw mismatch(`${steps.data.length} steps, not ${ref.count}`);
  return steps.data;
}
