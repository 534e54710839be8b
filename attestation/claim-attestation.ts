/**
 * A verified claim as a signed in-toto Statement: its subjects are what was checked (file
 * digests), the task run it belongs to and the custody record of the check; its predicate is the
 * claim, what Warden observed and who verified it. Only verified claims are signed: a refuted or
 * unverified claim is reported and recorded in custody, never attested.
 */
import { canonicalBytes } from '../custody/canonical-json';
import type { DsseEnvelope, ByteSigner } from './dsse';
import { claimPredicateType, jsonSubject, sha256Hex, signStatement, STATEMENT_TYPE, type Statement, type Subject } from './in-toto-statement';
import type { ClaimCheck } from './verify-claim';

/** The verifier's version, part of every predicate (bump when a verifier's semantics change). */
export const VERIFIER_VERSION = '1';

/** Whose task the claim was made in. */
export interface AttestedRun {
  workflowId: string;
  runId: string;
  user: string;
  /** SHA-256 of the user's intent (never the intent's text). */
  intentHash: string;
  agentId: string;
  model: { id: string; version: string };
  /** The task tree the claim was made in: its root workflow and first run (a sub-agent's claim names its root's). */
  task?: { workflowId: string; runId: string };
}

/** The run as a subject: `workflow:<id>` with the digest of `{ workflowId, runId }`. */
export function runSubject(run: Pick<AttestedRun, 'workflowId' | 'runId'>): Subject {
  return jsonSubject(`workflow:${run.workflowId}`, { workflowId: run.workflowId, runId: run.runId });
}

/** The Statement for one verified claim (pure; `verifiedAt` is an ISO time from the caller). */
export function claimStatement(check: ClaimCheck, run: AttestedRun, verifiedAt: string, custodyRecord?: { seq: number; hash: string }): Statement {
  const subject: Subject[] = [...check.subjects, runSubject(run)];
  if (custodyRecord !== undefined) subject.push({ name: `custody:${custodyRecord.seq}`, digest: { sha256: custodyRecord.hash } });
  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: claimPredicateType(check.claim.kind),
    predicate: {
      claim: check.claim,
      verdict: check.verdict,
      reason: check.reason,
      observed: check.observed ?? null,
      verifier: { id: `warden/verifier/${check.claim.kind}`, version: VERIFIER_VERSION },
      run,
      verifiedAt,
    },
  };
}

/** Signs a verified claim; undefined for one that is not verified (nothing is attested then). */
export async function attestClaim(check: ClaimCheck, run: AttestedRun, verifiedAt: string, signer: ByteSigner, custodyRecord?: { seq: number; hash: string }): Promise<DsseEnvelope | undefined> {
  if (check.verdict !== 'verified') return undefined;
  return signStatement(claimStatement(check, run, verifiedAt, custodyRecord), signer);
}

/** A stable id for a claim check (what custody and receipts refer to). */
export function claimCheckId(run: Pick<AttestedRun, 'workflowId' | 'runId'>, index: number, check: Pick<ClaimCheck, 'claim'>): string {
  return `${run.workflowId}#claim-${index}-${sha256Hex(canonicalBytes(check.claim)).slice(0, 12)}`;
}
