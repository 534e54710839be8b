/**
 * The blob store a client or CLI command reads a deployment's blobs from: the same place the
 * workers write them (see data-plane-services.ts). With `WARDEN_DATABASE_URL` that is the shared
 * state database (`warden_blobs`), else the shared folder (`WARDEN_SHARED_DIR`, else the state
 * folder). Opening the folder alone on a fleet with a shared database would report every
 * claim-checked output as ERR_BLOB_MISSING although the task completed.
 */
import { openStateStore, usesSharedDatabase } from '../state/state-store';
import { CachedBlobStore, openBlobStore, type BlobStore } from './blob-store';
import { DatabaseBlobStore } from './shared-database-stores';
import { sharedDirOf } from './shared-storage';

export interface DeploymentBlobStore {
  blobs: BlobStore;
  /** Closes the database connection, if one was opened. */
  close(): Promise<void>;
}

/**
 * Opens the blobs of the deployment `env` and `stateDir` name.
 * @throws StateStoreError ERR_STATE_CONFIG (bad URL), ERR_STATE_UNAVAILABLE, ERR_STATE_SCHEMA_* (database not migrated)
 */
export async function openDeploymentBlobStore(env: NodeJS.ProcessEnv, stateDir: string): Promise<DeploymentBlobStore> {
  if (!usesSharedDatabase(env)) return { blobs: openBlobStore(sharedDirOf(env, stateDir)), close: async () => undefined };
  const state = await openStateStore({ stateDir, env });
  return { blobs: new CachedBlobStore(new DatabaseBlobStore(state.db)), close: () => state.close() };
}
