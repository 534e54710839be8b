/**
 * The checks every Warden JWT (task grant or per-call credential) passes, in this order, each
 * failing with its own code:
 *
 *   1. shape: three base64url parts, JSON-object header and payload, at most 16 KiB  ERR_CREDENTIAL_MALFORMED
 *   2. `alg: none` (any case)                                                        ERR_CREDENTIAL_UNSIGNED
 *   3. `alg` outside [EdDSA, ES256] (HS256 key confusion, RS256, ...)                 ERR_CREDENTIAL_ALG
 *   4. key-carrying headers `jwk`, `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`              ERR_CREDENTIAL_HEADER
 *   5. any `crit` (Warden understands no extensions)                                  ERR_CREDENTIAL_CRIT
 *   6. any header parameter other than alg, kid, typ                                  ERR_CREDENTIAL_HEADER
 *   7. `typ` not the expected kind (a grant presented as a call credential, ...)      ERR_CREDENTIAL_TYPE
 *   8. `kid` absent, not a Warden key, listed twice, or past the key's window (`exp`)  ERR_CREDENTIAL_KID_UNKNOWN
 *   9. header `alg` differs from the key's `alg`                                      ERR_CREDENTIAL_ALG
 *  10. the signature with that one key and algorithm (node:crypto, compact-jws.ts)   ERR_CREDENTIAL_SIGNATURE
 *      then iss / aud / exp / nbf, as jose's `jwtVerify` checks them    ERR_CREDENTIAL_{ISSUER,AUDIENCE,EXPIRED,NOT_YET_VALID}
 *  11. the payload parses with the claim schema                                       ERR_CREDENTIAL_MALFORMED
 *
 * Invariants: nothing in the header or payload is acted on before steps 1-9 ran, and no claim is
 * trusted before the signature verified. Keys come only from Warden's own key set, never from the
 * token. Signature failures say nothing beyond "signature verification failed".
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors } from './jose';
import type { z } from 'zod';
import { CredentialError } from '../errors';
import { SIGNING_ALGS, JwksSchema, duplicateKids, type Jwks, type PublicJwk } from './claims';
import type { Clock } from './clock';
import type { Keystore } from './keystore';
import { base64urlPartBytes, jwsSignatureValid } from './compact-jws';
import { cutText } from '../cut-text';

export const MAX_TOKEN_LENGTH = 16 * 1024;
const KEY_CARRYING_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'] as const;
const ALLOWED_HEADERS = new Set(['alg', 'kid', 'typ']);
/** A `kid` that already missed reloads the key set at most this often. */
const KEY_REFRESH_INTERVAL_MS = 1000;
const MAX_REMEMBERED_MISSES = 256;
/**
 * A key set older than this (on the verifier's clock) is re-read at its next use, known kid or
 * not: a window set after it was loaded (another worker's rotation in the shared database, a
 * jwks.json rewritten by `warden keys rotate`) reaches a verifier that never sees the new kid.
 */
const KEY_SET_MAX_AGE_MS = 30_000;

/**
 * Where verification keys come from: a keystore (reloaded when an unknown kid shows up), a fixed
 * JWKS, or a loader called on the first use and again on an unknown kid (e.g. `() => readJwksFile(stateDir)`).
 */
export type KeySource = Keystore | Jwks | (() => Jwks | Promise<Jwks>);

/**
 * One key of a loaded key set, as `find` returns it: the public JWK and its node:crypto key,
 * bound together when the set is loaded, so a reload between a token's lookup and its signature
 * check cannot separate them (the token is checked with the key its kid named when it was looked up).
 */
export interface VerificationKey {
  readonly jwk: PublicJwk;
  /** The imported key, imported on the first call; a key node:crypto cannot import throws (a TypeError) for the tokens naming it only. */
  publicKey(): KeyObject;
}

