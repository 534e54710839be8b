/**
 * The guards every proposed action passes before it runs, in order: the grant check (in the
 * workflow, deterministic), the policy engine on the measured effect (a local activity), and a
 * human when the policy holds the action for approval. A refused action is recorded in its step;
 * with `onDeny: stop` it ends the task.
 */
import { checkSpawnAction, checkToolAction } from '../permissions/check-action';
import type { PolicyRequest } from '../policies/engine/policy-request';
import type { ProvenanceSeed } from '../policies/provenance-seed';
import type { CheckPolicyInput, PriorStep } from '../activities/check-policy';
import { mcpDescriptionsOf, policyInputDigest, precheckHolds } from '../policies/policy-precheck';
import type { ErrorCode } from '../errors';
import type { StepApproval, StepRecord } from '../task/task-run';
import { summarized } from './activity-stubs';
import { recordStep, type AgentRun, type StepAction } from './agent-run';
import { TaskEnded } from './task-ended';
import { approvalSummary, policyCheckSummary } from './ui-summaries';

/** A step the guards let through, with the policy request to count once it has run. */
export interface GuardedStep {
  step: StepRecord;
  policyRequest: PolicyRequest;
  /** A built-in fs call's arguments with the path the rules judged (resolved inside the workspace). */
  resolvedArgs?: Record<string, unknown>;
  /** Rules a human approved for this step (they carry over to a built-in's own call where it applies). */
  approvedRules: string[];
  /** For a spawn: the provenance the sub-agent starts from. */
  inherit?: ProvenanceSeed;
  /** The longest window of the task's rate rules (ms), when the policy check said (see tool-step.ts). */
  rateWindowMs?: number;
  /** The rules allowed it and the task's grants refuse it (the policy check said so): its tool refuses it at once, and nothing holds it first. */
  grantRefused?: { code: string; reason: string };
}

/** Marks the step refused; ends the task when the task stops on a denial. */
export function refuseStep(run: AgentRun, step: StepRecord, code: ErrorCode | string, reason: string): void {
  step.decision = 'deny';
  step.reason = reason;
  step.error = { code, message: reason };
  if (run.task.limits.onDeny === 'stop') throw new TaskEnded('denied', reason);
}

/** Refuses a step whose approval was not given (denied, timed out or withdrawn); `held` names what was held when it is not the step's own call. */
export function refuseUnapproved(run: AgentRun, step: StepRecord, approval: StepApproval, held?: string): void {
  const timedOut = approval.status === 'timed_out';
  if (approval.status === 'withdrawn') {
    // Nobody refused it, so `onDeny: stop` does not apply: the session that asked is ending anyway.
    const reason = `withdrawn before anyone decided${held === undefined ? '' : ` on ${held}`}: ${approval.reason ?? 'the session ended'}`;
    step.decision = 'deny';
    step.reason = reason;
    step.error = { code: 'ERR_APPROVAL_WITHDRAWN', message: reason };
    return;
  }
  refuseStep(
    run,
    step,
    timedOut ? 'ERR_APPROVAL_TIMEOUT' : 'ERR_APPROVAL_DENIED',
    timedOut
      ? `no approval within ${run.task.limits.approvalTimeout}${held === undefined ? '' : ` for ${held}`}`
      : `${held === undefined ? '' : `${held} `}denied by ${approval.approver ?? 'an approver'}${approval.reason ? `: ${approval.reason}` : ''}`,
  );
}

/**
 * The earlier outputs a policy check reads, each once: in `priorSteps`, with its trust label
 * (what the user gave is trusted data, everything else untrusted; MCP servers' tool descriptions
 * are their words, untrusted like any tool output). `priorOutputs` stays empty: the check reads
 * `priorSteps` instead whenever it is given (activities/check-policy.ts `outputsByTrust`), and
 * sending both carried every output twice into every check.
 */
export function earlierOutputsOf(mcpDescriptions: readonly string[], steps: readonly StepRecord[]): { priorOutputs: unknown[]; priorSteps: PriorStep[] } {
  return {
    priorOutputs: [],
    priorSteps: [
      ...mcpDescriptions.map((output) => ({ output })),
      ...steps.filter((s) => s.executed && s.output !== undefined).map((s) => ({ output: s.output, ...(s.trust === undefined ? {} : { trust: s.trust }) })),
    ],
  };
}

