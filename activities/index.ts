/**
 * Activities: everything with a side effect or a nondeterministic answer. Built by a factory so
 * a worker (or a test) hands in the real parts it owns: the sandbox host, the environment.
 */
import type { WardenResources } from '../permissions/warden-resources';
import type { SandboxClient } from '../sandbox/sandbox-client';
import type { McpConnectionPool } from '../executors/mcp-connection-pool';
import { createToolSourceActivities } from './tool-sources';
import type { SqlDatabase } from '../state/sql-database';
import type { ApproverStore } from '../identity/approver-registry';
import { createCheckPolicy } from './check-policy';
import { createNotifyApproval } from './notify-approval';
import { createVerifyApproval } from './verify-approval';
import type { Tracer } from '@opentelemetry/api';
import type { DataPlaneServices } from '../dataplane/data-plane-services';
import { createArchiveRun } from './archive-run';
import { createPlaceTask } from './place-task';
import { createProposeTurn } from './propose-turn';
import { createRunTool } from './run-tool';
import { createTaskIdentityActivities, type IdentityServices } from './task-identity';
import { createTaskRecoveryActivities } from './task-recovery';
import { createMonitorActivities, type MonitorServices } from './monitor-activities';
import { createAttestClaim } from './attest-claim';
import { createEndWorkflowTask } from './end-workflow-task';
import type { CustodyLedger } from '../custody/ledger';
import type { SharedCustodyLedger } from '../custody/shared-ledger';
import type { McpListingStore } from '../mcp/mcp-listing-store';
import type { BlobStore } from '../state/blob-store';
import { withPinnedListings } from './pinned-listings';

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
  /** The state database workers share (PostgreSQL), when there is one: SQL undo journals are shipped to it. */
  shared?: { db: SqlDatabase; workerId: string };
  /** Baselines, alerts and where alerts go (monitoring/); without them alerts are not recorded. */
  monitor?: MonitorServices;
  /** Registered approvers: only their signed decisions count. */
  approvers?: ApproverStore;
  /** Warden's own folders, key files and endpoints: refused to every task, never served to a tool. */
  wardenResources?: WardenResources;
  /** MCP servers as tool sources: the worker's connection pool and where server packages are installed. */
  mcp?: WorkerMcpOptions;
  /** The custody ledger the worker's telemetry records into: claim verdicts are appended to it. */
  custody?: CustodyLedger | SharedCustodyLedger;
  /** Pinned MCP tool lists by digest (the state database's blob store): tasks carry only the digests. */
  listings?: McpListingStore;
  /** The state database's content-addressed blobs: the steps a model was shown (model-context-store.ts). */
  blobs?: BlobStore;
}

export interface WorkerMcpOptions {
  pool: McpConnectionPool;
  /** Folder whose node_modules holds installed MCP server packages (`warden mcp install`). */
  packagesDir?: string;
  /** More host folders stdio servers see read-only. */
  extraReadOnlyPaths?: readonly string[];
}

export function createActivities(deps: ActivityDeps) {
  // A task's MCP tool lists travel by digest; each activity gets them read back and checked.
  return withPinnedListings(deps.listings, {
    proposeTurn: createProposeTurn(deps),
    runTool: createRunTool(deps),
    checkPolicy: createCheckPolicy(deps),
    notifyApproval: createNotifyApproval(deps),
    verifyApproval: createVerifyApproval(deps),
    placeTask: createPlaceTask(deps),
    archiveRun: createArchiveRun(deps),
    attestClaim: createAttestClaim(deps),
    endWorkflowTask: createEndWorkflowTask(),
    ...createTaskIdentityActivities(deps),
    ...createTaskRecoveryActivities(deps),
    ...createMonitorActivities(deps),
    ...createToolSourceActivities(deps),
  });
}

export type WardenActivities = ReturnType<typeof createActivities>;