/**
 * The public keys a verifier trusts, refreshed from their source when an unknown kid shows up.
 *
 * Invariants: a key verifies only before its window ends (its JWK `exp`, epoch seconds, as
 * OpenID Federation's historical keys carry it; absent on the active key and in jwks.json files
 * written before windows were), checked at every use, not only when the set was loaded; a kid
 * the set lists more than once names no key (jose's `createLocalJWKSet` refuses it too,
 * ERR_JWKS_MULTIPLE_MATCHING_KEYS), whatever the order of the list.
 */
export class VerificationKeySet {
  private jwks: Jwks | undefined;
  private byKid = new Map<string, VerificationKey>();
  private lastRefresh = Number.NEGATIVE_INFINITY;
  private loadedAt = 0;
  private readonly misses = new Set<string>();

  constructor(private readonly source: KeySource) {}

  /**
   * The key with this kid that still verifies at `now` (epoch ms), or undefined when the source
   * has none even after a refresh (unknown, listed twice, or past its window). A kid not seen
   * before always triggers a refresh (a key rotated in by another process must verify at once);
   * a kid that already missed does so at most once a second; any kid once the set is 30 s old.
   */
  async find(kid: string, now: number): Promise<VerificationKey | undefined> {
    if (this.jwks === undefined) await this.load(false, now);
    else if (Math.abs(now - this.loadedAt) >= KEY_SET_MAX_AGE_MS) await this.load(true, now);
    let key = this.usable(kid, now);
    if (key === undefined && (!this.misses.has(kid) || performance.now() - this.lastRefresh >= KEY_REFRESH_INTERVAL_MS)) {
      await this.load(true, now);
      key = this.usable(kid, now);
      if (key === undefined) {
        if (this.misses.size >= MAX_REMEMBERED_MISSES) this.misses.clear();
        this.misses.add(kid);
      }
    }
    return key;
  }

  private usable(kid: string, now: number): VerificationKey | undefined {
    const key = this.byKid.get(kid);
    return key !== undefined && keyVerifiesAt(key.jwk, now) ? key : undefined;
  }

  private async load(refresh: boolean, now: number): Promise<void> {
    this.lastRefresh = performance.now();
    this.loadedAt = now;
    const source = this.source;
    let jwks: Jwks;
    if (typeof source === 'function') jwks = await source();
    else if (isKeystore(source)) {
      if (refresh) await source.refresh();
      jwks = source.jwks();
    } else jwks = source;
    jwks = JwksSchema.parse(jwks);
    // Unchanged (windows included): keep the keys already imported.
    if (this.jwks !== undefined && JSON.stringify(this.jwks.keys) === JSON.stringify(jwks.keys)) return;
    const listedTwice = new Set(duplicateKids(jwks));
    const byKid = new Map<string, VerificationKey>();
    for (const jwk of jwks.keys) if (!listedTwice.has(jwk.kid)) byKid.set(jwk.kid, verificationKeyOf(jwk));
    this.jwks = jwks;
    this.byKid = byKid;
  }
}

/** Whether `jwk` still verifies at `now` (epoch ms): before its `exp` (epoch seconds), or always when it has none. */
export function keyVerifiesAt(jwk: PublicJwk, now: number): boolean {
  return jwk.exp === undefined || now < jwk.exp * 1000;
}

function verificationKeyOf(jwk: PublicJwk): VerificationKey {
  let imported: KeyObject | undefined;
  return {
    jwk,
    publicKey() {
      imported ??= createPublicKey({ key: { ...jwk }, format: 'jwk' });
      return imported;
    },
  };
}

function isKeystore(source: Keystore | Jwks): source is Keystore {
  return typeof (source as Partial<Keystore>).jwks === 'function';
}

/** What one kind of token must be. */
export interface TokenExpectations<S extends z.ZodType> {
  typ: string;
  issuer: string;
  audience: string;
  claims: S;
  clock: Clock;
  /** Seconds of leeway for exp / nbf (default 0: issuer and verifier share a host clock). */
  clockToleranceSec?: number;
}

export interface DecodedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/**
 * Splits and decodes a compact JWS WITHOUT verifying anything; for explaining a token to a
 * human and for the structural step 1. Throws ERR_CREDENTIAL_MALFORMED.
 */
