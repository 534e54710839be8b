/**
 * The recovery side of a task's life. Agents' file changes live in a copy-on-write overlay of the
 * workspace until the task tree completes, and SQL changes are journaled with before-images; a
 * task that ends any other way is rolled back by compensations, run in reverse as activities.
 *
 * Where things live: the overlay's working copy in this worker's state folder (the data plane);
 * journals, snapshots and the compensation ledger in the shared folder (flow-deps.ts), so the
 * worker a task moves to can still undo what an earlier one did.
 *
 * Invariants: every function here is idempotent, because Temporal may run an activity again after
 * a worker dies at any point. A commit that is given the files the task's steps wrote reports
 * success only when the workspace ends up holding exactly those (a missing or different overlay
 * is ERR_OVERLAY_MISSING / ERR_COMMIT_MISMATCH and nothing is written).
 */
import { assertWorkspaceFilesWithin, workspaceLimitMbOf } from '../recovery/overlay-volume';
import { DataPlaneError, RecoveryError } from '../errors';
import { dropOverlayCopy, expectedFiles, localOverlayRecords, syncOverlayCopy, verifyOverlay } from '../dataplane/overlay-copy';
import { commitManifestPathOf, journalPathOf, taskKeyOf } from '../recovery/recovery-paths';
import { fileStateOf, readManifest } from '../recovery/snapshot-store';
import { realRootOf, resolveConfined } from '../sandbox/capabilities/fs-capability';
import { isClaimCheckRef, type FileWrite } from '../task/data-refs';
import { resolveClaimChecks } from '../dataplane/claim-check';
import { hydrateJournal } from '../recovery/shared-journal';
import type { Compensation } from '../recovery/compensation';
import { runCompensation, type CompensationOutcome } from '../recovery/run-compensation';
import { commitOverlay } from '../recovery/workspace-overlay';
import { restoreSnapshot, snapshotWorkspace } from '../recovery/workspace-snapshot';
import type { Task } from '../task/task-schema';
import type { ActivityDeps } from './index';
import { assertOnWorker, recoveryDirOf, stateDirOfDeps, taskOf, type TaskInput } from './flow-deps';
import { executeToolCall, protectedSetForCall } from './run-tool';
import { revokeGrant } from './task-identity';
import { atActivityBoundary } from './to-application-failure';
import { activityAttempt, activitySignal } from './next-turn';
import { acquireCallLease, removeCallLeases } from '../recovery/call-lease';
import { mcpCompensationArgs } from '../executors/mcp-executor';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan, outcomeOfError } from '../telemetry/warden-span-attributes';

export type RecoveryTaskInput = {
  /** The workflow id of the task the user started (the root of the sub-agent tree). */
  rootWorkflowId: string;
  /** The root's first run id: names the run's own recovery state (absent in trees started before). */
  rootRunId?: string;
} & TaskInput;

export type CommitTaskInput = RecoveryTaskInput & {
  /**
   * Every file the task tree's steps reported writing, in order (the data flow). With it the
   * commit proves the overlay holds exactly these before writing anything, and the workspace
   * holds them after.
   */
  expected?: FileWrite[];
};

export type FinishTaskInput = CommitTaskInput & {
  /** The grant to revoke once committed, and the status to record. */
  grantId?: string;
  status: string;
  /** Run only on this worker (a local activity meant for the data plane). */
  onWorker?: string;
};

export type CompensateInput = RecoveryTaskInput & {
  compensation: Compensation;
  /** The task's grant, for compensating tools (they run in the sandbox like any call). */
  grantId?: string;
  /**
   * The original call may never have started (a `tool` compensation registered in doubt): its
   * compensating tool runs only if the call's start record says it started (recovery/call-starts.ts).
   */
  startedOnly?: true;
};

