/**
 * The agent loop as a Temporal workflow. The model is asked for its next actions through an
 * activity (its output is nondeterministic, so it is recorded in history), every proposed action
 * is checked here before anything runs, tools run as activities in the sandbox, and sub-agents
 * run as child workflows under a task derived from (and never wider than) this one.
 *
 * Deterministic code only: no Node APIs, no clocks but the workflow's, no I/O.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  executeChild,
  isCancellation,
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import { checkSpawnAction, checkToolAction, type ActionCheck } from '../permissions/check-action';
import { deriveSubagentTask } from '../permissions/derive-subagent-task';
import { durationToMs } from '../task/duration';
import type { Action, AgentTaskInput, ModelTurn, StepApproval, StepError, StepRecord, TaskIdentity, TaskRecovery, TaskResult, TaskState, TaskStatus } from '../task/task-run';
import { compensationFor, overlayCompensation, type Compensation } from '../recovery/compensation';
import type { Task } from '../task/task-schema';
import { approvalSignal, taskStateQuery, type ApprovalDecision } from './definitions';
import { emptyPolicyState, mergePolicyStates, recordExecution, type PolicyState } from '../policies/engine/policy-state';
import type { ErrorCode } from '../errors';

const { proposeTurn, beginTask, delegateGrant } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
});

const { endTask } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  // Revocation must happen: keep retrying well past transient failures.
  retry: { maximumAttempts: 20, initialInterval: '1s', maximumInterval: '10s' },
});

/** Policy decisions run as local activities: fast, and recorded in history like any result. */
const { checkPolicy } = proxyLocalActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

/** How long policy counters remember calls (rates look back at most a day). */
const POLICY_RETAIN_MS = 24 * 3_600_000;

const { prepareTask, commitTask, compensate, restorePreTaskSnapshot } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '5 minutes',
  // Recovery is idempotent and must finish: retry through transient failures.
  retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '30s' },
});

/** Delegation refusals: recorded as a denied spawn, after which the parent goes on. */
const DELEGATION_REFUSALS = ['ERR_DELEGATION_WIDENS', 'ERR_DELEGATION_EXPIRY', 'ERR_DELEGATION_DEPTH'];

/** Room past a tool's own timeout for the credential, overlay and sandbox host start-up. */
const TOOL_ACTIVITY_MARGIN_MS = 10_000;

/** Activity stub for tool calls; its timeout follows the task's per-call limit. */
function toolActivities(task: Task) {
  // The sandbox enforces the real limit; this is the backstop if a worker dies mid-call, and how
  // soon another worker retries the call (idempotently, by call id).
  const activityTimeoutMs = durationToMs(task.limits.toolTimeout) + TOOL_ACTIVITY_MARGIN_MS;
  const { runTool } = proxyActivities<WardenActivities>({
    startToCloseTimeout: activityTimeoutMs,
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
  });
  return { runTool, activityTimeoutMs };
}

/** Error code and message out of an activity or child failure, as recorded in a step. */
function stepErrorOf(error: unknown): StepError {
  const cause = error instanceof ActivityFailure || error instanceof ChildWorkflowFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) {
    return { code: cause.type ?? 'ERR_UNKNOWN', message: cause.message };
  }
  if (cause instanceof Error) return { code: 'ERR_UNKNOWN', message: cause.message };
  return { code: 'ERR_UNKNOWN', message: String(cause) };
}

