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
 */
import { ActivityFailure, ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
import { callDigestOf } from '../recovery/call-key';
import { durationToMs } from '../task/duration';
import type { StepApproval, TaskState } from '../task/task-run';
import { verifyApproval } from './activity-stubs';
import { approvalSignal, approvalUpdate, ApprovalDecisionSchema, type ApprovalDecision, type ApprovalOutcome } from './definitions';
import type { TaskDeadline } from './task-deadline';

export { APPROVAL_UPDATE_PATCH } from './workflow-patches';

/** What is held, as a human sees it in the approval listing. */
export interface ApprovalRequest {
  /** The step's index. */
  stepIndex: number;
  /** The request's unguessable id (from the policy check); the step index for older histories. */
  requestId?: string;
  tool: string;
  args: Record<string, unknown>;
  /** The rules that asked for approval, as `id: sentence`. */
  rules: string[];
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

  /**
   * @param approvalTimeout the task's `limits.approvalTimeout` (e.g. "15m")
   * Installs the approval handler: call once, when the workflow starts.
   */
  constructor(
    private readonly state: TaskState,
    private readonly deadline: TaskDeadline,
    private readonly approvalTimeout: string,
    private readonly run: { workflowId: string; runId: string },
    authenticated: boolean,
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
    const parsed = ApprovalDecisionSchema.safeParse(decision);
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

  /**
   * Waits for a decision on `request`. Resolves `approved`, `denied` or `timed_out`; throws the
   * deadline's `TaskEnded` when the task's own deadline passes first.
   */
  async hold(request: ApprovalRequest): Promise<StepApproval> {
    const requestId = this.authenticated ? (request.requestId ?? `${request.stepIndex}`) : `${request.stepIndex}`;
    const waitMs = Math.min(durationToMs(this.approvalTimeout), Math.max(0, this.deadline.remainingMs()));
    this.pending.set(requestId, { action: callDigestOf(request.tool, request.args) });
    this.state.pendingApprovals.push({
      requestId,
      tool: request.tool,
      args: request.args,
      rules: request.rules,
      requestedAt: new Date(Date.now()).toISOString(),
      expiresAt: new Date(Date.now() + waitMs).toISOString(),
    });
    try {
      const decided = await condition(() => this.decisions.has(requestId), waitMs);
      const decision = this.decisions.get(requestId);
      if (!decided || decision === undefined) {
        if (this.deadline.remainingMs() <= 0) throw this.deadline.exceeded();
        return { requestId, status: 'timed_out', decidedAt: new Date(Date.now()).toISOString() };
      }
      return {
        requestId,
        status: decision.approved ? 'approved' : 'denied',
        approver: decision.approver,
        ...(decision.approverKey === undefined ? {} : { approverKey: decision.approverKey }),
        ...(decision.reason === undefined ? {} : { reason: decision.reason }),
        decidedAt: new Date(Date.now()).toISOString(),
      };
    } finally {
      this.pending.delete(requestId);
      this.state.pendingApprovals = this.state.pendingApprovals.filter((p) => p.requestId !== requestId);
    }
  }
}