export function decodeTokenUnverified(token: unknown): DecodedToken {
  if (typeof token !== 'string' || token.length === 0) throw malformed('not a token string');
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed(parts.length === 5 ? 'an encrypted JWE, not a signed JWS' : 'not three dot-separated parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  if (!/^[A-Za-z0-9_-]+$/.test(headerPart) || !/^[A-Za-z0-9_-]+$/.test(payloadPart) || !/^[A-Za-z0-9_-]*$/.test(signaturePart)) {
    throw malformed('a part is not base64url');
  }
  return { header: jsonObject(headerPart, 'header'), payload: jsonObject(payloadPart, 'payload') };
}

/**
 * Runs checks 1-11 on `token` and returns its verified claims; throws a `CredentialError` whose
 * code names the first check that failed.
 */
export async function verifyWardenToken<S extends z.ZodType>(
  token: unknown,
  keys: VerificationKeySet,
  expect: TokenExpectations<S>,
): Promise<{ header: { alg: string; kid: string; typ: string }; claims: z.infer<S> }> {
  const { header } = decodeTokenUnverified(token);
  const alg = header['alg'];
  if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
    throw new CredentialError('ERR_CREDENTIAL_UNSIGNED', 'unsigned token (alg "none") refused', { details: { alg } });
  }
  if (typeof alg !== 'string' || !(SIGNING_ALGS as readonly string[]).includes(alg)) {
    throw new CredentialError('ERR_CREDENTIAL_ALG', `algorithm ${JSON.stringify(alg ?? null)} is not allowed; allowed: ${SIGNING_ALGS.join(', ')}`, {
      details: { alg: typeof alg === 'string' ? alg : null, allowed: [...SIGNING_ALGS] },
    });
  }
  const embedded = KEY_CARRYING_HEADERS.filter((name) => Object.hasOwn(header, name));
  if (embedded.length > 0) {
    throw new CredentialError('ERR_CREDENTIAL_HEADER', `header carries or points to a key (${embedded.join(', ')}); keys come only from Warden's key set`, {
      details: { headers: embedded },
    });
  }
  if (Object.hasOwn(header, 'crit')) {
    throw new CredentialError('ERR_CREDENTIAL_CRIT', 'header marks extensions as critical (crit); Warden understands none', {
      details: { crit: Array.isArray(header['crit']) ? header['crit'].filter((c) => typeof c === 'string').slice(0, 10) : null },
    });
  }
  const unknown = Object.keys(header).filter((name) => !ALLOWED_HEADERS.has(name));
  if (unknown.length > 0) {
    throw new CredentialError('ERR_CREDENTIAL_HEADER', `unexpected header parameters: ${unknown.slice(0, 10).join(', ')}`, { details: { headers: unknown.slice(0, 10) } });
  }
  const typ = header['typ'];
  if (typ !== expect.typ) {
    throw new CredentialError('ERR_CREDENTIAL_TYPE', `token type ${JSON.stringify(typ ?? null)} is not ${JSON.stringify(expect.typ)}`, {
      details: { typ: typeof typ === 'string' ? typ : null, expected: expect.typ },
    });
  }
  const kid = header['kid'];
  const found = typeof kid === 'string' && kid.length <= 128 ? await keys.find(kid, expect.clock()) : undefined;
  if (found === undefined) {
    throw new CredentialError('ERR_CREDENTIAL_KID_UNKNOWN', typeof kid === 'string' ? 'the signing key id is not a Warden key' : 'the token names no key id (kid)', {
      details: { kid: typeof kid === 'string' ? cutText(kid, 128) : null },
    });
  }
  const key = found.jwk;
  if (key.alg !== alg) {
    throw new CredentialError('ERR_CREDENTIAL_ALG', `algorithm ${alg} does not match key ${key.kid} (${key.alg})`, { details: { alg, keyAlg: key.alg } });
  }
  let payload: unknown;
  try {
    payload = verifiedClaimsSet(token as string, found, expect);
  } catch (error) {
    throw credentialErrorOf(error, expect);
  }
  const parsed = expect.claims.safeParse(payload);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `claims do not match the ${expect.typ} schema: ${issues.map((i) => `${i.path || '(top level)'}: ${i.message}`).join('; ')}`, {
      details: { issues },
    });
  }
  return { header: { alg, kid: key.kid, typ: expect.typ }, claims: parsed.data };
}

