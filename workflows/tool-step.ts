/**
 * Runs a granted tool call as an activity in the sandbox, under a credential minted for exactly
 * this call, and registers how to undo it. The sandbox host decides every capability call the
 * tool makes with the task's policy engine before it applies: an effect held for approval comes
 * back measured, a human decides on exactly that effect, and the call runs again with the
 * approval bound to it (its earlier SQL is applied once, by call id); a refused effect refuses
 * the step.
 */
import { networkEffectsOf } from '../monitoring/action-features';
import type { EgressWatch } from '../monitoring/egress-watch';
import { recordExecution } from '../policies/engine/policy-state';
import { callKeyOf } from '../recovery/call-key';
import { SANDBOX_ANSWER_BOUND_PAST_CANCEL_MS } from '../sandbox/liveness-bounds';
import type { PolicyRequest } from '../policies/engine/policy-request';
import type { StepEffect, StepError, StepRecord, ToolAction } from '../task/task-run';
import { ActivityFailure, ApplicationFailure, CancellationScope, CancelledFailure, isCancellation } from '@temporalio/workflow';
import type { ToolCallResult, ToolPolicyContext, ToolStepResult } from '../activities/run-tool';
import type { FailedCallEffect } from '../activities/call-outcome';
import { callLimitMs, resolveTool } from '../tools/tool-catalog';
import { resolvedAnnotations } from '../tools/tool-descriptor';
import { treeOf, type AgentRun } from './agent-run';
import { refuseStep, refuseUnapproved, type GuardedStep } from './guard-action';
import { TaskEnded } from './task-ended';
import { assertFits, DATA_PLANE_HEARTBEAT_MS, type CallTimeouts, type TaskFlow } from './task-flow';
import { jsonBytes } from '../task/data-flow';
import { approvalSummary, modelTurnSummary, toolCallSummary } from './ui-summaries';

/** How long policy counters remember calls (rates look back at most a day). */
const POLICY_RETAIN_MS = 24 * 3_600_000;
/** Effects of one step a human may be asked about, one after another, before the step is refused. */
const MAX_EFFECT_HOLDS = 5;

export { CALL_KEY_PATCH } from './workflow-patches';

/**
 * The call's idempotency key: a retried activity applies its effects once; another run under
 * the same workflow id, or another call at the same step, gets its own (recovery/call-key.ts).
 */
export function toolCallId(run: AgentRun, stepIndex: number, tool: string, args: Record<string, unknown>): string {
  if (!run.patches.callKeys) return `${run.workflowId}:${stepIndex}`;
  return callKeyOf({ workflowId: run.workflowId, runId: run.runId, stepIndex, tool, args });
}

type Matched = { id: string; sentence: string; effect: string; reason: string };

/**
 * Runs the call to its end. Returns false when the policy gate refused it (the step is then
 * refused). `resolvedArgs` (a built-in fs call) carry the path the policy judged; the call then
 * opens exactly that path and follows no link. On the data flow the call goes to the data plane
 * and, with `foldNextTurn` (the turn's last action), brings the model's next turn back with it.
 */
