/**
 * Holds an action the policy engine sent for approval until a human decides, the approval
 * timeout passes, or the task's deadline does. Pending requests are visible in the task's state
 * (`warden approvals`) while they wait.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { durationToMs } from '../task/duration';
import type { StepApproval, TaskState } from '../task/task-run';
import { approvalSignal, type ApprovalDecision } from './definitions';
import type { TaskDeadline } from './task-deadline';

/** What is held, as a human sees it in the approval listing. */
export interface ApprovalRequest {
  /** The step's index; the request's id. */
  stepIndex: number;
  tool: string;
  args: Record<string, unknown>;
  /** The rules that asked for approval, as `id: sentence`. */
  rules: string[];
}

export class ApprovalGate {
  private readonly decisions = new Map<string, ApprovalDecision>();
  /** Set when the task is blocked: whatever waits is denied at once (see `interrupt`). */
  private interrupted: string | undefined;

  /**
   * @param approvalTimeout the task's `limits.approvalTimeout` (e.g. "15m")
   * Installs the approval handler: call once, when the workflow starts.
   */
  constructor(
    private readonly state: TaskState,
    private readonly deadline: TaskDeadline,
    private readonly approvalTimeout: string,
  ) {
    setHandler(approvalSignal, (decision) => {
      // The first decision counts; later ones for the same request are ignored.
      if (!this.decisions.has(decision.requestId)) this.decisions.set(decision.requestId, decision);
    });
  }

  /** Ends every wait, now and later, as denied by Warden with `reason` (the task was blocked). */
  interrupt(reason: string): void {
    this.interrupted ??= reason;
  }

  /**
   * Waits for a decision on `request`. Resolves `approved`, `denied` or `timed_out`; throws the
   * deadline's `TaskEnded` when the task's own deadline passes first.
   */
  async hold(request: ApprovalRequest): Promise<StepApproval> {
    const requestId = `${request.stepIndex}`;
    const waitMs = Math.min(durationToMs(this.approvalTimeout), Math.max(0, this.deadline.remainingMs()));
    this.state.pendingApprovals.push({
      requestId,
      tool: request.tool,
      args: request.args,
      rules: request.rules,
      requestedAt: new Date(Date.now()).toISOString(),
      expiresAt: new Date(Date.now() + waitMs).toISOString(),
    });
    try {
      const decided = await condition(() => this.decisions.has(requestId) || this.interrupted !== undefined, waitMs);
      if (this.interrupted !== undefined && !this.decisions.has(requestId)) {
        return { requestId, status: 'denied', approver: 'warden', reason: this.interrupted, decidedAt: new Date(Date.now()).toISOString() };
      }
      const decision = this.decisions.get(requestId);
      if (!decided || decision === undefined) {
        if (this.deadline.remainingMs() <= 0) throw this.deadline.exceeded();
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
      this.state.pendingApprovals = this.state.pendingApprovals.filter((p) => p.requestId !== requestId);
    }
  }
}
