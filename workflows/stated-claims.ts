/**
 * Claims a model states while it works (`state_claim`): recorded in the run, shown back to the
 * model in its transcript, and joined to its final answer's claims. A claim is testimony until
 * Warden has checked it (attest-claims.ts); nothing here reads or trusts its content.
 *
 * Deterministic code only.
 */
import { MAX_CLAIMS_PER_AGENT, type StatedClaim, type StatedClaimRecord } from '../attestation/claim-outcome';
import type { ClaimAction } from '../task/task-run';
import type { AgentRun } from './agent-run';
import { TaskEnded } from './task-ended';

const statedClaims = new WeakMap<AgentRun, StatedClaimRecord[]>();

/** The claims stated so far in this run, oldest first. */
export function statedClaimsOf(run: AgentRun): StatedClaimRecord[] {
  let list = statedClaims.get(run);
  if (list === undefined) {
    list = [];
    statedClaims.set(run, list);
  }
  return list;
}

function tooMany(): TaskEnded {
  return new TaskEnded('limit_exceeded', `an agent may state at most ${MAX_CLAIMS_PER_AGENT} claims`);
}

/** Records a stated claim; an agent past the claim limit ends its task (`limit_exceeded`). */
export function stateClaim(run: AgentRun, action: ClaimAction, turn: number): void {
  const list = statedClaimsOf(run);
  if (list.length >= MAX_CLAIMS_PER_AGENT) throw tooMany();
  list.push({ turn, claim: action.claim, ...(action.callId === undefined ? {} : { callId: action.callId }) });
}

/** The agent's claims when it gives its final answer: those it stated, then the answer's own. */
export function claimsOfFinalAnswer(run: AgentRun, finalClaims: readonly StatedClaim[]): StatedClaim[] {
  const all = [...statedClaimsOf(run).map((c) => c.claim), ...finalClaims];
  if (all.length > MAX_CLAIMS_PER_AGENT) throw tooMany();
  return all;
}