export async function runToolStep(run: AgentRun, action: ToolAction, guarded: GuardedStep, foldNextTurn = false): Promise<boolean> {
  const { step, policyRequest, approvedRules, resolvedArgs } = guarded;
  // On the data flow (no sub-agents, whose stricter rates would read the parent's older calls)
  // recent calls are kept only as long as a rule of the task can read them: the policy state
  // every call carries stays bounded instead of growing with every step (history linear).
  const retainMs = run.flow !== undefined && guarded.rateWindowMs !== undefined ? guarded.rateWindowMs : POLICY_RETAIN_MS;
  const callId = toolCallId(run, step.index, action.tool, action.args);
  const descriptor = resolveTool(run.task, action.tool);
  const builtin = descriptor?.executor.kind === 'builtin';
  const approvedEffects: string[] = [];
  // A built-in's one request is the step the monitor already scored: only other tools get a watch.
  const egressWatch = builtin ? undefined : run.monitor.egressWatch(run, step);
  // Whether an earlier hold of this step registered the call's undo (older runs: any earlier hold did).
  let registered = false;
  for (let hold = 1; ; hold += 1) {
    const policy: ToolPolicyContext = {
      state: run.policyState,
      agent: policyRequest.agent,
      now: policyRequest.now,
      argSources: policyRequest.provenance,
      ...(run.seed === undefined ? {} : { seed: run.seed }),
      approvedRules,
      approvedEffects: [...approvedEffects],
    };
    const flow = run.flow;
    // How this step will be counted, for the call that decides ahead on the next turn's first action.
    const ahead = run.patches.policyPrecheck ? { request: policyRequest, retainMs, countEffects: !builtin } : undefined;
    // Set once the call's activity is scheduled: from then on it may have had effects, however it ends.
    let started = false;
    const starting = <F>(activity: F): F => {
      started = !CancellationScope.current().consideredCancelled;
      return activity;
    };
    // The activity's own failure, which says what its tool did (call-outcome.ts): a cancel or the
    // deadline reaches the loop as the task's end, the call's failure settling behind it.
    let callFailure: unknown;
    const watched = <T>(call: Promise<T>): Promise<T> =>
      run.patches.undoWhatRan
        ? call.catch((error: unknown) => {
            callFailure = error;
            throw error;
          })
        : call;
    let call: ToolCallResult | ToolStepResult;
    try {
      // In its own scope (calls-in-flight.ts): a block cancels it, and a cancelled call settles once its program is dead.
      call = flow !== undefined ? await runFlowCall(run, flow, action, step, callId, resolvedArgs, policy, foldNextTurn, egressWatch, ahead, starting, watched) : await recordingWrites(run, () => run.affinity.loop((on) => run.deadline.within(() => run.calls.run(() =>
        watched(starting(run.tools.runToolSummarized(toolCallSummary(action.tool, action.args), on))({
          ...callFields(run, step, callId, action, resolvedArgs, policy, egressWatch),
          task: run.activityTask,
          // The call reports the files it wrote, for the commit's proof.
          ...(run.patches.commitProof ? { reportWrites: true } : {}),
          // A large output reaches history as its claim check (the policy checks, the model and the client read the value).
          ...(run.patches.claimCheckOutputs ? { claimCheckOutput: true } : {}),
        }))),
      run.calls.enabled), () => lostMidCall(run, action, step, callId)));
    } catch (error) {
      // Failed, cancelled, timed out or cut short by the task's end: what it did is undone all the same.
      if (started && run.patches.undoEndedCalls) ranUnfinished(run, action, step, callId, run.patches.undoWhatRan ? registered : hold > 1, error, callFailure);
      // What it did before it failed counts as a completed call's does (a block ends the task here).
      if (run.patches.countFailedCalls && callFailure !== undefined && !(error instanceof TaskEnded) && !isCancellation(error)) await countFailedCall(run, step, policyRequest, callFailure, builtin, retainMs);
      throw error;
    }
    step.credential = call.credential;
    // A user tool's own capability calls count like calls of those capabilities (a built-in's one call is the step).
    const effects = call.effects ?? [];
    if (!builtin) for (const e of effects) run.policyState = recordExecution(run.policyState, e.request as PolicyRequest, { status: 'ok' }, { retainMs });
    if (effects.length > 0) step.effects = [...(step.effects ?? []), ...effects.map(stepEffectOf)];
    // What a program or MCP server did through the egress proxy, in the same vocabulary.
    if (call.egress !== undefined && call.egress.length > 0) step.effects = [...(step.effects ?? []), ...call.egress];
    const stopped = call.held ?? call.denied;
    // A stopped call's writes were taken back out of the overlay: the record says so (a later approved run replaces this).
    if (stopped !== undefined && call.undone !== undefined && call.undone.length > 0) step.undone = call.undone;
    else delete step.undone;
    // Every request the call made or tried, wherever it left, is scored (hosts, writes, bytes).
    const requests = networkEffectsOf([
      ...effects.map(stepEffectOf),
      ...(call.egress ?? []),
      ...(stopped === undefined ? [] : [{ tool: stopped.tool, effect: stopped.measured, decision: 'deny' }]),
    ]);
    if (stopped === undefined) {
      step.output = call.output;
      if (call.trust !== undefined) step.trust = call.trust;
      if (call.effect !== undefined) step.effect = call.effect;
      // It ran, whatever ends the task while the monitor reads it.
      if (run.patches.undoEndedCalls) step.executed = true;
      run.saga.registerToolCall(action.tool, step.index, callId, action.args, call.output);
      run.policyState = recordExecution(run.policyState, policyRequest, { status: 'ok', ...(call.effect === undefined ? {} : { effect: call.effect as never }) }, { retainMs });
      await run.monitor.network(run, step, requests);
      if (flow !== undefined) takeFoldedTurn(run, flow, call as ToolStepResult);
      return true;
    }
    // Stopped where the effect was measured: what ran before the stop (SQL applied by earlier calls of a user tool) stays undoable.
    // A tool in the isolate acts only through capability calls: stopped at its first, with none applied, it changed nothing (patch `warden-undo-what-ran`).
    const changedNothing = run.patches.undoWhatRan && isolated(descriptor) && effects.length === 0 && (call.egress ?? []).length === 0;
    if (!registered && !changedNothing) {
      run.saga.registerToolCall(action.tool, step.index, callId, action.args, undefined);
      registered = true;
    }
    if (step.policy !== undefined) {
      step.policy.applied = { decision: call.held === undefined ? 'deny' : 'approval', matched: stopped.matched.map((m: Matched) => ({ ...m })), tool: stopped.tool };
    }
    // The monitor sees the measured effect before a refusal or a wait for a human (a block ends the task here).
    await run.monitor.network(run, step, requests);
    await run.monitor.measured(run, step, stopped.measured as { rowsChanged?: unknown } | undefined);
    if (call.denied !== undefined || hold > MAX_EFFECT_HOLDS) {
      const rule = stopped.matched.find((m: Matched) => m.effect === 'deny') ?? stopped.matched[0];
      const why = call.denied !== undefined ? `${stopped.tool} denied by policy ${rule?.id ?? ''}: ${rule?.reason ?? ''}` : `more than ${MAX_EFFECT_HOLDS} effects of one call held for approval`;
      refuseStep(run, step, 'ERR_POLICY_DENIED', why);
      return false;
    }
    // The step's first hold is the step's approval; later ones are listed apart.
    const first = step.approval === undefined && step.effectApprovals === undefined;
    const approval = await run.approvals.hold({
      stepIndex: step.index,
      // A random id the worker made when the host stopped the call (recorded in history).
      ...(call.holdId === undefined ? {} : { requestId: call.holdId }),
      tool: action.tool,
      // The approver signs the action together with the digest of the measured effect.
      args: { ...action.args, effectDigest: stopped.digest },
      rules: stopped.matched.filter((m: Matched) => m.effect === 'approval').map((m: Matched) => `${m.id}: ${m.sentence}`),
      // What the host measured, in the shape every approval listing reads (rowsChanged...), and which capability.
      effect: { ...(typeof stopped.measured === 'object' && stopped.measured !== null ? (stopped.measured as Record<string, unknown>) : {}), tool: stopped.tool, ...(stopped.via === undefined ? {} : { via: stopped.via }) },
      // Named in the Temporal UI by the measured effect (`approval: sql.exec 42 rows`).
      summary: approvalSummary(stopped.tool, action.args, stopped.measured as Parameters<typeof approvalSummary>[2]),
      ...(descriptor === undefined
        ? {}
        : {
            descriptor: {
              executor: descriptor.executor.kind,
              families: [...descriptor.profile.families],
              hints: Object.entries(resolvedAnnotations(descriptor))
                .filter(([, on]) => on)
                .map(([hint]) => hint),
              undoable: descriptor.profile.undoable,
            },
          }),
    });
    if (first) step.approval = approval;
    else step.effectApprovals = [...(step.effectApprovals ?? []), approval];
    if (approval.status !== 'approved') {
      refuseUnapproved(run, step, approval, stopped.tool);
      return false;
    }
    approvedEffects.push(stopped.digest);
  }
}

