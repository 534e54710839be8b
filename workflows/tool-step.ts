/**
 * Runs a granted tool call as an activity in the sandbox, under a credential minted for exactly
 * this call, and registers how to undo it.
 */
import { recordExecution } from '../policies/engine/policy-state';
import { callKeyOf } from '../recovery/call-key';
import type { PolicyRequest } from '../policies/engine/policy-request';
import type { StepRecord, ToolAction } from '../task/task-run';
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { FileWriteSchema, type FileWrite } from '../task/data-flow';
import { treeOf, type AgentRun } from './agent-run';
import { assertFits, DATA_PLANE_HEARTBEAT_MS, type CallTimeouts, type TaskFlow } from './task-flow';
import { modelTurnSummary, toolCallSummary } from './ui-summaries';

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
 * then opens exactly that path and follows no link. On the data flow, `foldNextTurn` asks for
 * the model's next turn in the same activity.
 */
export async function runToolStep(
  run: AgentRun,
  action: ToolAction,
  step: StepRecord,
  policyRequest: PolicyRequest,
  resolvedArgs?: Record<string, unknown>,
  foldNextTurn = false,
): Promise<void> {
  if (run.flow !== undefined) return runFlowToolStep(run, run.flow, action, step, policyRequest, resolvedArgs, foldNextTurn);
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

/** Room past a tool's own timeout for the credential, overlay and sandbox host start-up. */
const TOOL_MARGIN_MS = 10_000;
/** Room for a model turn folded into the call. */
const FOLDED_TURN_MS = 120_000;

/** The tool call's activity timeouts: its own limit, plus a folded model turn. */
function toolCallTimeouts(run: AgentRun, fold: boolean): CallTimeouts {
  return {
    startToCloseMs: run.tools.activityTimeoutMs + (fold ? FOLDED_TURN_MS : 0),
    heartbeatMs: DATA_PLANE_HEARTBEAT_MS,
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
    deadline: true,
  };
}

/** Files a failed call reported writing (in its failure's details), so the commit check knows them. */
function writesOfFailure(error: unknown): FileWrite[] {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (!(cause instanceof ApplicationFailure)) return [];
  const detail = (cause.details?.[0] ?? {}) as { writes?: unknown };
  const parsed = FileWriteSchema.array().safeParse(detail.writes);
  return parsed.success ? parsed.data : [];
}

/**
 * The data flow's tool call: on the data plane, the task by reference, the files written
 * reported, and (when this is the turn's last action) the model's next turn folded in: one
 * workflow task and one activity per step.
 */
async function runFlowToolStep(
  run: AgentRun,
  flow: TaskFlow,
  action: ToolAction,
  step: StepRecord,
  policyRequest: PolicyRequest,
  resolvedArgs: Record<string, unknown> | undefined,
  fold: boolean,
): Promise<void> {
  assertFits(action.args, `the arguments of step #${step.index} (${action.tool})`);
  const callId = toolCallId(run, step.index, action.tool, action.args);
  const next = fold ? { turn: run.state.turn, transcript: flow.transcript(run), policy: { depth: run.depth, chain: [...run.agentChain] } } : undefined;
  let call;
  try {
    call = await flow.call(run, toolCallTimeouts(run, fold), 'rebuild', (a) =>
      a.runTool({
        ...treeOf(run),
        workflowId: run.workflowId,
        stepIndex: step.index,
        callId,
        grantId: run.identity!.grantId,
        maxCredentialTtlMs: run.tools.activityTimeoutMs,
        taskRef: flow.taskRef!,
        tool: action.tool,
        args: resolvedArgs ?? action.args,
        ...(resolvedArgs === undefined ? {} : { pathsResolved: true }),
        ...(action.callId === undefined ? {} : { modelCallId: action.callId }),
        ...(next === undefined ? {} : { next }),
      }),
      // The model's next turn comes back with the call: the UI says so.
      fold ? `${toolCallSummary(action.tool, action.args)}, then ${modelTurnSummary(run.task, run.state.turn)}` : toolCallSummary(action.tool, action.args),
    );
  } catch (error) {
    flow.recordWrites(writesOfFailure(error));
    throw error;
  }
  step.output = call.output;
  step.credential = call.credential;
  flow.recordWrites(call.writes);
  run.saga.registerToolCall(action.tool, step.index, callId, action.args, call.output);
  run.policyState = recordExecution(run.policyState, policyRequest, { status: 'ok' }, { retainMs: POLICY_RETAIN_MS });
  if (next !== undefined && call.next !== undefined && 'turn' in call.next) {
    flow.transcriptAppended(run, call.next.transcriptRef);
    flow.foldedTurn = { turn: next.turn, modelTurn: call.next.turn };
    flow.holdPolicyCheck(call.next.turn.actions[0], call.next.policy);
  }
}
