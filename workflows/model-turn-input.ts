/**
 * What a model turn is sent. Each step holds its tool's output (the outside world's to size), so
 * sending every step to every turn made history grow with the square of the step count. Runs
 * with the `model-steps-by-digest` patch send the steps since the last turn and a reference to
 * the earlier ones, which the activity stored when it was last asked
 * (activities/model-context-store.ts). Older runs send every step, as they did.
 */
import type { ProposeTurnInput, ProposeTurnResult } from '../activities/propose-turn';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import type { AgentRun } from './agent-run';

export function modelTurnInput(run: AgentRun, turn: number, claims: readonly StatedClaimRecord[]): ProposeTurnInput {
  const base = { task: run.activityTask, turn, workflowId: run.workflowId, ...(claims.length === 0 ? {} : { claims: [...claims] }) };
  if (!run.patches.modelStepsByDigest) return { ...base, steps: run.state.steps };
  const earlier = run.modelShown;
  // A reference older than the steps (never expected) is not trusted to cut them: every step goes.
  if (earlier === undefined || earlier.count > run.state.steps.length) return { ...base, steps: run.state.steps, stepsByDigest: true };
  return { ...base, steps: run.state.steps.slice(earlier.count), stepsByDigest: true, earlier };
}

/** Remembers which steps the model has been shown (stored by the activity), for the next turn. */
export function rememberShown(run: AgentRun, result: ProposeTurnResult): void {
  if (run.patches.modelStepsByDigest && result.shown !== undefined) run.modelShown = result.shown;
}