/**
 * Counts, records and scores what a failed call did, from its failure's details
 * (activities/call-outcome.ts), as for a completed call: the call itself in the policy state
 * (status `error`: a call, no effect), each capability call a user tool's gate applied before it
 * failed (a built-in's one request is the step), and the requests its program or MCP server made
 * through the egress proxy; the measured requests are scored by the monitor. Only for the
 * activity's own failure while the task runs (never the task's end cutting it short), and not for
 * a call the activity vouches never started.
 */
async function countFailedCall(run: AgentRun, step: StepRecord, request: PolicyRequest, failure: unknown, builtin: boolean, retainMs: number): Promise<void> {
  if (callOutcomeOf(run, failure).notRun === true) return;
  run.policyState = recordExecution(run.policyState, request, { status: 'error' }, { retainMs });
  const details = firstDetailsOf(failure);
  const effects = appliedEffectsOf(details);
  if (!builtin) for (const e of effects) run.policyState = recordExecution(run.policyState, e.request as PolicyRequest, { status: 'ok' }, { retainMs });
  const recorded = [...effects.map(stepEffectOf), ...egressEffectsOf(details)];
  if (recorded.length === 0) return;
  step.effects = [...(step.effects ?? []), ...recorded];
  await run.monitor.network(run, step, networkEffectsOf(recorded));
}