/** Records the action as a step and runs it past every guard; undefined when it must not run. */
export async function guardAction(run: AgentRun, action: StepAction, turn: number, began: number): Promise<GuardedStep | undefined> {
  const { task } = run;
  const check = action.type === 'tool' ? checkToolAction(task, action) : checkSpawnAction(task, action, run.depth);
  const step = recordStep(run, action, turn, check, began);
  if (check.decision === 'deny') {
    refuseStep(run, step, check.code, check.reason);
    return undefined;
  }
  const policyTool = action.type === 'tool' ? action.tool : `spawn:${action.subagent}`;
  const policyArgs = action.type === 'tool' ? action.args : { intent: action.intent ?? task.subagents[action.subagent]?.intent ?? '' };
  // Not raced against the deadline timer: a local activity's marker is recorded after a timer
  // started in the same workflow task, which a replay from scratch cannot match. It is quick and
  // bounded by its own timeout instead.
  // On the data flow the activity that brought this action may have decided on it already
  // (policies/policy-precheck.ts): used only when this check's own inputs digest the same at a
  // time the decision holds for. Runs before `warden-policy-precheck` use a decision brought
  // along as it is (histories recorded around b10ff98 only: their calls decided without a digest).
  const held = action.type === 'tool' ? run.flow?.takePolicyCheck(action) : undefined;
  const legacy = run.patches.policyPrecheck ? undefined : held;
  // On the data flow earlier steps (earlier runs' too) are in the transcript: sent by its head.
  const transcript = legacy === undefined ? run.flow?.transcript(run) : undefined;
  const earlierSteps = transcript?.pending ?? run.state.steps;
  const nowMs = Date.now();
  const input: CheckPolicyInput = {
    task: run.activityTask,
    workflowId: run.workflowId,
    depth: run.depth,
    chain: [...run.agentChain],
    tool: policyTool,
    args: policyArgs,
    // MCP descriptions the workflow sends itself (older runs; newer ones send their lists by digest).
    ...earlierOutputsOf(mcpDescriptionsOf(run.activityTask.tools, run.task.tools), earlierSteps),
    ...(transcript === undefined || transcript.ref === null ? {} : { priorOutputsRef: transcript.ref }),
    ...(run.seed === undefined ? {} : { seed: run.seed }),
    state: run.policyState,
    now: new Date(nowMs).toISOString(),
  };
  const ahead = legacy === undefined && held?.precheck !== undefined && run.flow !== undefined && precheckHolds(held.precheck, policyInputDigest({ ...input, taskDigest: run.flow.taskDigest(input.task) }), nowMs) ? { ...held, request: { ...held.request, now: input.now } } : undefined;
  const { decision: verdict, request: policyRequest, approvalRequestId, resolvedArgs, inherit, rateWindowMs, grantRefused } = legacy ?? ahead ?? await run.monitor.lane.run(() => summarized.checkPolicy(policyCheckSummary(policyTool, policyArgs))(input));
  const inStep = (m: { id: string; sentence: string; effect: string; reason: string }) => ({ id: m.id, sentence: m.sentence, effect: m.effect, reason: m.reason });
  step.policy = {
    decision: verdict.decision,
    matched: verdict.matched.map(inStep),
    // Shadow rules: what they would have decided is recorded, nothing is held or denied for them.
    ...(verdict.shadow === undefined ? {} : { shadow: { decision: verdict.shadow.decision, matched: verdict.shadow.matched.map(inStep) } }),
  };
  // Scored on the measured effect before anything waits or runs: a block stops it here (monitor-step.ts).
  await run.monitor.observe(run, action, step, policyRequest);
  if (verdict.decision === 'deny') {
    const rule = verdict.matched.find((m) => m.effect === 'deny');
    refuseStep(run, step, 'ERR_POLICY_DENIED', `denied by policy ${rule?.id ?? ''}: ${rule?.reason ?? verdict.reasons.join('; ')}`);
    return undefined;
  }
  if (verdict.decision === 'approval') {
    const approval = await run.approvals.hold({
      stepIndex: step.index,
      ...(approvalRequestId === undefined ? {} : { requestId: approvalRequestId }),
      tool: policyTool,
      args: policyArgs,
      rules: verdict.matched.filter((m) => m.effect === 'approval').map((m) => `${m.id}: ${m.sentence}`),
      ...(policyRequest.effect === undefined ? {} : { effect: { ...policyRequest.effect } }),
      summary: approvalSummary(policyTool, policyArgs, policyRequest.effect),
    });
    step.approval = approval;
    if (approval.status !== 'approved') {
      refuseUnapproved(run, step, approval);
      return undefined;
    }
    step.reason = `approved by ${approval.approver}${approval.reason ? `: ${approval.reason}` : ''}`;
  }
  const approvedRules = verdict.decision === 'approval' ? verdict.matched.filter((m) => m.effect === 'approval').map((m) => m.id) : [];
  return { step, policyRequest, approvedRules, ...(resolvedArgs === undefined ? {} : { resolvedArgs }), ...(inherit === undefined ? {} : { inherit }), ...(rateWindowMs === undefined ? {} : { rateWindowMs }), ...(grantRefused === undefined ? {} : { grantRefused }) };
}
