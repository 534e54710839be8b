/**
 * The steps a task's model has been shown, stored by digest, so a model turn's input carries only
 * the steps since the last turn. Every step holds its tool's output (the outside world's to size:
 * an MCP result may be 1 MiB), and the agent loop used to send all of them to every turn: history
 * grew with the square of the step count. Now `proposeTurn` stores the steps it was given that
 * the previous turn had not seen, linked to the previous turn's reference (a hash chain: each
 * segment is stored once, so the store too grows linearly), in the state database's
 * content-addressed blob store (shared by every worker when the state is), and returns
 * `{ count, sha256 }`; the next turn sends that reference and the new steps, and the activity
 * reads the earlier ones back along the chain.
 *
 * Invariant: earlier steps come back only as the exact bytes hashed to each link (the blob store
 * re-hashes what it reads), each link's count adding up, exactly `count` step records in all;
 * anything else fails the turn (ERR_MODEL_CONTEXT_MISMATCH, ERR_MODEL_CONTEXT_MISSING), never a
 * shortened conversation.
 */
import { z } from 'zod';
import { canonicalBytes } from '../custody/canonical-json';
import { ModelError, WardenError } from '../errors';
import type { BlobStore } from '../state/blob-store';
import { StepRecordSchema, type StepRecord } from '../task/task-run';

/** Steps a model was shown, by how many and the SHA-256 of the last segment's canonical JSON (RFC 8785). */
export interface StepsRef {
  count: number;
  sha256: string;
}

const StepsRefSchema = z.strictObject({ count: z.number().int().min(0), sha256: z.string() });
/** One stored segment: the steps after `earlier` (none: from the first step), `count` in all. */
const SegmentSchema = z.strictObject({ count: z.number().int().min(0), earlier: StepsRefSchema.optional(), steps: z.array(StepRecordSchema) });

/** Segments read recently, per store (a task's next turn usually runs on the worker that stored its last). */
const CACHED_SEGMENTS = 32;
const caches = new WeakMap<BlobStore, Map<string, z.infer<typeof SegmentSchema>>>();

function cacheOf(blobs: BlobStore): Map<string, z.infer<typeof SegmentSchema>> {
  let cache = caches.get(blobs);
  if (cache === undefined) caches.set(blobs, (cache = new Map()));
  return cache;
}

function remember(blobs: BlobStore, sha256: string, segment: z.infer<typeof SegmentSchema>): void {
  const cache = cacheOf(blobs);
  cache.delete(sha256);
  cache.set(sha256, segment);
  if (cache.size > CACHED_SEGMENTS) cache.delete(cache.keys().next().value!);
}

/** Stores `steps` (those after `earlier`) and returns the reference to all of them. */
export async function storeModelSteps(blobs: BlobStore, earlier: StepsRef | undefined, steps: readonly StepRecord[]): Promise<StepsRef> {
  const segment = { count: (earlier?.count ?? 0) + steps.length, ...(earlier === undefined ? {} : { earlier: { count: earlier.count, sha256: earlier.sha256 } }), steps: [...steps] };
  const { sha256 } = await blobs.put(canonicalBytes(segment));
  remember(blobs, sha256, segment);
  return { count: segment.count, sha256 };
}

/** Every step `ref` names, oldest first, checked. Throws ModelError ERR_MODEL_CONTEXT_MISSING / ERR_MODEL_CONTEXT_MISMATCH. */
export async function loadModelSteps(blobs: BlobStore | undefined, ref: StepsRef): Promise<StepRecord[]> {
  const segments: StepRecord[][] = [];
  let link: StepsRef | undefined = ref;
  while (link !== undefined) {
    const segment = await readSegment(blobs, link, ref);
    segments.push(segment.steps);
    const before = segment.earlier?.count ?? 0;
    // Each link holds exactly the steps between the one before it and its own count.
    if (segment.count !== link.count || before + segment.steps.length !== segment.count) throw mismatchOf(ref, 'the stored counts do not add up');
    link = segment.earlier;
    if (segments.length > ref.count + 1_000) throw mismatchOf(ref, 'the chain of stored steps does not end');
  }
  return segments.reverse().flat();
}

function mismatchOf(ref: StepsRef, why: string): ModelError {
  return new ModelError('ERR_MODEL_CONTEXT_MISMATCH', `the earlier steps of this task (${ref.sha256}) do not match their reference: ${why}`, { details: { sha256: ref.sha256, count: ref.count } });
}

async function readSegment(blobs: BlobStore | undefined, link: StepsRef, ref: StepsRef): Promise<z.infer<typeof SegmentSchema>> {
  const cached = blobs === undefined ? undefined : cacheOf(blobs).get(link.sha256);
  if (cached !== undefined) return cached;
  let bytes: Buffer | undefined;
  try {
    bytes = blobs === undefined ? undefined : await blobs.get(link.sha256);
  } catch (error) {
    if (error instanceof WardenError && error.code === 'ERR_SNAPSHOT_CORRUPT') throw mismatchOf(ref, 'the stored bytes do not hash to it');
    if (error instanceof TypeError) throw mismatchOf(ref, 'not a SHA-256 digest');
    throw error;
  }
  if (bytes === undefined) {
    throw new ModelError('ERR_MODEL_CONTEXT_MISSING', `the earlier steps of this task (${link.sha256}) are not in this worker's state database; the turn cannot be built without them`, {
      details: { sha256: ref.sha256, count: ref.count },
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw mismatchOf(ref, 'not JSON');
  }
  const segment = SegmentSchema.safeParse(parsed);
  if (!segment.success) throw mismatchOf(ref, 'not a list of steps');
  remember(blobs!, link.sha256, segment.data);
  return segment.data;
}
