/**
 * Activities: everything with a side effect or a nondeterministic answer. Built by a factory so
 * a worker (or a test) hands in the real parts it owns: the sandbox host, the environment.
 */
import type { SandboxClient } from '../sandbox/sandbox-client';
import type { SqlDatabase } from '../state/sql-database';
import { createCheckPolicy } from './check-policy';
import { createProposeTurn } from './propose-turn';
import { createRunTool } from './run-tool';
import { createTaskIdentityActivities, type IdentityServices } from './task-identity';
import { createTaskRecoveryActivities } from './task-recovery';
import { createMonitorActivities, type MonitorServices } from './monitor-activities';

export interface ActivityDeps {
  sandbox: SandboxClient;
  /** Environment model drivers read API keys from; defaults to the worker's. */
  env?: NodeJS.ProcessEnv;
  /** The credential authority and its stores; without them tasks cannot start. */
  identity?: IdentityServices;
  /** State folder: overlays, undo journals, snapshots. */
  stateDir?: string;
  /** The state database workers share (PostgreSQL), when there is one: SQL undo journals are shipped to it. */
  shared?: { db: SqlDatabase; workerId: string };
  /** Baselines, alerts and where alerts go (monitoring/); without them alerts are not recorded. */
  monitor?: MonitorServices;
}

export function createActivities(deps: ActivityDeps) {
  return {
    proposeTurn: createProposeTurn(deps),
    runTool: createRunTool(deps),
    checkPolicy: createCheckPolicy(deps),
    ...createTaskIdentityActivities(deps),
    ...createTaskRecoveryActivities(deps),
    ...createMonitorActivities(deps),
  };
}

export type WardenActivities = ReturnType<typeof createActivities>;
