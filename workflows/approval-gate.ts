/**
 * Holds an action the policy engine sent for approval until a human decides, the approval
 * timeout passes, or the task's deadline does. Pending requests are visible in the task's state
 * (`warden approvals`, `warden run`) with the effect Warden measured, and each hold and each
 * decision is announced through the `notifyApproval` activity (the worker's approval webhook).
 */
import { CancellationScope, condition, patched, setHandler } from '@temporalio/workflow';
import type { ApprovalNotice } from '../activities/notify-approval';
import { durationToMs } from '../task/duration';
import type { PendingApproval, StepApproval, TaskState } from '../task/task-run';
import { notifyApproval } from './activity-stubs';
import { approvalSignal, type ApprovalDecision } from './definitions';
import type { TaskDeadline } from './task-deadline';

/** Runs recorded before approval notices existed replay without them. */
export const APPROVAL_NOTICE_PATCH = 'warden-approval-notice';

/** Who the task is, for the notices. */
export interface ApprovalContext {
  runId: string;
  rootWorkflowId: string;
  user: string;
}

/** What is held, as a human sees it in the approval listing. */
export interface ApprovalRequest {
  /** The step's index; the request's id. */
  stepIndex: number;
  tool: string;
  args: Record<string, unknown>;
  /** The rules that asked for approval, as `id: sentence`. */
  rules: string[];
  /** The effect Warden measured for the policy check (rows a statement would change...). */
  effect?: Record<string, unknown>;
}

export class ApprovalGate {
  private readonly decisions = new Map<string, ApprovalDecision>();
  /** Notices on their way: the task waits for them before it ends, so none is dropped. */
  private readonly notices: Promise<unknown>[] = [];
  /** Whether this run sends notices (runs recorded before they existed replay without). */
  private readonly announcing: boolean;

  /**
   * @param approvalTimeout the task's `limits.approvalTimeout` (e.g. "15m")
   * Installs the approval handler: call once, when the workflow starts.
   */
  constructor(
    private readonly state: TaskState,
    private readonly deadline: TaskDeadline,
    private readonly approvalTimeout: string,
    private readonly context?: ApprovalContext,
  ) {
    // Decided when the run starts, not when an action is held: a patch marker recorded right
    // after a local activity (the policy check) in the same workflow task cannot be replayed.
    this.announcing = context !== undefined && patched(APPROVAL_NOTICE_PATCH);
    setHandler(approvalSignal, (decision) => {
      // The first decision counts; later ones for the same request are ignored.
      if (!this.decisions.has(decision.requestId)) this.decisions.set(decision.requestId, decision);
    });
  }

  /**
   * Waits for a decision on `request`. Resolves `approved`, `denied` or `timed_out`; throws the
   * deadline's `TaskEnded` when the task's own deadline passes first.
   */
  async hold(request: ApprovalRequest): Promise<StepApproval> {
    const requestId = `${request.stepIndex}`;
    const waitMs = Math.min(durationToMs(this.approvalTimeout), Math.max(0, this.deadline.remainingMs()));
    const pending: PendingApproval = {
      requestId,
      tool: request.tool,
      args: request.args,
      rules: request.rules,
      ...(request.effect === undefined ? {} : { effect: request.effect }),
      requestedAt: new Date(Date.now()).toISOString(),
      expiresAt: new Date(Date.now() + waitMs).toISOString(),
    };
    this.state.pendingApprovals.push(pending);
    const announce = this.announcing;
    if (announce) this.announce(pending, 'held');
    let outcome: StepApproval | undefined;
    try {
      const decided = await condition(() => this.decisions.has(requestId), waitMs);
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
        ...(decision.reason === undefined ? {} : { reason: decision.reason }),
        decidedAt: new Date(Date.now()).toISOString(),
      };
      return outcome;
    } finally {
      this.state.pendingApprovals = this.state.pendingApprovals.filter((p) => p.requestId !== requestId);
      if (announce) {
        const { requestId: _id, ...decision } = outcome ?? { requestId, status: 'withdrawn' as const, decidedAt: new Date(Date.now()).toISOString() };
        this.announce(pending, 'decided', decision);
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
    const context = this.context!;
    const notice: ApprovalNotice = {
      event,
      workflowId: this.state.workflowId,
      runId: context.runId,
      rootWorkflowId: context.rootWorkflowId,
      requestId: pending.requestId,
      agent: this.state.agent,
      user: context.user,
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