export function createTaskRecoveryActivities(deps: ActivityDeps) {
  /** The commit (see `commitTask`); idempotent. A commit that fails says why in its custody record. */
  async function commit(input: CommitTaskInput): Promise<{ files: string[]; skipped?: string[] }> {
    try {
      return await commitOnce(input);
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      throw error;
    }
  }

  async function commitOnce(input: CommitTaskInput): Promise<{ files: string[]; skipped?: string[] }> {
    const task = await taskOf(deps, input);
    const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
    const workspace = task.resources.workspace;
    if (workspace === undefined) {
      if ((input.expected ?? []).length > 0) throw new DataPlaneError('ERR_COMMIT_MISMATCH', 'the task has no workspace, yet its steps reported writing files', { details: { taskKey } });
      // No overlay to remove with them (commitOverlay does): the leases of its SQL or compensated calls go here.
      await removeCallLeases(stateDirOfDeps(deps), taskKey);
      return { files: [] };
    }
    const stateDir = stateDirOfDeps(deps);
    // A retry after the commit finished (and removed the overlay) has nothing left to verify
    // beforehand; the check of the workspace afterwards still proves what was written.
    const finished = (await readManifest(commitManifestPathOf(recoveryDirOf(deps), taskKey)))?.status === 'committed';
    // Files longer in all than the tree's bound (sparse, hard links) are neither hashed nor committed.
    if (!finished) assertWorkspaceFilesWithin(stateDir, taskKey, task, 'the commit');
    if (input.expected !== undefined && !finished) await verifyOverlay({ stateDir, taskKey, expected: input.expected, workerId: deps.dataPlane?.workerId ?? 'this worker' });
    const result = await commitOverlay({
      stateDir: recoveryDirOf(deps),
      overlayStateDir: stateDir,
      taskKey,
      workspace,
      protected: await protectedSetForCall(deps, task),
      ...(task.resources.allowHostCode === undefined ? {} : { allowHostCode: task.resources.allowHostCode }),
      workspaceLimitBytes: workspaceLimitMbOf(task) * 1024 * 1024,
    });
    // Held host-code files are reported with what a commit leaves out (recovery.notCommitted).
    const skipped = [...result.skipped, ...result.held];
    // What the commit held or skipped on purpose is not in the workspace, and is reported instead.
    const notCommitted = new Set([...result.skipped.map((r) => r.slice(0, r.lastIndexOf(' ('))), ...result.held.map((r) => r.slice(0, r.lastIndexOf(' (held: ')))]);
    if (input.expected !== undefined) await checkCommitted(taskKey, workspace, input.expected, notCommitted);
    if (deps.dataPlane !== undefined) await dropOverlayCopy({ stateDir, taskKey, placements: deps.dataPlane.placements });
    await dropOverlayCopy({ stateDir, taskKey, placements: localOverlayRecords(stateDir) });
    return { files: result.manifest?.entries.map((e) => e.path) ?? [], ...(skipped.length === 0 ? {} : { skipped }) };
  }

  return {
    /**
     * Names the task tree's recovery state and, for `snapshot: true`, takes the pre-task snapshot.
     * Reports this worker's data-plane queue (`<taskQueue>@<workerId>`), where the original loop
     * sends the tree's later data-plane calls (workflows/data-plane-affinity.ts).
     */
    async prepareTask(input: RecoveryTaskInput): Promise<{ taskKey: string; snapshot: boolean; dataPlaneQueue?: string }> {
      return atActivityBoundary(async () => {
        const task = await taskOf(deps, input);
        const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
        if (task.snapshot) await takePreTaskSnapshot(deps, taskKey, task);
        // This worker's own queue (which only it polls): the tree's later data-plane calls go there.
        const dataPlaneQueue = deps.dataPlane?.taskQueue;
        return { taskKey, snapshot: task.snapshot, ...(dataPlaneQueue === undefined ? {} : { dataPlaneQueue }) };
      });
    },

    /** Makes the overlay's files real (atomically per file, snapshotting what they replace). */
    async commitTask(input: CommitTaskInput): Promise<{ files: string[]; skipped?: string[] }> {
      return atActivityBoundary(() => commit(input));
    },

    /**
     * Ends a completed task in one call: commits (as `commitTask`) and then revokes its grant (as
     * `endTask`). Meant to run as a local activity on the task's data plane: with `onWorker` it
     * refuses (ERR_DATA_PLANE_ELSEWHERE, doing nothing) on any other worker.
     */
    async finishTask(input: FinishTaskInput): Promise<{ files: string[]; skipped?: string[] }> {
      return atActivityBoundary(async () => {
        assertOnWorker(deps, input.onWorker);
        const committed = await commit(input);
        if (input.grantId !== undefined) await revokeGrant(deps, input.grantId, input.status);
        return committed;
      });
    },

    /** Runs one compensation; running it again is a no-op. */
    async compensate(input: CompensateInput): Promise<CompensationOutcome> {
      return atActivityBoundary(async () => {
        const task = await taskOf(deps, input);
        const stateDir = stateDirOfDeps(deps);
        const recoveryDir = recoveryDirOf(deps);
        const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
        // A call's own compensation first stops any attempt of the call still running (a worker Temporal
        // gave up on) and waits until it has ended (and undone its own writes): it then undoes the call, and nothing after.
        const compensated = 'callId' in input.compensation ? input.compensation.callId : undefined;
        const signal = activitySignal();
        const lease = compensated === undefined ? undefined : await acquireCallLease({ stateDir, taskKey, callId: compensated, attempt: activityAttempt(), kind: 'compensation', ...(signal === undefined ? {} : { signal }) });
        try {
          // The SQL may have run on another worker: take its journaled images first.
          if (deps.shared !== undefined) await hydrateJournal(deps.shared.db, { journal: journalPathOf(recoveryDir, taskKey), journalKey: taskKey });
          const outcome = await runCompensation(input.compensation, {
            stateDir: recoveryDir,
            overlayStateDir: stateDir,
            taskKey,
            journal: journalPathOf(recoveryDir, taskKey),
            databases: task.resources.databases,
            ...(input.startedOnly === true ? { startedOnly: startRecordsShared(deps) ? ('fence' as const) : ('read' as const) } : {}),
            runTool: async (tool, given) => {
              if (input.grantId === undefined) throw new RecoveryError('ERR_COMPENSATION_FAILED', `cannot run compensating tool ${tool} without a task grant`);
              // The original output may be a claim check Warden made (over 16 KiB): the compensating tool gets the value.
              const toolInput = await withOriginalOutput(deps, given);
              const call = await executeToolCall(deps, {
                rootWorkflowId: input.rootWorkflowId,
                ...(input.rootRunId === undefined ? {} : { rootRunId: input.rootRunId }),
                callId: `compensate:${input.compensation.kind === 'tool' ? input.compensation.callId : tool}`,
                grantId: input.grantId,
                maxCredentialTtlMs: 60_000,
                task,
                tool,
                // An MCP tool's undo takes its own arguments, mapped from the original call by the task file.
                args: (input.compensation.kind === 'tool' ? mcpCompensationArgs(task, toolInput.original as typeof input.compensation.input.original) : undefined) ?? toolInput,
              });
              return call.output;
            },
          });
          // The overlay changed: its shared copy follows (discarded, or a sub-agent's writes undone).
          if (deps.dataPlane !== undefined && input.compensation.kind === 'fs-overlay-discard') await dropOverlayCopy({ stateDir, taskKey, placements: deps.dataPlane.placements });
          // This worker's own record of the overlay (the ordinary loop's call baselines) follows it too.
          if (input.compensation.kind === 'fs-overlay-discard') await dropOverlayCopy({ stateDir, taskKey, placements: localOverlayRecords(stateDir) });
          if (input.compensation.kind === 'fs-overlay-undo' && task.resources.workspace !== undefined) {
            const workerId = deps.dataPlane?.workerId ?? 'this worker';
            await syncOverlayCopy({ stateDir, taskKey, callId: `undo:${input.compensation.callId}`, workspace: task.resources.workspace, workerId, placements: localOverlayRecords(stateDir) });
          }
          // Only a task with a shared copy (the data flow's) has one to follow: the ordinary loop has no placement to record it on.
          if (deps.dataPlane !== undefined && input.compensation.kind === 'fs-overlay-undo' && task.resources.workspace !== undefined && (await deps.dataPlane.placements.loadOverlayCopy(taskKey)) !== undefined) {
            const dp = deps.dataPlane;
            await syncOverlayCopy({ stateDir, taskKey, callId: `undo:${input.compensation.callId}`, workspace: task.resources.workspace, workerId: dp.workerId, blobs: dp.blobs, placements: dp.placements });
          }
          return outcome;
        } finally {
          await lease?.release();
        }
      });
    },

    /** Puts the workspace and databases back to the pre-task snapshot (when compensation alone cannot). */
    async restorePreTaskSnapshot(input: RecoveryTaskInput): Promise<{ restored: number; deleted: number; databases: number }> {
      return atActivityBoundary(async () => {
        const task = await taskOf(deps, input);
        const result = await restoreSnapshot({
          stateDir: recoveryDirOf(deps),
          taskKey: taskKeyOf(input.rootWorkflowId, input.rootRunId),
          ...(task.resources.workspace === undefined ? {} : { workspace: task.resources.workspace }),
          databases: true,
          force: true,
        });
        return { restored: result.restored.length, deleted: result.deleted.length, databases: result.databases.length };
      });
    },
  };
}

