/**
 * Placing a task tree's data plane on a worker (Temporal's worker-specific task queue pattern):
 * `placeTask` runs on the shared task queue, and the worker that picks it up becomes the task's
 * data plane. It checks the task's resources are reachable here, issues the task's grant, takes
 * the pre-task snapshot, stores the task for activities to take by reference, records the
 * placement in the shared folder and answers with its own task queue, where the workflow sends
 * every later activity that touches the overlay, the grants or the sandbox host.
 *
 * When the worker holding a task dies, the workflow places it again (`takeover`): the new worker
 * checks it can see the previous worker's placement record (else the "shared" folder is not
 * shared, ERR_SHARED_STORAGE), rebuilds the overlay from its shared copy when the task is to go on
 * (checking the copy holds every file the steps wrote, else ERR_OVERLAY_MISSING), and issues a
 * new grant when the task's grant is unknown here (grants live in each worker's state folder
 * until they move to the shared state store). Every error is non-retryable: the workflow decides
 * (roll back) rather than Temporal retrying forever.
 */
import { DataPlaneError } from '../errors';
import { checkTaskResources } from '../dataplane/shared-storage';
import { rebuildOverlay } from '../dataplane/overlay-copy';
import { issueTaskGrant } from '../identity/task-grant';
import { taskKeyOf } from '../recovery/recovery-paths';
import { realRootOf } from '../sandbox/capabilities/fs-capability';
import type { FileWrite, Placement } from '../task/data-flow';
import type { StepError, TaskIdentity } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { ActivityDeps } from './index';
import { dataPlaneOf, stateDirOfDeps } from './flow-deps';
import type { PolicyCheck } from './check-policy';
import { proposeFoldedTurn, type ProposedTurn } from './next-turn';
import { precheckPolicy, type PolicyPlace } from './precheck-policy';
import { loadMonitorSetup, type MonitorSetup } from './monitor-activities';
import { monitorRequestOf } from '../monitoring/monitor-request';
import type { PolicyState } from '../policies/engine/policy-state';
import { assertRootWorkflowIdChoosable, assertTaskSparesWarden, grantRequestOf, identityOf } from './task-identity';
import { takePreTaskSnapshot } from './task-recovery';
import { atActivityBoundary } from './to-application-failure';

export interface PlaceTaskInput {
  rootWorkflowId: string;
  /** The root's first run id: names the tree's recovery state, as on the original loop. */
  rootRunId?: string;
  workflowId: string;
  task: Task;
  /** Epoch ms: the task's deadline, which is also its grant's expiry. */
  deadlineAt: number;
  /** Set when the task tree's data plane was lost and moves to this worker. */
  takeover?: {
    previous: Placement;
    /** The task's grant, reused when this worker knows it. */
    grantId?: string;
    /** Every file the task's steps wrote so far. */
    writes: FileWrite[];
    /** True when the task goes on (its overlay is rebuilt); false when it only rolls back here. */
    rebuild: boolean;
  };
  /** Also ask the model for the task's first turn (one call instead of two at the start). */
  firstTurn?: boolean;
  /** With `firstTurn`: decide ahead on its first action (policies/policy-precheck.ts), in this place and with this policy state. */
  policyPrecheck?: PolicyPlace & { state: PolicyState };
  /**
   * Also read what the task's monitor starts from: the result's `monitor`, recorded in history with
   * the placement, so the run needs no local activity for it. A flag, not `beginMonitoring`'s input:
   * the agent, packs and sentences are the task's own (`task`), so they travel once; a payload
   * holding the task's policies twice could pass Temporal's size limit where the task alone did not.
   * Only for a root (no sub-agent grant whose ancestors' hosts would be read).
   */
  monitor?: true;
}

export interface PlaceTaskResult {
  placement: Placement;
  taskRef: string;
  /** A grant issued here: always at the start; at a takeover when the task's grant is unknown here. */
  identity?: TaskIdentity;
  snapshot: boolean;
  /** Overlay files restored from the shared copy (takeover). */
  restored?: number;
  /** The first model turn (`firstTurn`), or why asking for it failed (the workflow asks again on its own). */
  turn?: (ProposedTurn & { policy?: PolicyCheck }) | { error: StepError };
  /**
   * The monitor's setup (`monitor`). Absent when it was not asked, when this worker's code predates
   * it, or when reading it failed: the workflow then asks `beginMonitoring` (retried, and the task
   * fails if it keeps failing), as before. Never a reason to fail the placement.
   */
  monitor?: MonitorSetup;
}

