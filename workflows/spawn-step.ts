/**
 * Spawns a sub-agent as a child workflow: its task is derived from (and never wider than) this
 * one, its grant is delegated from this task's grant, and a completed child's compensations and
 * policy counters come back to the parent.
 */
import { executeChild, workflowInfo } from '@temporalio/workflow';
import { deriveSubagentTask } from '../permissions/derive-subagent-task';
import { mergePolicyStates, type PolicyState } from '../policies/engine/policy-state';
import type { SpawnAction, StepRecord, TaskIdentity } from '../task/task-run';
import { summarized } from './activity-stubs';
import type { agentTask } from './agent-task';
import type { AgentRun } from './agent-run';
import { AGENT_TASK_WORKFLOW, subagentWorkflowId } from './definitions';
import { stepErrorOf, TaskEnded } from './task-ended';
import { DataPlaneLost, MODEL_CALL, type TaskFlow } from './task-flow';
import { taskResultOfFailure } from './task-close';
import { taskSearchAttributes } from './search-attributes';
import { taskDetails, taskSummary } from './ui-summaries';

/** Delegation refusals: recorded as a denied spawn, after which the parent goes on. */
const DELEGATION_REFUSALS = ['ERR_DELEGATION_WIDENS', 'ERR_DELEGATION_EXPIRY', 'ERR_DELEGATION_DEPTH'];

/**
 * Runs the sub-agent to its end. Returns false when its grant was refused (the step is then a
 * denied spawn and nothing ran).
 */
export async function runSpawnStep(run: AgentRun, action: SpawnAction, step: StepRecord): Promise<boolean> {
  if (run.flow !== undefined) return runFlowSpawnStep(run, run.flow, action, step);
  const childTask = deriveSubagentTask(run.task, action.subagent, action.intent);
  const childId = subagentWorkflowId(run.workflowId, action.subagent, step.index);
  const deadlineAt = run.deadline.deadlineAt;
  let childIdentity: TaskIdentity;
  try {
    childIdentity = await run.deadline.within(() =>
      summarized.delegateGrant(`delegate to ${action.subagent}`)({ workflowId: childId, task: childTask, deadlineAt, parentGrantId: run.identity!.grantId }),
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
    }).catch((error: unknown) => {
      // A sub-agent that did not complete closes as failed, carrying its result (task-close.ts).
      const ended = taskResultOfFailure(error);
      if (ended === undefined) throw error;
      return ended;
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

/**
 * The data flow's spawn: the grant is delegated on the data plane (where the parent's grant is),
 * the child gets the placement and its task by reference, and its writes come back for the
 * commit check. A child that lost the data plane hands its compensations up; the root then rolls
 * the tree back on another worker, a sub-agent hands the loss further up.
 */
async function runFlowSpawnStep(run: AgentRun, flow: TaskFlow, action: SpawnAction, step: StepRecord): Promise<boolean> {
  const childTask = deriveSubagentTask(run.task, action.subagent, action.intent);
  const childId = subagentWorkflowId(run.workflowId, action.subagent, step.index);
  const deadlineAt = run.deadline.deadlineAt;
  let delegated;
  try {
    delegated = await flow.call(run, MODEL_CALL, 'rebuild', (a) => a.delegateTask({ workflowId: childId, task: childTask, deadlineAt, parentGrantId: run.identity!.grantId }), `delegate to ${action.subagent}`);
  } catch (error) {
    if (error instanceof TaskEnded) throw error;
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
      args: [
        {
          task: childTask,
          depth: run.depth + 1,
          lineage: [...run.lineage, run.workflowId],
          deadlineAt,
          identity: delegated.identity,
          policyState: run.policyState,
          placement: flow.placement!,
          taskRef: delegated.taskRef,
          flow: flow.options,
        },
      ],
    }).catch((error: unknown) => {
      // A sub-agent that did not complete closes as failed, carrying its result (task-close.ts).
      const ended = taskResultOfFailure(error);
      if (ended === undefined) throw error;
      return ended;
    }),
  );
  const { compensations: _handedOver, policyState: childPolicyState, writes, dataPlaneLost, ...childResult } = child;
  if (childPolicyState !== undefined) run.policyState = mergePolicyStates(run.policyState, childPolicyState as PolicyState);
  run.state.children.push(childResult);
  flow.recordWrites(writes);
  if (child.status === 'completed' || dataPlaneLost === true) run.saga.adoptChild(action.subagent, child);
  step.output = { status: child.status, final: child.final, ...(child.reason === undefined ? {} : { reason: child.reason }) };
  if (child.status !== 'completed') step.error = { code: 'ERR_SUBAGENT_FAILED', message: `sub-agent ${action.subagent} ended ${child.status}` };
  if (dataPlaneLost === true) {
    const why = `sub-agent ${action.subagent} lost the task's data plane (${child.reason ?? 'its worker is gone'})`;
    if (!run.isRoot) throw new DataPlaneLost(why);
    // The tree cannot go on with a sub-agent cut off halfway: move, and roll everything back there.
    await flow.takeOver(run, false, why);
    throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: ${why}; the task is rolled back`);
  }
  return true;
}
