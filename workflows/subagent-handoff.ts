/**
 * Where a run sits in a task tree, and how a parent hands a sub-agent its place.
 *
 * The public input of `agentTask` is `{ task }`. Everything else a run needs (its identity, depth,
 * lineage, deadline, policy counters, the root run that names its recovery state) is Warden's:
 * the root's comes from `beginTask`; a sub-agent's is handed over by its parent in `handoff`,
 * bound to the grant the parent delegated to exactly that child workflow (its `handoff` claim is a
 * digest of the task and handoff), and accepted only after the `beginSubagent` activity has
 * verified it. Until then the run holds no identity and runs nothing. Histories recorded before
 * the handoff was verified replay as they were (the `subagent-handoff-verified` patch).
 *
 * Deterministic: no I/O; the activities do the checking.
 */
import { workflowInfo } from '@temporalio/workflow';
import { claimedHandoffOf, type AgentTaskInput, type SubagentHandoff, type TaskIdentity } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { summarized } from './activity-stubs';
import type { WorkflowPatches } from './workflow-patches';

/** A run's place in its task tree, as its input claims it (verified in `beginIdentity`). */
export interface RunOrigin {
  isRoot: boolean;
  depth: number;
  lineage: readonly string[];
  /** Epoch ms: the parent's deadline (a sub-agent never outlives it); undefined for a root. */
  inheritedDeadlineAt: number | undefined;
  policyState: unknown;
  /** The root task's first run id, naming the tree's recovery state; undefined for trees keyed by workflow id alone. */
  rootRunId: string | undefined;
  /** The identity given in the input: trusted only when replaying a history from before verification. */
  trustedIdentity: TaskIdentity | undefined;
  /** What `beginSubagent` verifies: the task and handoff exactly as received. */
  claim: { task: unknown; handoff: unknown } | undefined;
  /** The tree's data plane the handoff names: used only once `beginSubagent` verified the handoff. */
  dataPlane: SubagentHandoff['dataPlane'];
}

/** Whether the input claims to be a sub-agent's (decided before any patch, which depends on it). */
export function claimsHandoff(input: AgentTaskInput): boolean {
  return claimedHandoffOf(input) !== undefined;
}

/**
 * The run's origin from its input. `raw` is the input as received (before schema defaults), so the
 * digest the child checks is over the same values the parent's grant covers.
 */
export function originOf(input: AgentTaskInput, raw: AgentTaskInput, patches: Pick<WorkflowPatches, 'subagentHandoff' | 'recoveryByRun'>): RunOrigin {
  const claimed = claimedHandoffOf(input);
  if (claimed === undefined) {
    return {
      isRoot: true,
      depth: 0,
      lineage: [],
      inheritedDeadlineAt: undefined,
      policyState: undefined,
      // The first run of this start: continue-as-new keeps it, a reused workflow id gets a new one.
      rootRunId: patches.recoveryByRun ? workflowInfo().firstExecutionRunId : undefined,
      trustedIdentity: undefined,
      claim: undefined,
      dataPlane: undefined,
    };
  }
  return {
    isRoot: false,
    depth: claimed.depth,
    lineage: claimed.lineage,
    // Histories from before: `deadlineAt` was optional on the input.
    inheritedDeadlineAt: input.handoff?.deadlineAt ?? input.deadlineAt,
    policyState: claimed.policyState,
    rootRunId: input.handoff?.rootRunId,
    trustedIdentity: patches.subagentHandoff ? undefined : input.identity,
    claim: patches.subagentHandoff ? { task: raw.task, handoff: raw.handoff ?? legacyFieldsOf(raw) } : undefined,
    // Only a verified handoff names it (an unverified one never reaches an activity: beginSubagent refuses it first).
    dataPlane: patches.subagentHandoff ? input.handoff?.dataPlane : undefined,
  };
}

/** The older top-level fields, passed on as they are so the activity can say why they are refused. */
function legacyFieldsOf(raw: AgentTaskInput): Record<string, unknown> {
  const { task: _task, handoff: _handoff, ...rest } = raw;
  return { legacy: rest };
}

/** What a parent hands the sub-agent it spawns, besides the task and the grant id (`delegateGrant` binds it). */
export function handoffFor(run: {
  depth: number;
  lineage: readonly string[];
  workflowId: string;
  deadline: { deadlineAt: number };
  policyState: unknown;
  rootRunId: string | undefined;
  affinity?: { handoff(): SubagentHandoff['dataPlane'] };
}): Omit<SubagentHandoff, 'grantId'> {
  // The tree's data plane goes down with the rest, signed by the grant delegated to the child.
  const dataPlane = run.affinity?.handoff();
  return {
    depth: run.depth + 1,
    lineage: [...run.lineage, run.workflowId],
    deadlineAt: run.deadline.deadlineAt,
    ...(run.rootRunId === undefined ? {} : { rootRunId: run.rootRunId }),
    policyState: run.policyState,
    ...(dataPlane === undefined ? {} : { dataPlane }),
  };
}

/**
 * The run's identity: issued by `beginTask` for a root, or the parent's delegation once
 * `beginSubagent` has verified the handoff (both refuse a task that would hand Warden's own
 * resources to an agent, before anything runs).
 */
export async function beginIdentity(
  run: { isRoot: boolean; workflowId: string; origin: RunOrigin; deadline: { deadlineAt: number; within<T>(fn: () => Promise<T>): Promise<T> } },
  task: Task,
): Promise<TaskIdentity> {
  const { claim } = run.origin;
  if (run.isRoot || claim === undefined) {
    return run.deadline.within(() => summarized.beginTask(`grant: ${task.agent.name} for ${task.user}`)({ workflowId: run.workflowId, task, deadlineAt: run.deadline.deadlineAt }));
  }
  return run.deadline.within(() => summarized.beginSubagent(`accept handoff: ${task.agent.name}`)({ task: claim.task as Task, handoff: claim.handoff }));
}
