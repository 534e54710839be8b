/**
 * Holds an action the policy engine sent for approval until a registered approver decides, the
 * approval timeout passes, or the task's deadline does. Pending requests are visible in the
 * task's state (`warden approvals`) while they wait.
 *
 * Invariants (tasks started since approvals became an Update):
 *  - a decision is the `warden.decideApproval` Update; its validator rejects any request id that
 *    is not pending at that moment, so nothing is stored for a step that does not exist yet, has
 *    been decided, or has timed out;
 *  - request ids are random (made by the policy check, recorded in history), not step numbers;
 *  - a decision counts only after `verifyApproval` (an activity) has checked the approver's
 *    signature over this run, this request, this action and this verdict; a failed check fails
 *    the Update and the request stays pending;
 *  - the first verified decision wins; the approver's name and key id are recorded in the step.
 *
 * People notice: each pending request carries the effect Warden measured (`warden approvals`,
 * `warden run`), and each hold and each decision is announced through the `notifyApproval`
 * activity (the worker's approval webhook), for runs started since that patch.
 */
import { ActivityFailure, ApplicationFailure, CancellationScope, condition, setHandler } from '@temporalio/workflow';
import type { ApprovalNotice } from '../activities/notify-approval';
import { callDigestOf } from '../recovery/call-key';
import { durationToMs } from '../task/duration';
import type { PendingApproval, StepApproval, TaskState } from '../task/task-run';
import { notifyApproval, verifyApproval } from './activity-stubs';
import { approvalSignal, approvalUpdate, approvalDecisionSchema, type ApprovalDecision, type ApprovalOutcome } from './definitions';
import type { TaskDeadline } from './task-deadline';

export { APPROVAL_NOTICE_PATCH, APPROVAL_UPDATE_PATCH } from './workflow-patches';

/** The run a gate belongs to: for decisions (workflow and run id) and for notices (the rest). */
export interface ApprovalRun {
  workflowId: string;
  runId: string;
  /** The workflow id of the task the user started. */
  rootWorkflowId?: string;
  user?: string;
}

/** What is held, as a human sees it in the approval listing. */
export interface ApprovalRequest {
  /** The step's index. */
  stepIndex: number;
  /** The request's unguessable id (from the policy check); the step index for older histories. */
  requestId?: string;
  tool: string;
  /** What the approver signs with the tool (for an effect held where it was applied, this includes its digest). */
  args: Record<string, unknown>;
  /** The rules that asked for approval, as `id: sentence`. */
  rules: string[];
  /** The effect Warden measured: for the policy check (rows a statement would change...), or for an effect held where it was applied. */
  effect?: PendingApproval['effect'];
  /** What the tool is, from its descriptor. */
  descriptor?: PendingApproval['descriptor'];
  /** What the wait is shown as in the Temporal UI (`approval: sql.exec 42 rows`). */
  summary?: string;
}

interface Decided {
  approved: boolean;
  approver: string;
  approverKey?: string;
  reason?: string;
}

function notPending(requestId: string, why: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'ERR_APPROVAL_NOT_PENDING', message: `no action ${requestId} is waiting for approval: ${why}`, nonRetryable: true });
}

export class ApprovalGate {
  private readonly decisions = new Map<string, Decided>();
  /** Requests waiting now, with the digest of their action (what an approver signs). */
  private readonly pending = new Map<string, { action: string }>();
  private readonly authenticated: boolean;
  /** Set when the task is blocked: whatever waits is denied at once (see `interrupt`). */
  private interrupted: string | undefined;
  /** Set when nobody is left to wait for the answer: whatever waits ends undecided (see `withdraw`). */
  private withdrawn: string | undefined;
  /** Notices on their way: the task waits for them before it ends, so none is dropped. */
  private readonly notices: Promise<unknown>[] = [];

