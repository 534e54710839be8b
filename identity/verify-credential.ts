/**
 * The tool host's gate: a call runs only after its credential passes every check below.
 *
 * Invariants: the checks run in a fixed order and each failure has its own code (see
 * token-verification.ts for the header, key, signature and time checks); then the credential
 * must be for this tool, cover every resource of this call, belong to a grant (and ancestors)
 * that has not been ended, and never have been accepted before. A credential is consumed
 * (its `jti` recorded) only when everything else passed, in one atomic insert.
 */
import { CredentialError } from '../errors';
import { CALL_CREDENTIAL_TYP, CallCredentialClaimsSchema, WARDEN_ISSUER, toolAudience, type CallCredentialClaims } from './claims';
import { systemClock, type Clock } from './clock';
import type { ReplayStore, RevocationRecord, RevocationStore } from './credential-stores';
import { VerificationKeySet, verifyWardenToken, type KeySource } from './token-verification';

export interface CredentialVerifierOptions {
  /** A keystore, a JWKS, or a loader such as `() => readJwksFile(stateDir)` (re-read when an unknown kid shows up). */
  keys: KeySource | VerificationKeySet;
  /** Default "warden". */
  issuer?: string;
  replayStore: ReplayStore;
  revocationStore: RevocationStore;
  clock?: Clock;
  /** Seconds of leeway on exp / nbf (default 0). */
  clockToleranceSec?: number;
}

export interface VerifyCallOptions {
  /** The tool about to run; the credential's audience must be exactly `tool:<tool>`. */
  tool: string;
  /** The resources this call will touch, built with the same helpers as at minting (call-scope.ts). */
  requiredScope: readonly string[];
  /** Record the `jti` as used (default true). False only for explaining a token: it then fails if already used, without using it. */
  consume?: boolean;
}

export interface VerifiedCredential {
  header: { alg: string; kid: string; typ: string };
  claims: CallCredentialClaims;
}

export interface CredentialVerifier {
  /** Resolves with the verified claims or rejects with a `CredentialError` whose code names the failed check. */
  verify(token: string, call: VerifyCallOptions): Promise<VerifiedCredential>;
}

export function createCredentialVerifier(options: CredentialVerifierOptions): CredentialVerifier {
  const keys = options.keys instanceof VerificationKeySet ? options.keys : new VerificationKeySet(options.keys);
  const clock = options.clock ?? systemClock;
  const issuer = options.issuer ?? WARDEN_ISSUER;
  return {
    async verify(token, call) {
      const { header, claims } = await verifyWardenToken(token, keys, {
        typ: CALL_CREDENTIAL_TYP,
        issuer,
        audience: toolAudience(call.tool),
        claims: CallCredentialClaimsSchema,
        clock,
        ...(options.clockToleranceSec === undefined ? {} : { clockToleranceSec: options.clockToleranceSec }),
      });
      const missing = call.requiredScope.filter((s) => !claims.scope.includes(s));
      if (missing.length > 0) {
        throw new CredentialError('ERR_CREDENTIAL_SCOPE', `the credential does not cover ${missing.map((s) => JSON.stringify(s)).join(', ')}`, {
          details: { missing, jti: claims.jti },
        });
      }
      const revoked = await options.revocationStore.isRevoked([...claims.lineage, claims.grant]);
      if (revoked !== undefined) {
        const whose = revoked.grantId === claims.grant ? 'its task grant' : 'an ancestor grant';
        throw grantEndedError(`${whose} (${revoked.grantId})`, revoked, { jti: claims.jti, grant: claims.grant, revokedGrant: revoked.grantId, reason: revoked.reason, revokedAt: revoked.revokedAt });
      }
      const fresh = call.consume === false ? !(await options.replayStore.isUsed(claims.jti)) : await options.replayStore.markUsed(claims.jti, claims.exp);
      if (!fresh) {
        throw new CredentialError('ERR_CREDENTIAL_REPLAYED', `credential ${claims.jti} was already used`, { details: { jti: claims.jti } });
      }
      return { header, claims };
    },
  };
}

/**
 * The refusal of a grant the revocation store has recorded as ended: ERR_CREDENTIAL_REVOKED,
 * `<whose> was ended at <ISO time>: <reason>`.
 *
 * @param whose how the message names the grant, e.g. `its task grant (gr_...)`
 * @param revoked the revocation store's record (`revokedAt` in ms since the epoch)
 * @param details the error's details
 */
export function grantEndedError(whose: string, revoked: RevocationRecord, details: Record<string, unknown>): CredentialError {
  return new CredentialError('ERR_CREDENTIAL_REVOKED', `${whose} was ended at ${new Date(revoked.revokedAt).toISOString()}: ${revoked.reason}`, { details });
}
