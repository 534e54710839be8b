/**
 * The refusal for a grant id this worker's grant store does not hold. Not a revocation (a revoked
 * grant stays in the store and is refused as revoked): either another state folder (another
 * keystore and grant store) issued it, so the task was started for a different set of workers,
 * typically two state folders polling one task queue on one Temporal server; or the grant expired
 * and the store pruned it (grants are pruned after their expiry). The call is refused all the same
 * (no credential is minted from a grant this worker cannot read).
 */
import { CredentialError } from '../errors';
import type { RevocationStore } from './credential-stores';
import { grantEndedError } from './verify-credential';

/**
 * @param grantId the grant the task carries (`gr_...` / workflow id)
 * @param what `grant` for a tool call, `parent grant` for a sub-agent's delegation
 * @returns CredentialError ERR_CREDENTIAL_GRANT_UNKNOWN naming the grant and the likely cause
 */
export function grantUnknown(grantId: string, what: 'grant' | 'parent grant' = 'grant'): CredentialError {
  return new CredentialError(
    'ERR_CREDENTIAL_GRANT_UNKNOWN',
    `${what} ${grantId} is unknown to this worker: this worker has no record of it and none of its revocation; it was not issued from this worker's state folder (another keystore and grant store), so the task was started for a different worker set, or it expired and was pruned. Run the task with the workers of the state folder that started it, or give each state folder its own task queue (--task-queue or WARDEN_TASK_QUEUE)`,
    { details: { grantId } },
  );
}

/**
 * The refusal for a grant this worker's grant store does not hold: ERR_CREDENTIAL_REVOKED when the
 * revocation store has recorded its end (a worker can record the end of a grant it never held, e.g.
 * the kill of a task another state folder started), so rules and alerts keyed on revocations still
 * fire; otherwise {@link grantUnknown}.
 *
 * @param revocation the worker's revocation store (`isRevoked` by grant id)
 * @returns the CredentialError to throw; never resolves to undefined
 */
export async function missingGrantRefusal(revocation: Pick<RevocationStore, 'isRevoked'>, grantId: string, what: 'grant' | 'parent grant' = 'grant'): Promise<CredentialError> {
  const revoked = await revocation.isRevoked([grantId]);
  return revoked === undefined ? grantUnknown(grantId, what) : grantEndedError(`${what} ${revoked.grantId}`, revoked, { grantId });
}