export function createPlaceTask(deps: ActivityDeps) {
  return async function placeTask(input: PlaceTaskInput): Promise<PlaceTaskResult> {
    return atActivityBoundary(async () => {
      const dp = dataPlaneOf(deps);
      const stateDir = stateDirOfDeps(deps);
      const { task } = input;
      const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
      const takeover = input.takeover;
      if (takeover !== undefined) {
        const record = await dp.placements.loadPlacement(taskKey);
        if (record === undefined) {
          throw new DataPlaneError(
            'ERR_SHARED_STORAGE',
            `worker ${dp.workerId} took task ${input.rootWorkflowId} over from ${takeover.previous.workerId} but sees no record of it in ${dp.sharedDir}: that folder is not shared by the workers`,
            { details: { sharedDir: dp.sharedDir, previous: takeover.previous.workerId } },
          );
        }
      }
      // The root's first placement: an id a Warden client would have refused never gets a grant (a takeover's task was placed before).
      if (takeover === undefined) assertRootWorkflowIdChoosable(input.workflowId);
      // Before any grant exists: a task that would hand Warden's own state or control plane to an agent never starts.
      await assertTaskSparesWarden(deps, task);
      await checkTaskResources({ workspace: task.resources.workspace, databases: task.resources.databases, stateDir, explicitShared: dp.explicitShared });
      let restored: number | undefined;
      if (takeover?.rebuild === true && task.resources.workspace !== undefined) {
        ({ restored } = await rebuildOverlay({ stateDir, taskKey, workspace: task.resources.workspace, expected: takeover.writes, blobs: dp.blobs, placements: dp.placements }));
      }
      if (takeover === undefined && task.snapshot) await takePreTaskSnapshot(deps, taskKey, task);
      const identity = await grantFor(deps, input);
      const taskRef = await dp.tasks.put(task);
      const placement: Placement = { taskQueue: dp.taskQueue, workerId: dp.workerId, taskKey, generation: takeover === undefined ? 0 : takeover.previous.generation + 1 };
      await dp.placements.savePlacement({
        taskKey,
        rootWorkflowId: input.rootWorkflowId,
        workerId: dp.workerId,
        taskQueue: dp.taskQueue,
        generation: placement.generation,
        ...(task.resources.workspace === undefined ? {} : { workspace: realRootOf(task.resources.workspace) }),
        updatedAt: new Date().toISOString(),
      });
      const monitor = input.monitor === true ? await loadMonitorSetup(deps, monitorRequestOf(input.workflowId, task)).catch(() => undefined) : undefined;
      // The policy decides on its first action in the workflow, with the provenance main's check uses.
      let turn: PlaceTaskResult['turn'] = input.firstTurn === true ? await proposeFoldedTurn(deps, { workflowId: input.workflowId, task, taskRef, turn: 0, transcript: { ref: null, pending: [] } }) : undefined;
      const ahead = input.policyPrecheck;
      if (turn !== undefined && 'turn' in turn && ahead !== undefined) {
        const policy = await precheckPolicy(deps, {
          workflowId: input.workflowId,
          task,
          taskRef,
          action: turn.turn.actions[0],
          transcriptRef: turn.transcriptRef,
          place: { depth: ahead.depth, chain: ahead.chain, ...(ahead.seed === undefined ? {} : { seed: ahead.seed }) },
          state: ahead.state,
        });
        if (policy !== undefined) turn = { ...turn, policy };
      }
      return {
        placement,
        taskRef,
        ...(identity === undefined ? {} : { identity }),
        snapshot: task.snapshot,
        ...(restored === undefined ? {} : { restored }),
        ...(turn === undefined ? {} : { turn }),
        ...(monitor === undefined ? {} : { monitor }),
      };
    });
  };
}

/** The task's grant: a new one at the start, and at a takeover when this worker does not know it. */
async function grantFor(deps: ActivityDeps, input: PlaceTaskInput): Promise<TaskIdentity | undefined> {
  if (deps.identity === undefined) throw new TypeError('this worker was created without identity services');
  const { keystore, stores } = deps.identity;
  const known = input.takeover?.grantId === undefined ? undefined : await stores.grants.getGrant(input.takeover.grantId);
  if (known !== undefined) return undefined;
  const grant = await issueTaskGrant(keystore, { ...grantRequestOf(input), user: input.task.user });
  await stores.grants.saveGrant(grant);
  return identityOf(grant);
}