  /**
   * @param approvalTimeout the task's `limits.approvalTimeout` (e.g. "15m")
   * Installs the approval handler: call once, when the workflow starts.
   */
  constructor(
    private readonly state: TaskState,
    private readonly deadline: TaskDeadline,
    private readonly approvalTimeout: string,
    private readonly run: ApprovalRun,
    authenticated: boolean,
    /** Whether this run sends approval notices (runs recorded before they existed replay without). */
    private readonly announcing = false,
  ) {
    this.authenticated = authenticated;
    if (this.authenticated) {
      setHandler(approvalUpdate, (decision) => this.decide(decision), { validator: (decision) => this.validate(decision) });
    } else {
      setHandler(approvalSignal, (decision) => {
        // The first decision counts; later ones for the same request are ignored.
        if (!this.decisions.has(decision.requestId)) this.decisions.set(decision.requestId, decision);
      });
    }
  }

  /** Rejects, before anything is recorded, a decision that is malformed or not for a pending request. */
  private validate(decision: ApprovalDecision): void {
    const unauthenticated = (message: string) => ApplicationFailure.create({ type: 'ERR_APPROVAL_UNAUTHENTICATED', message, nonRetryable: true });
    if (typeof decision !== 'object' || decision === null || typeof decision.requestId !== 'string') throw unauthenticated('not an approval decision');
    if (!this.pending.has(decision.requestId)) throw notPending(decision.requestId, 'unknown, already decided or expired');
    if (decision.signature === undefined || decision.signature === null) throw unauthenticated('the decision carries no approver signature (sign it with `warden approve --key`)');
    const parsed = approvalDecisionSchema().safeParse(decision);
    if (!parsed.success) throw unauthenticated(`not an approval decision: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }

  private async decide(decision: ApprovalDecision): Promise<ApprovalOutcome> {
    const held = this.pending.get(decision.requestId);
    if (held === undefined) throw notPending(decision.requestId, 'unknown, already decided or expired');
    let verified: { approver: string; kid: string };
    try {
      verified = await verifyApproval({
        workflowId: this.run.workflowId,
        runId: this.run.runId,
        requestId: decision.requestId,
        action: held.action,
        approved: decision.approved,
        ...(decision.reason === undefined ? {} : { reason: decision.reason }),
        signature: decision.signature,
      });
    } catch (error) {
      const cause = error instanceof ActivityFailure ? error.cause : error;
      if (cause instanceof ApplicationFailure) throw ApplicationFailure.create({ type: cause.type ?? 'ERR_APPROVAL_UNAUTHENTICATED', message: cause.message, nonRetryable: true });
      throw error;
    }
    // Checked again: another decision may have been verified while this one was.
    if (this.decisions.has(decision.requestId) || !this.pending.has(decision.requestId)) throw notPending(decision.requestId, 'already decided');
    this.decisions.set(decision.requestId, {
      approved: decision.approved,
      approver: verified.approver,
      approverKey: verified.kid,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
    });
    return { requestId: decision.requestId, status: decision.approved ? 'approved' : 'denied', approver: verified.approver };
  }

  /** Ends every wait, now and later, as denied by Warden with `reason` (the task was blocked). */
  interrupt(reason: string): void {
    this.interrupted ??= reason;
  }

  /**
   * Ends every wait, now and later, undecided (`withdrawn`, with `reason`): the one who asked is
   * gone (an MCP session's client disconnected), so no decision could reach it. A decision that
   * was already stored still counts.
   */
  withdraw(reason: string): void {
    this.withdrawn ??= reason;
  }

  /**
   * Waits for a decision on `request`. Resolves `approved`, `denied` or `timed_out`; throws the
   * deadline's `TaskEnded` when the task's own deadline passes first.
   */
  async hold(request: ApprovalRequest): Promise<StepApproval> {
    const requestId = this.authenticated ? (request.requestId ?? `${request.stepIndex}`) : `${request.stepIndex}`;
    const waitMs = Math.min(durationToMs(this.approvalTimeout), Math.max(0, this.deadline.remainingMs()));
    this.pending.set(requestId, { action: callDigestOf(request.tool, request.args) });
    const pending: PendingApproval = {
      requestId,
      tool: request.tool,
      args: request.args,
      rules: request.rules,
      ...(request.effect === undefined ? {} : { effect: request.effect }),
      ...(request.descriptor === undefined ? {} : { descriptor: request.descriptor }),
      requestedAt: new Date(Date.now()).toISOString(),
      expiresAt: new Date(Date.now() + waitMs).toISOString(),
    };
    this.state.pendingApprovals.push(pending);
    if (this.announcing) this.announce(pending, 'held');
    let outcome: StepApproval | undefined;
    try {
      const decided = await condition(() => this.decisions.has(requestId) || this.interrupted !== undefined || this.withdrawn !== undefined, waitMs, { summary: request.summary ?? `approval: ${request.tool}` });
      if (this.interrupted !== undefined && !this.decisions.has(requestId)) {
        outcome = { requestId, status: 'denied', approver: 'warden', reason: this.interrupted, decidedAt: new Date(Date.now()).toISOString() };
        return outcome;
      }
      if (this.withdrawn !== undefined && !this.decisions.has(requestId)) {
        outcome = { requestId, status: 'withdrawn', reason: this.withdrawn, decidedAt: new Date(Date.now()).toISOString() };
        return outcome;
      }
      const decision = this.decisions.get(requestId);
      if (!decided || decision === undefined) {
        if (this.deadline.remainingMs() <= 0) throw this.deadline.exceeded();
        outcome = { requestId, status: 'timed_out', decidedAt: new Date(Date.now()).toISOString() };
        return outcome;
      }
      outcome = {
        requestId,
        status: decision.approved ? 'approved' : 'denied',
        approver: decision.approver,
        ...(decision.approverKey === undefined ? {} : { approverKey: decision.approverKey }),
        ...(decision.reason === undefined ? {} : { reason: decision.reason }),
        decidedAt: new Date(Date.now()).toISOString(),
      };
      return outcome;
    } finally {
      this.pending.delete(requestId);
      this.state.pendingApprovals = this.state.pendingApprovals.filter((p) => p.requestId !== requestId);
      if (this.announcing) {
        // Not decided (the task was cancelled, or its deadline came first): withdrawn.
        this.announce(
          pending,
          'decided',
          outcome === undefined
            ? { status: 'withdrawn', decidedAt: new Date(Date.now()).toISOString() }
            : {
                status: outcome.status,
                ...(outcome.approver === undefined ? {} : { approver: outcome.approver }),
                ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
                decidedAt: outcome.decidedAt,
              },
        );
      }
    }
  }

  /** Waits for every notice sent so far (delivered, or given up on after its retries). */
  async flushNotices(): Promise<void> {
    await Promise.all(this.notices);
  }

  /**
   * Sends a notice without holding the step up for it. Not cancellable: a cancelled task still
   * says its held action is withdrawn. A webhook that keeps failing never fails the task.
   */
  private announce(pending: PendingApproval, event: ApprovalNotice['event'], decision?: ApprovalNotice['decision']): void {
    const notice: ApprovalNotice = {
      event,
      workflowId: this.run.workflowId,
      runId: this.run.runId,
      rootWorkflowId: this.run.rootWorkflowId ?? this.run.workflowId,
      requestId: pending.requestId,
      agent: this.state.agent,
      user: this.run.user ?? '',
      tool: pending.tool,
      args: pending.args,
      ...(pending.effect === undefined ? {} : { effect: pending.effect }),
      rules: pending.rules,
      requestedAt: pending.requestedAt,
      expiresAt: pending.expiresAt,
      ...(decision === undefined ? {} : { decision }),
    };
    this.notices.push(CancellationScope.nonCancellable(() => notifyApproval(notice)).catch(() => undefined));
  }
}
