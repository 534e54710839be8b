/**
 * Spawns a sub-agent as a child workflow: its task is derived from (and never wider than) this
 * one, its grant is delegated from this task's grant, and a completed child's compensations and
 * policy counters come back to the parent.
 */
import { executeChild, workflowInfo } from '@temporalio/workflow';
import { deriveSubagentTask } from '../permissions/derive-subagent-task';
import { mergePolicyStates, type PolicyState } from '../policies/engine/policy-state';
import type { SpawnAction, StepRecord, TaskIdentity } from '../task/task-run';
import type { ProvenanceSeed } from '../policies/provenance-seed';
import { summarized } from './activity-stubs';
import type { agentTask } from './agent-task';
import type { AgentRun } from './agent-run';
import { AGENT_TASK_WORKFLOW, subagentWorkflowId } from './definitions';
import { stepErrorOf, TaskEnded } from './task-ended';
import { handoffFor } from './subagent-handoff';
import { taskResultOfFailure } from './task-close';
import { taskSearchAttributes } from './search-attributes';
import { taskDetails, taskSummary } from './ui-summaries';

/** Delegation refusals: recorded as a denied spawn, after which the parent goes on. */
const DELEGATION_REFUSALS = ['ERR_DELEGATION_WIDENS', 'ERR_DELEGATION_EXPIRY', 'ERR_DELEGATION_DEPTH'];

/**
 * Runs the sub-agent to its end. Returns false when its grant was refused (the step is then a
 * denied spawn and nothing ran).
 */
export async function runSpawnStep(run: AgentRun, action: SpawnAction, step: StepRecord, provenance?: ProvenanceSeed): Promise<boolean> {
  // Only tasks that cannot spawn take the data flow (data-flow-choice.ts): sub-agents' verified
  // handoffs live on the original loop. Should one get here anyway, nothing is delegated.
  if (run.flow !== undefined) throw new TaskEnded('failed', 'sub-agents do not run on the data flow: a task that may spawn runs on the original loop');
  const childTask = deriveSubagentTask(run.task, action.subagent, action.intent, run.patches.subagentLimitsInherited ? 'parent' : 'schema-defaults');
  const childId = subagentWorkflowId(run.workflowId, action.subagent, step.index);
  const deadlineAt = run.deadline.deadlineAt;
  // What only a parent hands its child, bound to the grant delegated to exactly this child workflow.
  // With it the sub-agent's provenance (its intent is the parent's words: only the root user's values
  // count as given), so the child cannot be handed a wider one than its parent's.
  const handoff = { ...handoffFor(run), ...(provenance === undefined ? {} : { provenance }) };
  let childIdentity: TaskIdentity;
  try {
    childIdentity = await run.deadline.within(() =>
      summarized.delegateGrant(`delegate to ${action.subagent}`)({ workflowId: childId, task: childTask, deadlineAt, parentGrantId: run.identity!.grantId, handoff }),
    );
  } catch (error) {
    const refusal = stepErrorOf(error);
    if (!DELEGATION_REFUSALS.includes(refusal.code)) throw error;
    step.decision = 'deny';
    step.reason = refusal.message;
    step.error = refusal;
    return false;
  }
  // The child gets the search attributes this task started with (the ones the namespace has).
  const registered = new Set(workflowInfo().typedSearchAttributes.getAll().map((pair) => pair.key.name));
  const child = await run.deadline.within(() =>
    executeChild<typeof agentTask>(AGENT_TASK_WORKFLOW, {
      workflowId: childId,
      staticSummary: taskSummary(childTask),
      staticDetails: taskDetails(childTask, run.workflowId),
      typedSearchAttributes: taskSearchAttributes(childTask, registered),
      args: [{ task: childTask, handoff: { grantId: childIdentity.grantId, ...handoff } }],
    }).catch((error: unknown) => {
      // A sub-agent that did not complete closes as failed, carrying its result (task-close.ts).
      const ended = taskResultOfFailure(error);
      if (ended === undefined) throw error;
      return ended;
    }),
  );
  const { compensations: _handedOver, policyState: childPolicyState, writes: _written, ...childResult } = child;
  if (childPolicyState !== undefined) run.policyState = mergePolicyStates(run.policyState, childPolicyState as PolicyState);
  run.state.children.push(childResult);
  if (child.status === 'completed') run.saga.adoptChild(action.subagent, child);
  step.output = { status: child.status, final: child.final, ...(child.reason === undefined ? {} : { reason: child.reason }) };
  if (child.status !== 'completed') step.error = { code: 'ERR_SUBAGENT_FAILED', message: `sub-agent ${action.subagent} ended ${child.status}` };
  // The tree's data plane is gone with its worker: nothing the parent does next could commit.
  // (Only the task's end is taken from the child's word; where the saga runs is this run's own finding.)
  if (run.affinity.enabled && child.status === 'failed' && child.reason?.startsWith('ERR_DATA_PLANE_LOST') === true) {
    step.executed = true;
    throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: sub-agent ${action.subagent} lost the task's data plane (${child.reason.slice('ERR_DATA_PLANE_LOST: '.length)})`);
  }
  return true;
}