/** The first details object of a call's failure (an ApplicationFailure's or a CancelledFailure's), or undefined. */
function firstDetailsOf(failure: unknown): Record<string, unknown> | undefined {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  const first = cause instanceof ApplicationFailure || cause instanceof CancelledFailure ? cause.details?.[0] : undefined;
  return typeof first === 'object' && first !== null && !Array.isArray(first) ? (first as Record<string, unknown>) : undefined;
}

// Only entries of the shapes the activity writes: anything else would fail the workflow task where it is read.
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const DECISIONS: ReadonlySet<unknown> = new Set(['allow', 'deny', 'approval']);

/** The capability calls a failed user tool's gate applied (activities/run-tool.ts `AppliedEffect`). */
function appliedEffectsOf(details: Record<string, unknown> | undefined): FailedCallEffect[] {
  const listed = details?.['effects'];
  if (!Array.isArray(listed)) return [];
  return listed.filter((e): e is FailedCallEffect => isObject(e) && isObject(e['request']) && typeof e['request']['tool'] === 'string' && isObject(e['request']['agent']) && DECISIONS.has(e['decision']) && Array.isArray(e['rules']));
}

/** The proxy's records of a failed program's or MCP server's requests (sandbox/os/egress-effects.ts). */
function egressEffectsOf(details: Record<string, unknown> | undefined): StepEffect[] {
  const listed = details?.['egress'];
  if (!Array.isArray(listed)) return [];
  return listed.filter((e): e is StepEffect => isObject(e) && e['tool'] === 'http.fetch' && isObject(e['effect']) && e['effect']['via'] === 'egress-proxy' && Array.isArray(e['effect']['urls']) && DECISIONS.has(e['decision']) && Array.isArray(e['rules']));
}

/** A tool run in the isolate (a built-in or a custom tool): every effect it has is a capability call the host's gate decides and reports. */
function isolated(descriptor: ReturnType<typeof resolveTool>): boolean {
  return descriptor !== undefined && (descriptor.executor.kind === 'builtin' || descriptor.executor.kind === 'isolate');
}

function stepEffectOf(e: { request: { tool: string; effect?: unknown }; decision: 'allow' | 'deny' | 'approval'; rules: string[]; shadow?: string[] }): StepEffect {
  return { tool: e.request.tool, effect: e.request.effect ?? null, decision: e.decision, rules: e.rules, ...(e.shadow === undefined || e.shadow.length === 0 ? {} : { shadow: e.shadow }) };
}

/** Room past a tool's own timeout for the credential, overlay and sandbox host start-up. */
const TOOL_MARGIN_MS = 10_000;
/** Room for a model turn folded into the call. */
const FOLDED_TURN_MS = 120_000;