const { JWSInvalid, JWSSignatureVerificationFailed, JWTClaimValidationFailed, JWTExpired, JWTInvalid } = joseErrors;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** The claims every Warden JWT must carry besides iss and aud. */
const REQUIRED_CLAIMS = ['jti', 'iat', 'nbf', 'exp', 'sub'] as const;

/**
 * Step 10: what jose 6's `jwtVerify(token, key, { algorithms: [alg], crit: {}, typ, issuer,
 * audience, currentDate, clockTolerance, requiredClaims })` checks after steps 1-9, in its order,
 * failing with its error classes (so `credentialErrorOf` maps them as before), with the signature
 * checked by node:crypto's synchronous verify on a key imported once:
 *
 *   the header part decodes (strict base64url, UTF-8) to a JSON object          JWSInvalid
 *   the signature part decodes                                                  JWSInvalid
 *   the signature over `header.payload`                                         JWSSignatureVerificationFailed
 *   the payload part decodes to UTF-8 JSON, an object                           JWSInvalid / JWTInvalid
 *   iss, aud, sub, exp, nbf, iat, jti are present (that order)                  JWTClaimValidationFailed (claim)
 *   iss is the issuer, aud is or contains the audience                          JWTClaimValidationFailed (iss / aud)
 *   iat a number; nbf a number not past now + tolerance                         JWTClaimValidationFailed (iat / nbf)
 *   exp a number later than now - tolerance                                     JWTClaimValidationFailed / JWTExpired (exp)
 *
 * `typ` (step 7 compared it exactly), `alg` (steps 3 and 9) and `crit` (step 5) were checked
 * before. Claims are looked at only after the signature verified. Returns the claims set.
 */
function verifiedClaimsSet(token: string, key: VerificationKey, expect: TokenExpectations<z.ZodType>): Record<string, unknown> {
  const [headerPart, payloadPart, signaturePart] = token.split('.') as [string, string, string];
  const headerBytes = base64urlPartBytes(headerPart);
  let header: unknown;
  try {
    header = headerBytes === undefined ? undefined : JSON.parse(strictUtf8.decode(headerBytes));
  } catch {
    header = undefined;
  }
  if (!isJsonObject(header)) throw new JWSInvalid('JWS Protected Header is invalid');
  const signature = base64urlPartBytes(signaturePart);
  if (signature === undefined) throw new JWSInvalid('Failed to base64url decode the signature');
  if (!jwsSignatureValid(key.publicKey(), key.jwk.alg, `${headerPart}.${payloadPart}`, signature)) throw new JWSSignatureVerificationFailed();
  const payloadBytes = base64urlPartBytes(payloadPart);
  if (payloadBytes === undefined) throw new JWSInvalid('Failed to base64url decode the payload');
  let claims: unknown;
  try {
    claims = JSON.parse(strictUtf8.decode(payloadBytes));
  } catch {
    claims = undefined;
  }
  if (!isJsonObject(claims)) throw new JWTInvalid('JWT Claims Set must be a top-level JSON object');
  for (const claim of new Set([...REQUIRED_CLAIMS, 'aud', 'iss'].reverse())) {
    if (!Object.hasOwn(claims, claim)) throw new JWTClaimValidationFailed(`missing required "${claim}" claim`, claims, claim, 'missing');
  }
  if (claims['iss'] !== expect.issuer) throw new JWTClaimValidationFailed('unexpected "iss" claim value', claims, 'iss', 'check_failed');
  const aud = claims['aud'];
  if (!(typeof aud === 'string' ? aud === expect.audience : Array.isArray(aud) && aud.includes(expect.audience))) {
    throw new JWTClaimValidationFailed('unexpected "aud" claim value', claims, 'aud', 'check_failed');
  }
  const tolerance = expect.clockToleranceSec ?? 0;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('Invalid clockTolerance option input');
  const now = Math.floor(expect.clock() / 1000);
  if (!Number.isFinite(now)) throw new TypeError('Invalid currentDate option input');
  const numericDate = (claim: 'iat' | 'nbf' | 'exp'): number | undefined => {
    const value = claims[claim];
    if (value === undefined) return undefined;
    if (typeof value !== 'number') throw new JWTClaimValidationFailed(`"${claim}" claim must be a number`, claims, claim, 'invalid');
    return value;
  };
  numericDate('iat');
  const nbf = numericDate('nbf');
  if (nbf !== undefined && nbf > now + tolerance) throw new JWTClaimValidationFailed('"nbf" claim timestamp check failed', claims, 'nbf', 'check_failed');
  const exp = numericDate('exp');
  if (exp !== undefined && exp <= now - tolerance) throw new JWTExpired('"exp" claim timestamp check failed', claims, 'exp', 'check_failed');
  return claims;
}

