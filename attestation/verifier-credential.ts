/**
 * The verifier's own credential. Each claim's check runs under a grant of its own, issued by
 * Warden's credential authority for the agent `warden-verifier` (acting for the task's user, on
 * the task's intent hash) and holding only the verifier's tool and read-only actions on exactly
 * the resources the claim names (verifier-access.ts); the call credential minted from it has the
 * audience `tool:warden-verifier.<kind>`. Neither is derived from the agent's grant, so nothing
 * the agent holds or revoked affects the check, and the agent's credentials cannot be used for it.
 *
 * Invariant: the tokens stay in the activity that checks the claim (handed only to the sandbox
 * host for a user-defined verifier); only the credential's `jti` is recorded.
 */
import { mintCallCredential, type MintedCredential } from '../identity/credential';
import type { Keystore } from '../identity/keystore';
import { issueTaskGrant } from '../identity/task-grant';
import { VERIFIER_VERSION } from './claim-attestation';
import { VERIFIER_AGENT, type VerifierAccess } from './verifier-access';

export interface VerifierCredentialRequest {
  access: VerifierAccess;
  /** The claim's id: the verifier grant's workflow part (`agent:warden-verifier@<claim id>`). */
  claimId: string;
  /** The task's user and intent hash (`sha256:<hex>`), as in the task's own grant. */
  user: string;
  intentHash: string;
  /** How long the check may take (the credential and its grant end then). */
  ttlMs: number;
}

/**
 * Issues the verifier grant and mints the call credential of one check.
 * @throws CredentialError ERR_CREDENTIAL_SCOPE when the scope is not covered by the grant (a bug), as minting does.
 */
export async function issueVerifierCredential(keystore: Keystore, request: VerifierCredentialRequest): Promise<MintedCredential> {
  const expiresAt = keystore.clock() + request.ttlMs + 5_000;
  const grant = await issueTaskGrant(keystore, {
    workflowId: request.claimId,
    user: request.user,
    intentHash: request.intentHash,
    agent: { name: VERIFIER_AGENT, model: { id: VERIFIER_AGENT, version: VERIFIER_VERSION } },
    grants: request.access.grants,
    limits: { maxSteps: 1, maxDepth: 0 },
    expiresAt,
  });
  return mintCallCredential(keystore, grant.token, { tool: request.access.tool, scope: request.access.scope, ttlMs: request.ttlMs, maxTtlMs: request.ttlMs });
}