/**
 * Room past the deadline for a data-flow call the worker stops there: the tool stopped (an MCP
 * server's cancel grace is 2 s, then the server is killed; an isolate's host is checked for
 * liveness after its cancel grace, and the call answered at the latest
 * SANDBOX_ANSWER_BOUND_PAST_CANCEL_MS after the cancel, sandbox/liveness-bounds.ts), its writes
 * undone and synced (30 s), the failure reported. A worker gone meanwhile is noticed by the heartbeat.
 */
const DEADLINE_STOP_MARGIN_MS = 30_000 + SANDBOX_ANSWER_BOUND_PAST_CANCEL_MS;

/** The tool call's activity timeouts: its own limit, plus a folded model turn. */
function toolCallTimeouts(run: AgentRun, fold: boolean): CallTimeouts {
  return {
    startToCloseMs: run.tools.activityTimeoutMs + (fold ? FOLDED_TURN_MS : 0),
    heartbeatMs: DATA_PLANE_HEARTBEAT_MS,
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
    deadline: true,
    ...(run.calls.enabled ? { waitCancelled: true } : {}),
    // The worker stops the call at the deadline (it gets `deadlineAt`): the server must not time it out first.
    ...(run.patches.flowCallDeadline ? { deadlineMarginMs: DEADLINE_STOP_MARGIN_MS } : {}),
  };
}

/**
 * The ordinary loop's call, with the files it wrote recorded for the commit's proof. Only a call
 * that completed wrote anything: one the gate stopped, or that failed, had its writes undone (if
 * any were left, the proof finds them: ERR_COMMIT_MISMATCH), as on the data flow.
 */
async function recordingWrites(run: AgentRun, call: () => Promise<ToolCallResult>): Promise<ToolCallResult> {
  const result = await call();
  if (run.patches.commitProof && result.held === undefined && result.denied === undefined) run.saga.recordWrites(result.writes);
  return result;
}

/**
 * A call whose activity was started and did not complete (patch `warden-undo-ended-calls`): it
 * ran, and what it did before it ended is undone with the rest. Its undo is registered here,
 * once (`registered`: an earlier hold of the step registered it; a lost data plane's
 * `lostMidCall` did, and said the call ran), before the error reaches the loop, whatever the
 * error is: the call's own failure, a cancel or the deadline ending the task (run-action.ts
 * records which). Each undo of a call that did nothing is a no-op: `sql-undo` and
 * `fs-overlay-undo` find nothing under its call id (`nothing-to-do`), an HTTP request or a tool
 * without a compensating tool is reported as possibly not undone. A compensating tool acts
 * whatever the call did, so it runs only if the call's start record says its tool started (patch
 * `warden-tool-undo-started`; older runs ran it, the original's output null, for any such call).
 */
function ranUnfinished(run: AgentRun, action: ToolAction, step: StepRecord, callId: string, registered: boolean, error: unknown, callFailure: unknown): void {
  if (step.executed) return;
  const outcome = run.patches.undoWhatRan ? callOutcomeOf(run, callFailure ?? error) : {};
  // Refused before its tool started (patch `warden-undo-what-ran`): nothing to undo, and its record says it did not run.
  if (outcome.notRun === true && !registered) {
    if (error instanceof TaskEnded || isCancellation(error)) step.error = endedBeforeRun(error);
    return;
  }
  step.executed = true;
  // Taken to have run, but nothing here proves its tool started: a compensating tool runs only on its start record (patch `warden-tool-undo-started`).
  if (!registered) run.saga.registerToolCall(action.tool, step.index, callId, action.args, undefined, true);
  // Stopped, but its tool was not confirmed stopped: its compensation still runs, and the task says it may not have undone it.
  if (outcome.stopUnconfirmed !== undefined) {
    run.saga.notUndoable.push(`#${step.index} ${action.tool}: ${outcome.stopUnconfirmed}`);
    run.saga.markUnconfirmed(callId);
  }
  // Cut short by the task's end: the record says so (a block's record, or a failure's, replaces it: run-action.ts).
  if (error instanceof TaskEnded || isCancellation(error)) step.error = endedWhileRunning(error);
}

/** The record of a call the task's end stopped before its tool started: nothing to undo. */
function endedBeforeRun(error: unknown): StepError {
  return { code: 'ERR_TOOL_CANCELLED', message: `cancelled before it ran: ${howTaskEnded(error)}` };
}

