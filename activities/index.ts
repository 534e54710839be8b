/**
 * Activities: everything with a side effect or a nondeterministic answer. Built by a factory so
 * a worker (or a test) hands in the real parts it owns: the sandbox host, the environment.
 */
import type { Tracer } from '@opentelemetry/api';
import type { DataPlaneServices } from '../dataplane/data-plane-services';
import type { SandboxClient } from '../sandbox/sandbox-client';
import { createArchiveRun } from './archive-run';
import { createCheckPolicy } from './check-policy';
import { createPlaceTask } from './place-task';
import { createProposeTurn } from './propose-turn';
import { createRunTool } from './run-tool';
import { createTaskIdentityActivities, type IdentityServices } from './task-identity';
import { createTaskRecoveryActivities } from './task-recovery';

export interface ActivityDeps {
  sandbox: SandboxClient;
  /** Environment model drivers read API keys from; defaults to the worker's. */
  env?: NodeJS.ProcessEnv;
  /** The credential authority and its stores; without them tasks cannot start. */
  identity?: IdentityServices;
  /** State folder: this worker's overlays (and, without a shared folder, journals and snapshots). */
  stateDir?: string;
  /** This worker's data-plane queue and the shared stores (blobs, placements); see dataplane/. */
  dataPlane?: DataPlaneServices;
  /** The tracer of the worker's telemetry, for spans activities open themselves (folded model calls). */
  tracer?: Tracer;
}

export function createActivities(deps: ActivityDeps) {
  return {
    proposeTurn: createProposeTurn(deps),
    runTool: createRunTool(deps),
    checkPolicy: createCheckPolicy(deps),
    placeTask: createPlaceTask(deps),
    archiveRun: createArchiveRun(deps),
    ...createTaskIdentityActivities(deps),
    ...createTaskRecoveryActivities(deps),
  };
}

export type WardenActivities = ReturnType<typeof createActivities>;
