/**
 * The data plane's stores on the shared state database (PostgreSQL, `WARDEN_DATABASE_URL`):
 * blobs in `warden_blobs` and placements in `warden_task_placements` (state/). Workers that
 * share a database then share claim checks, transcripts, tasks by reference and overlay copies
 * without a shared folder.
 *
 * An overlay copy is a blob (its JSON, content-addressed); the placement row names the newest as
 * `overlay_id = copy:<sha256>`. Placement rows are advisory, like the files they replace: the
 * workflow's history says where a task's data plane is (see dataplane/README.md).
 */
import { DataPlaneError } from '../errors';
import { createBlobStore } from '../state/blob-store';
import type { SqlDatabase } from '../state/sql-database';
import { createTaskPlacements } from '../state/task-placements';
import type { BlobStore, StoredBlob } from './blob-store';
import { OverlayCopySchema, type OverlayCopy, type PlacementRecord, type PlacementStore } from './placement-store';

/** `BlobStore` over `warden_blobs`. */
export class DatabaseBlobStore implements BlobStore {
  private readonly store;
  readonly description: string;

  constructor(db: SqlDatabase) {
    this.store = createBlobStore(db);
    this.description = `${db.description} (warden_blobs)`;
  }

  async put(content: Uint8Array | string): Promise<StoredBlob> {
    const { sha256, size } = await this.store.put(typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    return { sha256, bytes: size };
  }

  async get(sha256: string): Promise<Buffer> {
    let content: Buffer | undefined;
    try {
      content = await this.store.get(sha256);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_SNAPSHOT_CORRUPT') throw new DataPlaneError('ERR_BLOB_CORRUPT', `blob ${sha256} in ${this.description} does not match its hash`, { details: { sha256 } });
      throw error;
    }
    if (content === undefined) throw new DataPlaneError('ERR_BLOB_MISSING', `blob ${sha256} is not in the state database ${this.description} (WARDEN_DATABASE_URL; do every worker and this client use the same database?)`, { details: { sha256 } });
    return content;
  }

  has(sha256: string): Promise<boolean> {
    return this.store.has(sha256);
  }
}

const COPY_PREFIX = 'copy:';

/** `PlacementStore` over `warden_task_placements`, overlay copies as blobs. */
export class DatabasePlacementStore implements PlacementStore {
  private readonly placements;

  constructor(
    db: SqlDatabase,
    private readonly blobs: BlobStore,
  ) {
    this.placements = createTaskPlacements(db);
  }

  async savePlacement(record: PlacementRecord): Promise<void> {
    const held = await this.placements.get(record.taskKey);
    if (held === undefined) {
      await this.placements.claim({ taskKey: record.taskKey, rootWorkflowId: record.rootWorkflowId, workerId: record.workerId, taskQueue: record.taskQueue, overlayId: null, workspace: record.workspace ?? null });
      return;
    }
    await this.placements.move(record.taskKey, held.workerId, { workerId: record.workerId, taskQueue: record.taskQueue, overlayId: held.overlayId });
  }

  async loadPlacement(taskKey: string): Promise<PlacementRecord | undefined> {
    const held = await this.placements.get(taskKey);
    if (held === undefined) return undefined;
    return {
      taskKey: held.taskKey,
      rootWorkflowId: held.rootWorkflowId,
      workerId: held.workerId,
      taskQueue: held.taskQueue ?? '',
      generation: held.state === 'active' ? 0 : 1,
      ...(held.workspace === null ? {} : { workspace: held.workspace }),
      updatedAt: held.updatedAt,
    };
  }

  async saveOverlayCopy(copy: OverlayCopy): Promise<void> {
    const { sha256 } = await this.blobs.put(JSON.stringify(copy));
    await this.setCopy(copy.taskKey, `${COPY_PREFIX}${sha256}`);
  }

  async loadOverlayCopy(taskKey: string): Promise<OverlayCopy | undefined> {
    const overlayId = (await this.placements.get(taskKey))?.overlayId;
    if (overlayId === null || overlayId === undefined || !overlayId.startsWith(COPY_PREFIX)) return undefined;
    return OverlayCopySchema.parse(JSON.parse((await this.blobs.get(overlayId.slice(COPY_PREFIX.length))).toString('utf8')));
  }

  dropOverlayCopy(taskKey: string): Promise<void> {
    return this.setCopy(taskKey, null);
  }

  private async setCopy(taskKey: string, overlayId: string | null): Promise<void> {
    const held = await this.placements.get(taskKey);
    if (held === undefined) {
      if (overlayId === null) return;
      throw new DataPlaneError('ERR_SHARED_STORAGE', `task ${taskKey} has no placement in the state database to record its overlay copy on`, { details: { taskKey } });
    }
    await this.placements.move(taskKey, held.workerId, { workerId: held.workerId, taskQueue: held.taskQueue, overlayId });
  }
}
