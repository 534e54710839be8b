/**
 * What Warden concluded about one claim an agent made, as it appears in a task's result
 * (`warden run --json` → `claims[]`), in the custody ledger and in a task receipt: the claim,
 * who made it, the verdict with its reason, what the verifier observed, and, for a verified
 * claim only, the signed in-toto Statement (DSSE envelope).
 *
 * Status model: a task whose agents' claims include a refuted one ends `refuted`, not
 * `completed` (its effects were committed, but an agent said something Warden found false);
 * `warden run` exits 1 for it. Unverified claims (sentences, checks that could not be made) do
 * not change the status; they are listed as such.
 *
 * Pure (zod only): the workflow imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { ClaimVerdictSchema } from './claim-schema';
import { DsseEnvelopeSchema } from './dsse-envelope-schema';
import { SubjectSchema } from './in-toto-subject';
import { cutText } from '../cut-text';
export type StatedClaim = z.infer<typeof StatedClaimSchema>;

/** One claim a model stated with `state_claim`, in the turn it stated it (shown back in its transcript). */
export interface StatedClaimRecord {
  turn: number;
  callId?: string;
  claim: StatedClaim;
}

/** The custody record kind of a claim's verdict. */
export const CLAIM_VERDICT_RECORD = 'claim-verdict';

/** Most claims one agent may state in a task (final answer and `state_claim` together). */
export const MAX_CLAIMS_PER_AGENT = 100;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('attestation/claim-outcome', () => {
  /**
   * A claim as an agent states it, before Warden reads it: a sentence, or an object meant to be a
   * structured claim. Models may get the shape wrong; such a claim is reported `unverified` with
   * `ERR_CLAIM_INVALID`, it does not fail the task.
   */
  const StatedClaimSchema = z.union([z.string().max(4096), z.record(z.string(), z.unknown())]);
  const ClaimOutcomeSchema = z.strictObject({
    /** `<workflowId>#claim-<index>-<digest of the claim>`: what custody and receipts refer to. */
    id: z.string(),
    /** The workflow of the agent that made the claim (the task's, or a sub-agent's). */
    workflowId: z.string(),
    agent: z.string(),
    /** Position of the claim among that agent's claims. */
    index: z.number().int().min(0),
    /** The claim as Warden read it (a sentence becomes `{ kind: 'text' }`). */
    claim: z.record(z.string(), z.unknown()),
    /** The claim in words. */
    text: z.string(),
    verdict: ClaimVerdictSchema,
    reason: z.string(),
    /** What the verifier saw: a digest, a count, a status, an exit code and output tail. */
    observed: z.unknown().optional(),
    subjects: z.array(SubjectSchema),
    /** The custody record of this verdict (kind `claim-verdict`), when the ledger is on. */
    custody: z.strictObject({ seq: z.number().int().min(0), hash: z.string() }).optional(),
    /** The signed Statement: present exactly when the verdict is `verified`. */
    envelope: DsseEnvelopeSchema.optional(),
    verifier: z.strictObject({
      id: z.string(),
      version: z.string(),
      /** The `jti` of the verifier's own credential (read-only scope), never its token. */
      credential: z.string().optional(),
    }),
    verifiedAt: z.string(),
  });
  return { StatedClaimSchema, ClaimOutcomeSchema };
});

export const { StatedClaimSchema, ClaimOutcomeSchema } = schemas;
export type ClaimOutcome = z.infer<typeof ClaimOutcomeSchema>;

/** Counts by verdict. */
export function tallyClaims(outcomes: readonly Pick<ClaimOutcome, 'verdict'>[]): Record<'verified' | 'refuted' | 'unverified', number> {
  const tally = { verified: 0, refuted: 0, unverified: 0 };
  for (const o of outcomes) tally[o.verdict] += 1;
  return tally;
}

/** Why a task whose claims were checked ends `refuted`, or undefined when none was refuted. */
export function refutationReason(outcomes: readonly Pick<ClaimOutcome, 'verdict' | 'text' | 'reason' | 'agent'>[]): string | undefined {
  const refuted = outcomes.filter((o) => o.verdict === 'refuted');
  if (refuted.length === 0) return undefined;
  const first = refuted[0]!;
  const more = refuted.length > 1 ? ` (and ${refuted.length - 1} more)` : '';
  return `${refuted.length} claim${refuted.length === 1 ? '' : 's'} refuted: ${first.agent} claimed "${cutText(first.text, 120)}", but ${cutText(first.reason, 200)}${more}`;
}