/** jose's `isObject`: a plain object (what JSON.parse makes of `{...}`), not an array or null. */
function isJsonObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]') return false;
  return Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null;
}

/** Maps a jose failure to Warden's codes. jose validates claims only after the signature, so claim values are authentic here. */
function credentialErrorOf(error: unknown, expect: { issuer: string; audience: string }): unknown {
  const joseCode = (error as { code?: unknown } | null)?.code;
  const claimsSet = (error as { payload?: Record<string, unknown> }).payload ?? {};
  const at = (seconds: unknown) => (typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(seconds));
  switch (joseCode) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new CredentialError('ERR_CREDENTIAL_SIGNATURE', 'signature verification failed');
    case 'ERR_JWT_EXPIRED':
      return new CredentialError('ERR_CREDENTIAL_EXPIRED', `token expired at ${at(claimsSet['exp'])}`, { details: { exp: claimsSet['exp'] } });
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (error as { claim?: unknown }).claim;
      if (claim === 'nbf') return new CredentialError('ERR_CREDENTIAL_NOT_YET_VALID', `token not valid before ${at(claimsSet['nbf'])}`, { details: { nbf: claimsSet['nbf'] } });
      if (claim === 'iss') {
        return new CredentialError('ERR_CREDENTIAL_ISSUER', `issuer ${JSON.stringify(claimsSet['iss'] ?? null)} is not ${JSON.stringify(expect.issuer)}`, {
          details: { iss: claimsSet['iss'] ?? null, expected: expect.issuer },
        });
      }
      if (claim === 'aud') {
        return new CredentialError('ERR_CREDENTIAL_AUDIENCE', `audience ${JSON.stringify(claimsSet['aud'] ?? null)} is not ${JSON.stringify(expect.audience)}`, {
          details: { aud: claimsSet['aud'] ?? null, expected: expect.audience },
        });
      }
      return new CredentialError('ERR_CREDENTIAL_MALFORMED', `claim ${String(claim)}: ${(error as Error).message}`, { details: { claim: String(claim) } });
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new CredentialError('ERR_CREDENTIAL_ALG', 'algorithm not allowed');
    case 'ERR_JOSE_NOT_SUPPORTED':
      return new CredentialError('ERR_CREDENTIAL_CRIT', 'unsupported token feature');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new CredentialError('ERR_CREDENTIAL_KID_UNKNOWN', 'the signing key id is not a Warden key');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return new CredentialError('ERR_CREDENTIAL_MALFORMED', `malformed token: ${(error as Error).message}`);
    default:
      // jose throws TypeError for claims of the wrong type (a non-finite exp); anything else is not about the token.
      if (error instanceof TypeError) return new CredentialError('ERR_CREDENTIAL_MALFORMED', `malformed token: ${error.message}`);
      return error;
  }
}

function malformed(why: string): CredentialError {
  return new CredentialError('ERR_CREDENTIAL_MALFORMED', `malformed token: ${why}`);
}

function jsonObject(part: string, what: 'header' | 'payload'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw malformed(`the ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(`the ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