class TaskEnded extends Error {
  constructor(
    readonly status: TaskStatus,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function agentTask(rawInput: AgentTaskInput): Promise<TaskResult> {
  const input = { depth: 0, lineage: [] as string[], ...rawInput };
  const { task, depth } = input;
  const info = workflowInfo();
  const startedAt = Date.now();
  const ownDeadline = startedAt + durationToMs(task.limits.deadline);
  const deadlineAt = input.deadlineAt === undefined ? ownDeadline : Math.min(ownDeadline, input.deadlineAt);
  const { runTool, activityTimeoutMs } = toolActivities(task);
  let identity: TaskIdentity | undefined = input.identity;
  const rootWorkflowId = input.lineage[0] ?? info.workflowId;
  const isRoot = input.lineage.length === 0;
  /** The saga: how to undo each effect so far, oldest first. */
  const compensations: Compensation[] = [];
  const notUndoable: string[] = [];
  let snapshotTaken = false;

  /** Registers how to undo one tool call (also a failed one: it may have changed rows before failing). */
  const registerUndo = (tool: string, stepIndex: number, args: Record<string, unknown>, output: unknown) => {
    const custom = task.tools.custom.find((t) => t.name === tool);
    const plan = compensationFor(tool, output, {
      callId: `${info.workflowId}:${stepIndex}`,
      args,
      journaled: true,
      ...(custom === undefined ? {} : { capabilities: custom.capabilities, ...(custom.compensate === undefined ? {} : { compensate: custom.compensate }) }),
    });
    compensations.push(...plan.compensations);
    if (!plan.undoable) notUndoable.push(`#${stepIndex} ${tool}: ${plan.note}`);
  };

  const state: TaskState = {
    workflowId: info.workflowId,
    agent: task.agent.name,
    model: { id: task.agent.model.id, version: task.agent.model.version },
    depth,
    status: 'running',
    steps: [],
    children: [],
    final: null,
    turn: 0,
    pendingApprovals: [],
  };
  setHandler(taskStateQuery, () => state);
  const approvals = new Map<string, ApprovalDecision>();
  setHandler(approvalSignal, (decision) => {
    // The first decision counts; later ones for the same request are ignored.
    if (!approvals.has(decision.requestId)) approvals.set(decision.requestId, decision);
  });
  let policyState: PolicyState = (input.policyState as PolicyState | undefined) ?? emptyPolicyState();
  const agentChain = [...input.lineage.map((id) => id.split('/').pop()!.replace(/-\d+$/, '')), task.agent.name].slice(0, -1);

  const record = (action: Action & { type: 'tool' | 'spawn' }, turn: number, check: ActionCheck, began: number): StepRecord => {
    const step: StepRecord = {
      index: state.steps.length,
      turn,
      kind: action.type,
      tool: action.type === 'tool' ? action.tool : `spawn:${action.subagent}`,
      args: action.type === 'tool' ? action.args : { subagent: action.subagent, ...(action.intent === undefined ? {} : { intent: action.intent }) },
      ...(action.callId === undefined ? {} : { callId: action.callId }),
      decision: check.decision,
      reason: check.reason,
      executed: false,
      startedAt: new Date(began).toISOString(),
      durationMs: 0,
    };
    state.steps.push(step);
    return step;
  };

  const remainingMs = () => deadlineAt - Date.now();

  /** Runs an operation under the task deadline: when the deadline wins, the operation is cancelled. */
  const withinDeadline = async <T>(operation: () => Promise<T>): Promise<T> => {
    const ms = remainingMs();
    const timedOut = () => new TaskEnded('timed_out', `deadline of ${task.limits.deadline} exceeded`);
    if (ms <= 0) throw timedOut();
    const scope = new CancellationScope();
    let expired = false;
    try {
      return await scope.run(() =>
        Promise.race([
          operation(),
          sleep(ms).then(() => {
            expired = true;
            throw timedOut();
          }),
        ]),
      );
    } catch (error) {
      if (expired) throw timedOut();
      throw error;
    } finally {
      scope.cancel();
    }
  };

  /** Holds a step until a human decides (signal) or the approval timeout (or the deadline) passes. */
  const awaitApproval = async (step: StepRecord, tool: string, args: Record<string, unknown>, rules: string[]): Promise<StepApproval> => {
    const requestId = `${step.index}`;
    const waitMs = Math.min(durationToMs(task.limits.approvalTimeout), Math.max(0, remainingMs()));
    state.pendingApprovals.push({
      requestId,
      tool,
      args,
      rules,
      requestedAt: new Date(Date.now()).toISOString(),
      expiresAt: new Date(Date.now() + waitMs).toISOString(),
    });
    try {
      const decided = await condition(() => approvals.has(requestId), waitMs);
      const decision = approvals.get(requestId);
      if (!decided || decision === undefined) {
        if (remainingMs() <= 0) throw new TaskEnded('timed_out', `deadline of ${task.limits.deadline} exceeded`);
        return { requestId, status: 'timed_out', decidedAt: new Date(Date.now()).toISOString() };
      }
      return {
        requestId,
        status: decision.approved ? 'approved' : 'denied',
        approver: decision.approver,
        ...(decision.reason === undefined ? {} : { reason: decision.reason }),
        decidedAt: new Date(Date.now()).toISOString(),
      };
    } finally {
      state.pendingApprovals = state.pendingApprovals.filter((p) => p.requestId !== requestId);
    }
  };

  const runAction = async (action: Action & { type: 'tool' | 'spawn' }, turn: number): Promise<void> => {
    const began = Date.now();
    const check = action.type === 'tool' ? checkToolAction(task, action) : checkSpawnAction(task, action, depth);
    const step = record(action, turn, check, began);
    if (check.decision === 'deny') {
      step.error = { code: check.code, message: check.reason };
      if (task.limits.onDeny === 'stop') throw new TaskEnded('denied', check.reason);
      return;
    }
    const policyTool = action.type === 'tool' ? action.tool : `spawn:${action.subagent}`;
    const policyArgs = action.type === 'tool' ? action.args : { intent: action.intent ?? task.subagents[action.subagent]?.intent ?? '' };
    // Not raced against the deadline timer: a local activity's marker is recorded after a timer
    // started in the same workflow task, which a replay from scratch cannot match. It is quick and
    // bounded by its own timeout instead.
    const { decision: verdict, request: policyRequest } = await checkPolicy({
      task,
      workflowId: info.workflowId,
      depth,
      chain: agentChain,
      tool: policyTool,
      args: policyArgs,
      priorOutputs: state.steps.filter((s) => s.executed && s.output !== undefined).map((s) => s.output),
      state: policyState,
      now: new Date(Date.now()).toISOString(),
    });
    step.policy = { decision: verdict.decision, matched: verdict.matched.map(({ id, sentence, effect, reason }) => ({ id, sentence, effect, reason })) };
    const refuse = (code: ErrorCode, reason: string): void => {
      step.decision = 'deny';
      step.reason = reason;
      step.error = { code, message: reason };
      if (task.limits.onDeny === 'stop') throw new TaskEnded('denied', reason);
    };
    if (verdict.decision === 'deny') {
      const rule = verdict.matched.find((m) => m.effect === 'deny');
      return refuse('ERR_POLICY_DENIED', `denied by policy ${rule?.id ?? ''}: ${rule?.reason ?? verdict.reasons.join('; ')}`);
    }
    if (verdict.decision === 'approval') {
      const approval = await awaitApproval(step, policyTool, policyArgs, verdict.matched.filter((m) => m.effect === 'approval').map((m) => `${m.id}: ${m.sentence}`));
      step.approval = approval;
      if (approval.status !== 'approved') {
        return refuse(
          approval.status === 'timed_out' ? 'ERR_APPROVAL_TIMEOUT' : 'ERR_APPROVAL_DENIED',
          approval.status === 'timed_out'
            ? `no approval within ${task.limits.approvalTimeout}`
            : `denied by ${approval.approver ?? 'an approver'}${approval.reason ? `: ${approval.reason}` : ''}`,
        );
      }
      step.reason = `approved by ${approval.approver}${approval.reason ? `: ${approval.reason}` : ''}`;
    }
    try {
      if (action.type === 'tool') {
        const grantId = identity!.grantId;
        const call = await withinDeadline(() =>
          runTool({
            rootWorkflowId,
            workflowId: info.workflowId,
            stepIndex: step.index,
            grantId,
            maxCredentialTtlMs: activityTimeoutMs,
            task,
            tool: action.tool,
            args: action.args,
          }),
        );
        step.output = call.output;
        step.credential = call.credential;
        registerUndo(action.tool, step.index, action.args, call.output);
        policyState = recordExecution(policyState, policyRequest, { status: 'ok' }, { retainMs: POLICY_RETAIN_MS });
      } else {
        const childTask = deriveSubagentTask(task, action.subagent, action.intent);
        const childId = `${info.workflowId}/${action.subagent}-${step.index}`;
        let childIdentity: TaskIdentity;
        try {
          childIdentity = await withinDeadline(() =>
            delegateGrant({ workflowId: childId, task: childTask, deadlineAt, parentGrantId: identity!.grantId }),
          );
        } catch (error) {
          const refusal = stepErrorOf(error);
          if (!DELEGATION_REFUSALS.includes(refusal.code)) throw error;
          step.decision = 'deny';
          step.reason = refusal.message;
          step.error = refusal;
          return;
        }
        const child = await withinDeadline(() =>
          executeChild(agentTask, {
            workflowId: childId,
            args: [{ task: childTask, depth: depth + 1, lineage: [...input.lineage, info.workflowId], deadlineAt, identity: childIdentity, policyState }],
          }),
        );
        const { compensations: childCompensations, policyState: childPolicyState, ...childResult } = child;
        if (childPolicyState !== undefined) policyState = mergePolicyStates(policyState, childPolicyState as PolicyState);
        state.children.push(childResult);
        if (child.status === 'completed') {
          compensations.push(...((childCompensations ?? []) as Compensation[]));
          notUndoable.push(...(child.recovery?.notUndoable ?? []).map((n) => `${action.subagent} ${n}`));
        }
        step.output = { status: child.status, final: child.final, ...(child.reason === undefined ? {} : { reason: child.reason }) };
        if (child.status !== 'completed') step.error = { code: 'ERR_SUBAGENT_FAILED', message: `sub-agent ${action.subagent} ended ${child.status}` };
      }
      step.executed = true;
    } catch (error) {
      if (error instanceof TaskEnded || isCancellation(error)) throw error;
      step.error = stepErrorOf(error);
      if (action.type === 'tool') registerUndo(action.tool, step.index, action.args, undefined);
      // The call ran (and failed) unless the failure says it never started.
      step.executed = true;
    } finally {
      step.durationMs = Date.now() - began;
    }
  };

  const finish = (status: TaskStatus, reason?: string): TaskResult => {
    state.status = status;
    return {
      workflowId: state.workflowId,
      runId: info.runId,
      agent: state.agent,
      model: state.model,
      depth,
      ...(identity === undefined ? {} : { identity }),
      status,
      ...(reason === undefined ? {} : { reason }),
      steps: state.steps,
      children: state.children,
      final: state.final,
    };
  };

  const result = await runLoop();
  result.recovery = await CancellationScope.nonCancellable(() => settleEffects(result));
  if (result.status === 'completed' && !isRoot) result.compensations = compensations;
  if (!isRoot) result.policyState = policyState;
  if (identity !== undefined) {
    const grantId = identity.grantId;
    // Ending the grant is part of ending the task, also when it was cancelled.
    await CancellationScope.nonCancellable(() => endTask({ grantId, status: result.status }));
  }
  return result;

  /**
   * Completed: the root commits the task tree's files (a sub-agent hands its compensations to its
   * parent instead). Anything else: every compensation runs, newest first; if something could not
   * be undone and a pre-task snapshot exists, the snapshot is restored.
   */
  async function settleEffects(result: TaskResult): Promise<TaskRecovery> {
    if (result.status === 'completed') {
      if (!isRoot) return { rolledBack: [], notUndoable };
      const { files } = await commitTask({ rootWorkflowId, task });
      return { committed: files, rolledBack: [], notUndoable };
    }
    const rolledBack: TaskRecovery['rolledBack'] = [];
    for (const compensation of [...compensations].reverse()) {
      const of = compensation.kind === 'fs-overlay-discard' ? {} : { forTool: compensation.forTool, callId: compensation.callId };
      try {
        const outcome = await compensate({ rootWorkflowId, task, compensation, ...(identity === undefined ? {} : { grantId: identity.grantId }) });
        rolledBack.push({ kind: outcome.kind, ...of, status: outcome.status, detail: outcome.detail });
      } catch (error) {
        const failure = stepErrorOf(error);
        rolledBack.push({ kind: compensation.kind, ...of, status: 'failed', detail: `${failure.code}: ${failure.message}` });
      }
    }
    const incomplete = notUndoable.length > 0 || rolledBack.some((r) => r.status === 'failed');
    if (isRoot && snapshotTaken && incomplete) {
      await restorePreTaskSnapshot({ rootWorkflowId, task });
      return { rolledBack, notUndoable, restoredSnapshot: true };
    }
    return { rolledBack, notUndoable };
  }

  async function runLoop(): Promise<TaskResult> {
    try {
      identity ??= await withinDeadline(() => beginTask({ workflowId: info.workflowId, task, deadlineAt }));
      if (isRoot) {
        const prepared = await withinDeadline(() => prepareTask({ rootWorkflowId, task }));
        snapshotTaken = prepared.snapshot;
        if (task.resources.workspace !== undefined) compensations.push(overlayCompensation(prepared.taskKey));
      }
      for (;;) {
        if (state.steps.length >= task.limits.maxSteps) {
          return finish('limit_exceeded', `step limit of ${task.limits.maxSteps} reached`);
        }
        const turn = state.turn;
        const modelTurn: ModelTurn = await withinDeadline(() =>
          proposeTurn({ task, turn, steps: state.steps, workflowId: info.workflowId }),
        );
        state.turn += 1;
        state.model = modelTurn.model;
        for (const action of modelTurn.actions) {
          if (action.type === 'final') {
            state.final = { answer: action.answer, claims: action.claims };
            return finish('completed');
          }
          if (state.steps.length >= task.limits.maxSteps) {
            return finish('limit_exceeded', `step limit of ${task.limits.maxSteps} reached`);
          }
          await runAction(action, turn);
        }
      }
    } catch (error) {
      if (error instanceof TaskEnded) return finish(error.status, error.reason);
      if (isCancellation(error)) return finish('cancelled', 'the task was cancelled');
      const failure = stepErrorOf(error);
      return finish('failed', `${failure.code}: ${failure.message}`);
    }
  }
}