/** How the task's end reads in a call's record. */
function howTaskEnded(error: unknown): string {
  return error instanceof TaskEnded ? (error.status === 'timed_out' ? `the task timed out (${error.reason})` : `the task ended ${error.status} (${error.reason})`) : 'the task was cancelled';
}

/**
 * What a call's failure says its tool did (activities/call-outcome.ts): `notRun` when it was
 * refused before its tool started, `stopUnconfirmed` when it was stopped but may still complete.
 * Read from the activity's failure (an ApplicationFailure's or a CancelledFailure's first
 * details); anything else, the task's end included, says nothing (the call is taken to have run).
 *
 * Only the activity can vouch that its tool never started, and only on its first attempt (patch
 * `warden-not-run-vouched`): a cancel with no recorded start (`startedEventId` 0) is also what
 * Temporal records for a cancel in the backoff between two attempts, after earlier attempts ran,
 * and its details (`ACTIVITY_ID_NOT_STARTED`) are the same either way; such a call is taken to
 * have run, and its undo finds nothing to undo if it did not. Its compensating tool, which would
 * act all the same, asks the call's start record first (patch `warden-tool-undo-started`).
 */
function callOutcomeOf(run: AgentRun, error: unknown): { notRun?: boolean; stopUnconfirmed?: string } {
  // Older runs: a cancel recorded with no start was taken for a call no worker started.
  if (!run.patches.notRunVouched && error instanceof ActivityFailure && error.cause instanceof CancelledFailure && startedEventIdOf(error) === 0) return { notRun: true };
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const details = cause instanceof ApplicationFailure || cause instanceof CancelledFailure ? cause.details : undefined;
  const first = (details?.[0] ?? {}) as { notRun?: unknown; stopUnconfirmed?: unknown };
  if (typeof first !== 'object' || first === null) return {};
  return {
    ...(first.notRun === true ? { notRun: true } : {}),
    ...(typeof first.stopUnconfirmed === 'string' ? { stopUnconfirmed: first.stopUnconfirmed } : {}),
  };
}

