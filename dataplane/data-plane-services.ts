/**
 * What a worker's activities need for the data flow: who this worker is, its own data-plane task
 * queue, the shared folder and the stores in it (blobs, lists of blobs, placements), and the
 * tasks passed by reference. One instance per worker.
 */
import { TaskSchema, type Task } from '../task/task-schema';
import { canonicalBytes } from '../custody/canonical-json';
import { BlobChains } from './blob-chain';
import { CachedBlobStore, openBlobStore, type BlobStore } from './blob-store';
import { DatabaseBlobStore, DatabasePlacementStore } from './shared-database-stores';
import type { SqlDatabase } from '../state/sql-database';
import { FilePlacementStore, type PlacementStore } from './placement-store';
import { dataPlaneQueueOf, SHARED_DIR_ENV, sharedDirOf, workerIdOf } from './shared-storage';

export interface DataPlaneServices {
  workerId: string;
  /** The task queue only this worker polls (activities of the tasks whose data plane it holds). */
  taskQueue: string;
  /** The folder every worker shares (WARDEN_SHARED_DIR, else the state folder). */
  sharedDir: string;
  /** True when WARDEN_SHARED_DIR names the shared folder (it must then exist; it is never created). */
  sharedFolderNamed: boolean;
  /** True when other workers may take this worker's tasks over (a named shared folder or a shared database). */
  explicitShared: boolean;
  blobs: BlobStore;
  chains: BlobChains;
  placements: PlacementStore;
  tasks: TaskRefs;
}

/** Tasks by reference: stored once as canonical JSON, loaded (and re-validated) by digest. */
export class TaskRefs {
  private readonly cache = new Map<string, Task>();

  constructor(private readonly blobs: BlobStore) {}

  /** Stores `task` and returns its SHA-256. */
  async put(task: Task): Promise<string> {
    const { sha256 } = await this.blobs.put(canonicalBytes(task));
    this.remember(sha256, task);
    return sha256;
  }

  /** The task stored under `sha256`. @throws DataPlaneError ERR_BLOB_MISSING / ERR_BLOB_CORRUPT */
  async get(sha256: string): Promise<Task> {
    const hit = this.cache.get(sha256);
    if (hit !== undefined) return hit;
    const task = TaskSchema.parse(JSON.parse((await this.blobs.get(sha256)).toString('utf8')));
    this.remember(sha256, task);
    return task;
  }

  private remember(sha256: string, task: Task): void {
    this.cache.set(sha256, task);
    while (this.cache.size > 256) this.cache.delete(this.cache.keys().next().value as string);
  }
}

/**
 * The data-plane services of a worker with state folder `stateDir` serving `taskQueue`. With the
 * shared state database (`db`), blobs and placements live there; otherwise in the shared folder.
 */
export function openDataPlaneServices(options: { stateDir: string; taskQueue: string; env?: NodeJS.ProcessEnv; sharedDir?: string; db?: SqlDatabase }): DataPlaneServices {
  const env = options.env ?? process.env;
  const sharedDir = options.sharedDir ?? sharedDirOf(env, options.stateDir);
  const workerId = workerIdOf(options.stateDir, env);
  const sharedFolderNamed = options.sharedDir !== undefined ? options.sharedDir !== options.stateDir : Boolean(env[SHARED_DIR_ENV]?.trim());
  const blobs = options.db === undefined ? openBlobStore(sharedDir) : new CachedBlobStore(new DatabaseBlobStore(options.db));
  return {
    workerId,
    taskQueue: dataPlaneQueueOf(options.taskQueue, workerId),
    sharedDir,
    sharedFolderNamed,
    // A shared database is shared storage too: resources must then be reachable by every worker.
    explicitShared: options.db !== undefined || sharedFolderNamed,
    blobs,
    chains: new BlobChains(blobs),
    placements: options.db === undefined ? new FilePlacementStore(sharedDir) : new DatabasePlacementStore(options.db, blobs),
    tasks: new TaskRefs(blobs),
  };
}
