/**
 * The `attestClaim` activity: Warden's independent check of one claim an agent of the task made,
 * after the task committed (attestation/claim-verification.ts). Runs on any worker of the task
 * queue with that worker's keys, stores and sandbox host; returns the verdict (with the signed
 * Statement of a verified claim) for the task's result.
 */
import { verifyAndAttestClaim, type AttestClaimInput } from '../attestation/claim-verification';
import type { ClaimOutcome } from '../attestation/claim-outcome';
import { protectedSetForCall } from './run-tool';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';

export type { AttestClaimInput };

export function createAttestClaim(deps: ActivityDeps) {
  return async function attestClaim(input: AttestClaimInput): Promise<ClaimOutcome> {
    return atActivityBoundary(async () => {
      if (deps.identity === undefined || deps.stateDir === undefined) throw new TypeError('this worker was created without identity services or a state folder');
      // The same protected set a tool call gets: the verifier reads no Warden file, whatever the claim names.
      const guarded = await protectedSetForCall(deps, input.task);
      return verifyAndAttestClaim(
        {
          keystore: deps.identity.keystore,
          stores: deps.identity.stores,
          stateDir: deps.stateDir,
          protectedPaths: guarded.folders,
          protectedFiles: guarded.files,
          sandbox: deps.sandbox,
          ...(deps.custody === undefined ? {} : { ledger: deps.custody }),
        },
        input,
      );
    });
  };
}
