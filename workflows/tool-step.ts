/**
 * Runs a granted tool call as an activity in the sandbox, under a credential minted for exactly
 * this call, and registers how to undo it.
 */
import { recordExecution } from '../policies/engine/policy-state';
import { callKeyOf } from '../recovery/call-key';
import type { PolicyRequest } from '../policies/engine/policy-request';
import type { StepRecord, ToolAction } from '../task/task-run';
import { treeOf, type AgentRun } from './agent-run';
import { toolCallSummary } from './ui-summaries';

/** How long policy counters remember calls (rates look back at most a day). */
const POLICY_RETAIN_MS = 24 * 3_600_000;

export { CALL_KEY_PATCH } from './workflow-patches';

/**
 * The call's idempotency key: a retried activity applies its effects once; another run under
 * the same workflow id, or another call at the same step, gets its own (recovery/call-key.ts).
 */
export function toolCallId(run: AgentRun, stepIndex: number, tool: string, args: Record<string, unknown>): string {
  if (!run.patches.callKeys) return `${run.workflowId}:${stepIndex}`;
  return callKeyOf({ workflowId: run.workflowId, runId: run.runId, stepIndex, tool, args });
}

/**
 * Runs the call. `resolvedArgs` (a built-in fs call) carry the path the policy judged; the call
 * then opens exactly that path and follows no link.
 */
export async function runToolStep(run: AgentRun, action: ToolAction, step: StepRecord, policyRequest: PolicyRequest, resolvedArgs?: Record<string, unknown>): Promise<void> {
  const grantId = run.identity!.grantId;
  const callId = toolCallId(run, step.index, action.tool, action.args);
  const call = await run.deadline.within(() =>
    run.tools.runToolSummarized(toolCallSummary(action.tool, action.args))({
      ...treeOf(run),
      workflowId: run.workflowId,
      stepIndex: step.index,
      callId,
      grantId,
      maxCredentialTtlMs: run.tools.activityTimeoutMs,
      task: run.task,
      tool: action.tool,
      args: resolvedArgs ?? action.args,
      ...(resolvedArgs === undefined ? {} : { pathsResolved: true }),
      ...(action.callId === undefined ? {} : { modelCallId: action.callId }),
    }),
  );
  step.output = call.output;
  step.credential = call.credential;
  run.saga.registerToolCall(action.tool, step.index, callId, action.args, call.output);
  run.policyState = recordExecution(run.policyState, policyRequest, { status: 'ok' }, { retainMs: POLICY_RETAIN_MS });
}