/**
 * Whether every worker that may have run a call of this task wrote its start record to this
 * worker's recovery folder: a named shared folder, or no other workers (no shared database). A
 * shared database with no shared folder leaves each worker its own records: one not found here
 * may be in another's.
 */
function startRecordsShared(deps: ActivityDeps): boolean {
  const dp = deps.dataPlane;
  if (dp === undefined) return deps.shared === undefined;
  return dp.sharedFolderNamed || !dp.explicitShared;
}

/** The pre-task snapshot of the task's workspace and databases, in the shared folder. */
export async function takePreTaskSnapshot(deps: ActivityDeps, taskKey: string, task: Task): Promise<void> {
  await snapshotWorkspace({
    stateDir: recoveryDirOf(deps),
    taskKey,
    ...(task.resources.workspace === undefined ? {} : { workspace: task.resources.workspace }),
    databases: task.resources.databases,
  });
}

/** After a commit: every file the steps wrote holds what they wrote, every deletion is gone (else the commit lied). */
async function checkCommitted(taskKey: string, workspace: string, writes: readonly FileWrite[], notCommitted: ReadonlySet<string>): Promise<void> {
  const root = realRootOf(workspace);
  const wrong: string[] = [];
  for (const [path, sha256] of expectedFiles(writes)) {
    if (sha256 === 'opaque' || notCommitted.has(path)) continue;
    const state = await fileStateOf(resolveConfined(root, path, 'refuse').absolute);
    if (sha256 === 'deleted' ? state !== null : state !== sha256) wrong.push(path);
  }
  if (wrong.length > 0) {
    throw new DataPlaneError('ERR_COMMIT_MISMATCH', `after the commit of task ${taskKey} the workspace does not hold what its steps wrote to ${wrong.slice(0, 5).join(', ')}`, {
      details: { taskKey, paths: wrong },
    });
  }
}


/**
 * A compensating tool's input with its original call's output as the value: a claim check there
 * was written by Warden (a tool's own output shaped like one is refused), so it is resolved,
 * verified against its digest, where the tool would otherwise refuse it as forged.
 */
async function withOriginalOutput(deps: ActivityDeps, given: unknown): Promise<Record<string, unknown>> {
  const input = given as { original?: { output?: unknown } } & Record<string, unknown>;
  const blobs = deps.dataPlane?.blobs;
  if (blobs === undefined || input.original === undefined || !isClaimCheckRef(input.original.output)) return input;
  return { ...input, original: { ...input.original, output: await resolveClaimChecks(blobs, input.original.output) } };
}
