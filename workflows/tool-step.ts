/**
 * Runs a granted tool call as an activity in the sandbox, under a credential minted for exactly
 * this call, and registers how to undo it.
 */
import { recordExecution } from '../policies/engine/policy-state';
import type { PolicyRequest } from '../policies/engine/policy-request';
import type { StepRecord, ToolAction } from '../task/task-run';
import type { AgentRun } from './agent-run';

/** How long policy counters remember calls (rates look back at most a day). */
const POLICY_RETAIN_MS = 24 * 3_600_000;

/** The call's idempotency key: a retried activity applies its effects once. */
export function toolCallId(run: AgentRun, stepIndex: number): string {
  return `${run.workflowId}:${stepIndex}`;
}

export async function runToolStep(run: AgentRun, action: ToolAction, step: StepRecord, policyRequest: PolicyRequest): Promise<void> {
  const grantId = run.identity!.grantId;
  const call = await run.deadline.within(() =>
    run.tools.runTool({
      rootWorkflowId: run.rootWorkflowId,
      workflowId: run.workflowId,
      stepIndex: step.index,
      grantId,
      maxCredentialTtlMs: run.tools.activityTimeoutMs,
      task: run.task,
      tool: action.tool,
      args: action.args,
      // The monitor's score goes into the call's custody record.
      ...(step.monitor === undefined ? {} : { monitor: { score: step.monitor.score, reasons: step.monitor.reasons.map((r) => `${r.signal}: ${r.detail}`) } }),
    }),
  );
  step.output = call.output;
  step.credential = call.credential;
  run.saga.registerToolCall(action.tool, step.index, toolCallId(run, step.index), action.args, call.output);
  run.policyState = recordExecution(run.policyState, policyRequest, { status: 'ok' }, { retainMs: POLICY_RETAIN_MS });
}
