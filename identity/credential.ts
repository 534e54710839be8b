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
import { decodeTokenUnverified } from './token-verification';

export const DEFAULT_CREDENTIAL_TTL_MS = 60_000;
/** Grant tokens per keystore whose verification is remembered (a worker runs a few tasks at a time). */
const MAX_REMEMBERED_GRANTS = 256;

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
  const grantClaims = typeof grant === 'string' ? await verifiedGrantClaims(keystore, grant) : grant.claims;

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

/** What a full verification of one grant token established, kept against the token's exact text. */
interface VerifiedGrant {
  claims: GrantClaims;
  kid: string;
  alg: string;
}

const verifiedGrants = new WeakMap<Keystore, Map<string, VerifiedGrant>>();

/**
 * The claims of grant `token`, verified. A worker mints every call of a task from the same grant
 * token (read back from its grant store each time), so the full verification (token-verification.ts:
 * header, key, Ed25519/ES256 signature, iss/aud/exp/nbf, claim schema) runs once per exact token
 * text and keystore; later calls with the same text re-check only what can change with time or
 * keys: the signing key is still among the keystore's verifying keys (a key past its
 * `verifyUntil` stops its grants at once, as before) and `nbf` has been reached (`exp` is checked
 * by the caller on every mint). A token edited in the store, by a single byte, is another text
 * and is verified in full. Throws what `verifyTaskGrant` throws.
 */
async function verifiedGrantClaims(keystore: Keystore, token: string): Promise<GrantClaims> {
  let remembered = verifiedGrants.get(keystore);
  const hit = remembered?.get(token);
  if (hit !== undefined && keystore.clock() >= hit.claims.nbf * 1000 && keystore.jwks().keys.some((k) => k.kid === hit.kid && k.alg === hit.alg)) return hit.claims;
  const verified = await verifyTaskGrant(token, keystore, { clock: keystore.clock });
  if (remembered === undefined) {
    remembered = new Map();
    verifiedGrants.set(keystore, remembered);
  }
  if (remembered.size >= MAX_REMEMBERED_GRANTS) remembered.delete(remembered.keys().next().value as string);
  // The header's kid and alg were verified with the signature above.
  const { header } = decodeTokenUnverified(token);
  remembered.set(token, { claims: verified.claims, kid: String(header['kid']), alg: String(header['alg']) });
  return verified.claims;
}
