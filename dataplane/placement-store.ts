/**
 * Shared records of where each task tree's data plane sits and what its overlay holds, so that a
 * worker taking a task over can tell what the previous one did: the placement (worker, queue,
 * overlay id, generation) and the overlay's shared copy (workspace path → SHA-256 of the content,
 * the contents themselves in the blob store).
 *
 * `PlacementStore` is the seam the shared state layer plugs into (PostgreSQL
 * `warden_task_placements`); the file implementation keeps one JSON file per task key in the
 * shared folder, replaced atomically.
 */
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { assertTaskKey } from '../recovery/recovery-paths';
import { Sha256Schema } from '../task/data-refs';

export const PlacementRecordSchema = z.strictObject({
  taskKey: z.string(),
  rootWorkflowId: z.string(),
  workerId: z.string(),
  taskQueue: z.string(),
  generation: z.number().int().min(0),
  /** Real path of the workspace the overlay sits on, if the task has one. */
  workspace: z.string().optional(),
  updatedAt: z.string(),
});
export type PlacementRecord = z.infer<typeof PlacementRecordSchema>;

export const OverlayCopySchema = z.strictObject({
  version: z.literal(1),
  taskKey: z.string(),
  workspace: z.string(),
  /** Workspace-relative path → SHA-256 of the file's content in the overlay, or `deleted` / `opaque` (see FileWriteSchema). */
  files: z.record(z.string(), z.union([Sha256Schema, z.literal('deleted'), z.literal('opaque')])),
  updatedAt: z.string(),
  /** The worker that wrote this copy. */
  workerId: z.string(),
  /**
   * The overlay as it was before the call in flight (or the last call) first ran: what a call
   * wrote is measured against it, so a retried call reports the same writes as a first attempt.
   */
  call: z.strictObject({ callId: z.string(), before: z.record(z.string(), z.union([Sha256Schema, z.literal('deleted'), z.literal('opaque')])) }).optional(),
});
export type OverlayCopy = z.infer<typeof OverlayCopySchema>;

export interface PlacementStore {
  savePlacement(record: PlacementRecord): Promise<void>;
  loadPlacement(taskKey: string): Promise<PlacementRecord | undefined>;
  saveOverlayCopy(copy: OverlayCopy): Promise<void>;
  loadOverlayCopy(taskKey: string): Promise<OverlayCopy | undefined>;
  /** Forgets the overlay copy (after a commit or a discard). */
  dropOverlayCopy(taskKey: string): Promise<void>;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fsp.mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
  const temp = `${file}.${randomUUID()}.tmp`;
  await fsp.writeFile(temp, JSON.stringify(value), { mode: 0o600, flag: 'wx' });
  await fsp.rename(temp, file);
}

async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new TypeError(`${file} is not a valid record: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}

/** Placement records and overlay copies as files under `<sharedDir>/placements/`. */
export class FilePlacementStore implements PlacementStore {
  constructor(private readonly sharedDir: string) {}

  private file(kind: 'placement' | 'overlay', taskKey: string): string {
    assertTaskKey(taskKey);
    return join(this.sharedDir, 'placements', `${taskKey}.${kind}.json`);
  }

  savePlacement(record: PlacementRecord): Promise<void> {
    return writeJson(this.file('placement', record.taskKey), record);
  }

  loadPlacement(taskKey: string): Promise<PlacementRecord | undefined> {
    return readJson(this.file('placement', taskKey), PlacementRecordSchema);
  }

  saveOverlayCopy(copy: OverlayCopy): Promise<void> {
    return writeJson(this.file('overlay', copy.taskKey), copy);
  }

  loadOverlayCopy(taskKey: string): Promise<OverlayCopy | undefined> {
    return readJson(this.file('overlay', taskKey), OverlayCopySchema);
  }

  async dropOverlayCopy(taskKey: string): Promise<void> {
    await fsp.rm(this.file('overlay', taskKey), { force: true });
  }
}
