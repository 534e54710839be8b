/**
 * Spawns a sub-agent as a child workflow: its task is derived from (and never wider than) this
 * one, its grant is delegated from this task's grant, and a completed child's compensations and
 * policy counters come back to the parent.
 */
import { executeChild } from '@temporalio/workflow';
import { deriveSubagentTask } from '../permissions/derive-subagent-task';
import { mergePolicyStates, type PolicyState } from '../policies/engine/policy-state';
import type { SpawnAction, StepRecord, TaskIdentity } from '../task/task-run';
import { delegateGrant } from './activity-stubs';
import type { agentTask } from './agent-task';
import type { AgentRun } from './agent-run';
import { AGENT_TASK_WORKFLOW } from './definitions';
import { stepErrorOf } from './task-ended';

/** Delegation refusals: recorded as a denied spawn, after which the parent goes on. */
const DELEGATION_REFUSALS = ['ERR_DELEGATION_WIDENS', 'ERR_DELEGATION_EXPIRY', 'ERR_DELEGATION_DEPTH'];

/** A sub-agent's workflow id: `<parent>/<sub-agent>-<step index>`. */
export function childWorkflowIdOf(parentWorkflowId: string, subagent: string, stepIndex: number): string {
  return `${parentWorkflowId}/${subagent}-${stepIndex}`;
}

/**
 * Runs the sub-agent to its end. Returns false when its grant was refused (the step is then a
 * denied spawn and nothing ran).
 */
export async function runSpawnStep(run: AgentRun, action: SpawnAction, step: StepRecord): Promise<boolean> {
  const childTask = deriveSubagentTask(run.task, action.subagent, action.intent);
  const childId = childWorkflowIdOf(run.workflowId, action.subagent, step.index);
  const deadlineAt = run.deadline.deadlineAt;
  let childIdentity: TaskIdentity;
  try {
    childIdentity = await run.deadline.within(() =>
      delegateGrant({ workflowId: childId, task: childTask, deadlineAt, parentGrantId: run.identity!.grantId }),
    );
  } catch (error) {
    const refusal = stepErrorOf(error);
    if (!DELEGATION_REFUSALS.includes(refusal.code)) throw error;
    step.decision = 'deny';
    step.reason = refusal.message;
    step.error = refusal;
    return false;
  }
  const child = await run.deadline.within(() =>
    executeChild<typeof agentTask>(AGENT_TASK_WORKFLOW, {
      workflowId: childId,
      args: [
        {
          task: childTask,
          depth: run.depth + 1,
          lineage: [...run.lineage, run.workflowId],
          deadlineAt,
          identity: childIdentity,
          policyState: run.policyState,
        },
      ],
    }),
  );
  const { compensations: _handedOver, policyState: childPolicyState, ...childResult } = child;
  if (childPolicyState !== undefined) run.policyState = mergePolicyStates(run.policyState, childPolicyState as PolicyState);
  run.state.children.push(childResult);
  if (child.status === 'completed') run.saga.adoptChild(action.subagent, child);
  step.output = { status: child.status, final: child.final, ...(child.reason === undefined ? {} : { reason: child.reason }) };
  if (child.status !== 'completed') step.error = { code: 'ERR_SUBAGENT_FAILED', message: `sub-agent ${action.subagent} ended ${child.status}` };
  return true;
}
