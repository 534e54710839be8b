/**
 * Verifies an approver's signed decision for the approval Update (workflows/approval-gate.ts):
 * the signature must be by a registered, unremoved approver's key and cover exactly this run,
 * request, action and verdict (identity/approval-decision.ts). The approver's identity goes into
 * the span, and so into the custody ledger.
 */
import { WARDEN_ATTR } from '../custody/attributes';
import { CredentialError } from '../errors';
import { verifyApprovalDecision, type ExpectedDecision } from '../identity/approval-decision';
import { annotateActiveSpan, rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';

export interface VerifyApprovalInput extends ExpectedDecision {
  /** The flattened JWS the decision carried. */
  signature: unknown;
}

export interface VerifiedApproval {
  approver: string;
  /** The approver key's id. */
  kid: string;
  signedAt: string;
}

export function createVerifyApproval(deps: ActivityDeps) {
  return async function verifyApproval(input: VerifyApprovalInput): Promise<VerifiedApproval> {
    return atActivityBoundary(async () => {
      annotateActiveSpan({
        [WARDEN_ATTR.taskId]: rootWorkflowIdOf(input.workflowId),
        [WARDEN_ATTR.approvalRequestId]: input.requestId,
        [WARDEN_ATTR.approvalDecision]: input.approved ? 'approved' : 'denied',
      });
      if (deps.approvers === undefined) {
        throw new CredentialError('ERR_APPROVAL_UNAUTHENTICATED', 'this worker has no approver registry, so no decision can be verified');
      }
      const { signature, ...expected } = input;
      try {
        const verified = await verifyApprovalDecision(deps.approvers, signature, expected);
        annotateActiveSpan({ [WARDEN_ATTR.approvalApprover]: verified.approver, [WARDEN_ATTR.approvalApproverKey]: verified.kid, [WARDEN_ATTR.outcome]: 'ok' });
        return verified;
      } catch (error) {
        annotateActiveSpan({ [WARDEN_ATTR.outcome]: 'denied' });
        throw error;
      }
    });
  };
}
