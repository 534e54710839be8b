/**
 * Compact JWS (RFC 7515) signing and signature checking with node:crypto's one-shot, synchronous
 * `sign` / `verify`, for Warden's two algorithms: EdDSA (Ed25519, RFC 8037) and ES256 (ECDSA
 * P-256 over SHA-256, signature as the 64-byte `r || s` of RFC 7518 §3.4).
 *
 * Why not jose here: jose signs and verifies through WebCrypto, whose every call is a promise
 * settled from the thread pool; a guarded tool call mints one credential and the host verifies it,
 * and the two round trips cost about 1.5 ms of the step (issue 17). The bytes are the same: a
 * token signed here is what jose's `SignJWT` writes (for Ed25519, byte for byte), and jose's
 * `jwtVerify` accepts it (test/identity/compact-jws.test.ts checks both directions).
 *
 * Invariant: the private key stays a non-extractable WebCrypto `CryptoKey` (keystore.ts);
 * node:crypto signs with it without exporting it.
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject, type webcrypto } from 'node:crypto';
import type { SigningAlg } from './claims';

/** The protected header of every Warden JWT, in this member order (jose's `setProtectedHeader` order). */
export interface WardenJwsHeader {
  alg: SigningAlg;
  kid: string;
  typ: string;
}

/**
 * `BASE64URL(header).BASE64URL(payload).BASE64URL(signature)` of `payload` as JSON. Throws a
 * TypeError (as jose's SignJWT does) when `iat`, `nbf` or `exp` is a number that is not finite:
 * JSON would write it as null.
 */
export function signCompactJws(key: webcrypto.CryptoKey | KeyObject, header: WardenJwsHeader, payload: Record<string, unknown>): string {
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    const value = payload[claim];
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`"${claim}" claim must be a finite number`);
  }
  const signingInput = `${base64urlJson({ alg: header.alg, kid: header.kid, typ: header.typ })}.${base64urlJson(payload)}`;
  const data = Buffer.from(signingInput, 'ascii');
  // node:crypto signs with a CryptoKey as is (documented since Node 15; @types/node lists only
  // KeyObject): no KeyObject, which could be exported, is made of a non-extractable key.
  const signingKey = key as KeyObject;
  const signature = header.alg === 'EdDSA' ? cryptoSign(null, data, signingKey) : cryptoSign('sha256', data, { key: signingKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/**
 * Whether `signature` is a valid `alg` signature of `signingInput` (the token's first two parts
 * and the dot, ASCII) under `publicKey`. A signature of the wrong length is simply invalid.
 */
export function jwsSignatureValid(publicKey: KeyObject, alg: SigningAlg, signingInput: string, signature: Uint8Array): boolean {
  const data = Buffer.from(signingInput, 'ascii');
  try {
    return alg === 'EdDSA' ? cryptoVerify(null, data, publicKey, signature) : cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * The bytes of one part of a compact JWS already known to hold only base64url characters, or
 * undefined when its length cannot be base64 (one character past a multiple of four): jose's
 * decoder (forgiving base64, no padding) refuses exactly those.
 */
export function base64urlPartBytes(part: string): Buffer | undefined {
  return part.length % 4 === 1 ? undefined : Buffer.from(part, 'base64url');
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}
