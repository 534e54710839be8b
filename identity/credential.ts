/**
 * Per-call credentials: for every tool invocation, a fresh JWT for exactly that tool
 * (`aud: tool:<name>`), exactly the resources of that call (`scope`), a short life (60 s by
 * default, never more than the caller's cap nor past the task's deadline) and a unique `jti`.
 *
 * Invariants: a credential is minted only from a valid, unexpired task grant and only for scopes
 * that grant covers; its `act` chain and lineage are the grant's, never the caller's. The token
 * is returned to the caller (who hands it to the tool host) and never logged or recorded here.
 */
import { randomUUID } from 'node:crypto';
import { CredentialError } from '../errors';
import { scopeOutsideGrant } from './call-scope';
import { CALL_CREDENTIAL_TYP, CallCredentialClaimsSchema, WARDEN_ISSUER, toolAudience, type CallCredentialClaims, type GrantClaims } from './claims';
import { ToolNameSchema } from '../task/task-schema';
import { toNumericDate } from './clock';
import type { Keystore } from './keystore';
import { verifyTaskGrant } from './task-grant';

export const DEFAULT_CREDENTIAL_TTL_MS = 60_000;

export interface MintCallCredentialOptions {
  /** The one tool this credential is for. */
  tool: string;
  /** The resources of this call (see call-scope.ts: `fsScope`, `httpScope`, `sqlScope`). */
  scope: readonly string[];
  /** Default 60 s. */
  ttlMs?: number;
  /** Upper bound on the lifetime, e.g. the activity's start-to-close timeout. */
  maxTtlMs?: number;
}

export interface MintedCredential {
  /** The bearer token for the tool host: never into prompts, sandbox globals, logs or history. */
  token: string;
  /** Safe to record: ids, scope, expiry, act chain. */
  claims: CallCredentialClaims;
}

/**
 * Mints the credential of one tool call from a task grant (its token, verified here, or its
 * already-verified claims). Throws `CredentialError` ERR_CREDENTIAL_SCOPE when the grant does not
 * cover the tool or a scope entry, ERR_CREDENTIAL_EXPIRED when the grant has expired, and the
 * grant's own verification code when a token is given and does not verify.
 */
export async function mintCallCredential(keystore: Keystore, grant: string | { claims: GrantClaims }, options: MintCallCredentialOptions): Promise<MintedCredential> {
  if (!ToolNameSchema.safeParse(options.tool).success) throw new TypeError(`not a tool name: ${JSON.stringify(options.tool)}`);
  const ttlMs = Math.min(options.ttlMs ?? DEFAULT_CREDENTIAL_TTL_MS, options.maxTtlMs ?? Number.POSITIVE_INFINITY);
  if (!(ttlMs > 0)) throw new TypeError('ttlMs and maxTtlMs must be positive');
  const grantClaims = typeof grant === 'string' ? (await verifyTaskGrant(grant, keystore, { clock: keystore.clock })).claims : grant.claims;

  const now = keystore.clock();
  if (now >= grantClaims.exp * 1000) {
    throw new CredentialError('ERR_CREDENTIAL_EXPIRED', `cannot mint: grant ${grantClaims.jti} expired at ${new Date(grantClaims.exp * 1000).toISOString()}`, {
      details: { grant: grantClaims.jti, exp: grantClaims.exp },
    });
  }
  const outside = scopeOutsideGrant(grantClaims.grants, options.tool, options.scope);
  if (outside !== null) {
    throw new CredentialError('ERR_CREDENTIAL_SCOPE', `cannot mint a credential for "${options.tool}": ${outside} by grant ${grantClaims.jti}`, {
      details: { grant: grantClaims.jti, tool: options.tool, reason: outside },
    });
  }
  const iat = toNumericDate(now);
  // Whole seconds, rounded down, but at least one second; never past the grant (the task's deadline).
  const exp = Math.min(grantClaims.exp, Math.max(iat + 1, toNumericDate(now + ttlMs)));
  const claims = CallCredentialClaimsSchema.parse({
    iss: WARDEN_ISSUER,
    sub: grantClaims.sub,
    aud: toolAudience(options.tool),
    jti: randomUUID(),
    iat,
    nbf: iat,
    exp,
    scope: [...options.scope],
    act: grantClaims.act,
    grant: grantClaims.jti,
    lineage: grantClaims.lineage,
  });
  const token = await keystore.signer().sign(claims, CALL_CREDENTIAL_TYP);
  return { token, claims };
}