/** The history event id of the activity's start as its failure records it (0: never started), or undefined when it is not recorded. */
function startedEventIdOf(error: ActivityFailure): number | undefined {
  const id = (error.failure?.activityFailureInfo as { startedEventId?: { toString(): string } | number | null } | undefined)?.startedEventId;
  if (id === undefined || id === null) return undefined;
  const n = Number(id.toString());
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A failed call that was refused before its tool started (patch `warden-undo-what-ran`): no undo is
 * registered for it and its record says it did not run (run-action.ts).
 */
export function refusedBeforeRun(run: AgentRun, error: unknown): boolean {
  return run.patches.undoWhatRan && callOutcomeOf(run, error).notRun === true;
}

/** The record of a call the task's end cut short: it ran, and the saga undoes what it did. */
function endedWhileRunning(error: unknown): StepError {
  return { code: 'ERR_TOOL_CANCELLED', message: `cancelled while it ran: ${howTaskEnded(error)}; its effects, if any, are undone with the task's` };
}

/**
 * The worker holding the data plane died with this call scheduled or running: it may have changed
 * rows before it died (the journal is shared), so its undo is registered before the task ends. It
 * may as well never have started (a schedule-to-start timeout on the lost worker's queue says only
 * that the last attempt did not): its compensating tool runs only if the call's start record says
 * it started, and otherwise its record reads not run (patch `warden-tool-undo-started`, task-saga.ts).
 */
function lostMidCall(run: AgentRun, action: ToolAction, step: StepRecord, callId: string): void {
  step.error = { code: 'ERR_DATA_PLANE_LOST', message: run.affinity.lost ?? 'the data plane was lost' };
  step.executed = true;
  run.saga.registerToolCall(action.tool, step.index, callId, action.args, undefined, true);
}

/** The overlay paths a failed call wrote and the worker took back out (its failure's details), for the step record. */
export function undoneOfFailure(error: unknown): string[] {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (!(cause instanceof ApplicationFailure)) return [];
  const detail = (cause.details?.[0] ?? {}) as { undone?: unknown };
  return Array.isArray(detail.undone) && detail.undone.every((p) => typeof p === 'string') ? (detail.undone as string[]) : [];
}

/** What a tool call's activity gets on either loop, but for how it reaches the task (inline or by reference). */
function callFields(
  run: AgentRun,
  step: StepRecord,
  callId: string,
  action: ToolAction,
  resolvedArgs: Record<string, unknown> | undefined,
  policy: ToolPolicyContext,
  egressWatch: EgressWatch | undefined,
) {
  return {
    ...treeOf(run),
    workflowId: run.workflowId,
    stepIndex: step.index,
    callId,
    grantId: run.identity!.grantId,
    maxCredentialTtlMs: run.tools.credentialTtlCeilingMs,
    tool: action.tool,
    args: resolvedArgs ?? action.args,
    ...(resolvedArgs === undefined ? {} : { pathsResolved: true as const }),
    // The monitor's score goes into the call's custody record.
    ...(step.monitor === undefined ? {} : { monitor: { score: step.monitor.score, reasons: step.monitor.reasons.map((r) => `${r.signal}: ${r.detail}`) } }),
    ...(action.callId === undefined ? {} : { modelCallId: action.callId }),
    // Hosts the monitor holds are refused at the egress before they connect.
    ...(egressWatch === undefined ? {} : { egressWatch }),
    policy,
  };
}

/**
 * The data flow's tool call: on the data plane, the task by reference, the files written
 * reported, the host's policy gate as on the original loop, and (when this is the turn's last
 * action and the gate let it run) the model's next turn folded in: one workflow task and one
 * activity per step.
 */
async function runFlowCall(
  run: AgentRun,
  flow: TaskFlow,
  action: ToolAction,
  step: StepRecord,
  callId: string,
  resolvedArgs: Record<string, unknown> | undefined,
  policy: ToolPolicyContext,
  fold: boolean,
  egressWatch: EgressWatch | undefined,
  ahead: { request: PolicyRequest; retainMs: number; countEffects: boolean } | undefined,
  starting: <F>(activity: F) => F,
  watched: <T>(call: Promise<T>) => Promise<T>,
): Promise<ToolStepResult> {
  assertFits(action.args, `the arguments of step #${step.index} (${action.tool})`);
  const policyAhead = ahead === undefined ? {} : { policy: { depth: run.depth, chain: [...run.agentChain], ...(run.seed === undefined ? {} : { seed: run.seed }), ...ahead } };
  const next = fold ? { turn: run.state.turn, transcript: flow.transcript(run), ...policyAhead } : undefined;
  // Read at each attempt: a take-over (task-flow.ts) gives the task a new grant and task reference.
  const fields = () => ({
    ...callFields(run, step, callId, action, resolvedArgs, policy, egressWatch),
    taskRef: flow.taskRef!,
    ...(next === undefined ? {} : { next }),
    // The worker stops the tool at the deadline, and the call fails then (patch `warden-flow-call-deadline`).
    ...(run.patches.flowCallDeadline ? { deadlineAt: run.deadline.deadlineAt } : {}),
  });
  // The model's next turn comes back with the call: the UI says so.
  const summary = fold ? `${toolCallSummary(action.tool, action.args)}, then ${modelTurnSummary(run.task, run.state.turn)}` : toolCallSummary(action.tool, action.args);
  let call: ToolStepResult;
  if (runsLocally(run, flow, action.tool, fold)) {
    // One attempt: a retry would wait in the run's lane, and a kill with it.
    const timeouts = { ...toolCallTimeouts(run, fold), retry: { maximumAttempts: 1 } };
    try {
      call = await flow.callHere(run, timeouts, 'rebuild', (a, onWorker) => run.calls.run(() => watched(starting(a.runTool)({ ...fields(), ...(onWorker === undefined ? {} : { onWorker }) }))), summary);
    } catch (error) {
      // Its failure's marker reaches history with the chain's: it ends the chain (the next call goes through the queue).
      flow.localRun = { calls: flow.localRun.calls + 1, bytes: flow.localRun.bytes, ms: LOCAL_RUN_MAX_MS };
      throw error;
    }
    // A call that went to the queue instead (another worker ran the workflow task) reports no time: it ended the chain.
    if (call.ranMs === undefined) flow.endChain();
    else flow.localRun = { calls: flow.localRun.calls + 1, bytes: flow.localRun.bytes + jsonBytes(call), ms: flow.localRun.ms + call.ranMs };
  } else {
    try {
      call = await flow.call(run, toolCallTimeouts(run, fold), 'rebuild', (a) => run.calls.run(() => watched(starting(a.runTool)(fields()))), summary);
    } finally {
      // However it ended, a call through the queue ended the workflow task: a new chain may start.
      flow.endChain();
    }
  }
  // Only a call that completed wrote anything: one the gate stopped, or that failed, had its
  // writes undone, and if any were left the commit proof must find them (ERR_COMMIT_MISMATCH),
  // never count them as written.
  if (call.held === undefined && call.denied === undefined) flow.recordWrites(call.writes);
  return call;
}

/** A pure tool's time limit up to which its call may run as a local activity (`runsLocally`). */
export const LOCAL_CALL_LIMIT_MS = 5_000;
/**
 * Local calls in a row, and the bytes of their results, after which the next call goes through
 * the queue: the markers of a workflow task's local activities are sent together when it
 * completes, and the run's history figures (continue-as-new) are read as that task started.
 */
export const LOCAL_RUN_MAX_CALLS = 32;
export const LOCAL_RUN_MAX_BYTES = 256 * 1024;
/** The time (ms, the calls' own measure) a chain of local calls may take before the next goes through the queue: how late a kill may reach the run. */
export const LOCAL_RUN_MAX_MS = 1_000;

/**
 * True when this call runs as a local activity on the data plane's worker (patch
 * `warden-local-pure-calls`): its tool is pure (an isolate tool with no capability: it can only
 * compute on its input, so it has no effect to apply once, undo, hold or watch) and short (its
 * time limit at most LOCAL_CALL_LIMIT_MS: a kill's or a block's local activity waits behind it in
 * the run's lane, local-lane.ts, no longer than that), and a turn folded in is computed there too
 * (a scripted model; a model reached over the network is never awaited inside the lane).
 *
 * A chain of local calls runs inside one workflow task: a kill (an Update) or a block reaches the
 * run only when that task completes. So a chain is bounded, LOCAL_RUN_MAX_CALLS calls,
 * LOCAL_RUN_MAX_BYTES of results or LOCAL_RUN_MAX_MS of the calls' time, after which the next call
 * goes through the queue; a local call that fails ends the chain too (its failure is in history as
 * well); and a task whose last calls were local ends that workflow task before it completes
 * (agent-task-flow.ts), so a kill sent during the chain still stops the commit. A local call has
 * one attempt (a retry would wait in the lane, and a kill behind it): a pure tool's failure is the
 * step's.
 */
function runsLocally(run: AgentRun, flow: TaskFlow, tool: string, fold: boolean): boolean {
  if (!run.patches.localPureCalls) return false;
  if (flow.localRun.calls >= LOCAL_RUN_MAX_CALLS || flow.localRun.bytes >= LOCAL_RUN_MAX_BYTES || flow.localRun.ms >= LOCAL_RUN_MAX_MS) return false;
  if (fold && run.task.agent.model.driver !== 'scripted') return false;
  const descriptor = resolveTool(run.task, tool);
  if (descriptor === undefined || descriptor.executor.kind !== 'isolate' || descriptor.capabilities.length > 0) return false;
  return callLimitMs(run.task, descriptor) <= LOCAL_CALL_LIMIT_MS;
}

/** The model's next turn the call brought back, for the loop to act on (agent-task-flow.ts). */
function takeFoldedTurn(run: AgentRun, flow: TaskFlow, call: ToolStepResult): void {
  if (call.next === undefined || !('turn' in call.next)) return;
  flow.transcriptAppended(run, call.next.transcriptRef);
  flow.foldedTurn = { turn: run.state.turn, modelTurn: call.next.turn };
  flow.holdPolicyCheck(call.next.turn.actions[0], call.next.policy);
}
