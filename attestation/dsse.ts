/**
 * DSSE (Dead Simple Signing Envelope, v1.0.2: https://github.com/secure-systems-lab/dsse) for
 * Warden's attestations. The signature covers the pre-authentication encoding (PAE) of the payload
 * type and the payload bytes, so neither can be swapped without breaking it.
 *
 * Invariant: an envelope verifies only with a key from the JWKS the caller trusts, by `keyid`;
 * a payload is returned only after its signature checked out. Failures say which check failed
 * and never which bytes differed.
 */
import { createPublicKey, sign as nodeSign, verify as nodeVerify, KeyObject } from 'node:crypto';
import { DsseEnvelopeSchema, type DsseEnvelope } from './dsse-envelope-schema';
import type { Jwks, PublicJwk } from '../identity/claims';
import { AttestationError } from '../errors';

/** The payload type of an in-toto Statement (in-toto attestation spec, envelope layer). */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export { DsseEnvelopeSchema, DsseSignatureSchema, type DsseEnvelope } from './dsse-envelope-schema';

/**
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN being the byte length
 * in ASCII decimal (DSSE protocol.md).
 */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), Buffer.from(payload)]);
}

/** Signs raw bytes with a key Warden holds; the private key stays with the signer. */
export interface ByteSigner {
  /** The key's id, as published in the JWKS. */
  readonly kid: string;
  readonly alg: 'EdDSA' | 'ES256';
  signBytes(message: Uint8Array): Promise<Uint8Array>;
}

/** A `ByteSigner` over a node:crypto private key (Ed25519 or P-256). */
export function byteSignerFromKey(privateKey: KeyObject, kid: string): ByteSigner {
  const type = privateKey.asymmetricKeyType;
  if (type !== 'ed25519' && type !== 'ec') throw new TypeError(`unsupported signing key type ${String(type)}`);
  const alg = type === 'ed25519' ? 'EdDSA' : 'ES256';
  return {
    kid,
    alg,
    signBytes: async (message) =>
      alg === 'EdDSA' ? nodeSign(null, message, privateKey) : nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'der' }),
  };
}

/** Wraps `payload` in an envelope signed by `signer`. */
export async function signEnvelope(payloadType: string, payload: Uint8Array, signer: ByteSigner): Promise<DsseEnvelope> {
  const sig = await signer.signBytes(preAuthEncoding(payloadType, payload));
  return {
    payload: Buffer.from(payload).toString('base64'),
    payloadType,
    signatures: [{ keyid: signer.kid, sig: Buffer.from(sig).toString('base64') }],
  };
}

/** The public key of one JWK (RFC 7517 / RFC 8037). */
export function publicKeyOfJwk(jwk: PublicJwk): KeyObject {
  const { kid: _kid, alg: _alg, use: _use, ...material } = jwk;
  return createPublicKey({ key: material, format: 'jwk' });
}

export interface VerifiedEnvelope {
  payloadType: string;
  payload: Buffer;
  /** The keys whose signatures verified. */
  keyids: string[];
}

/**
 * Checks an envelope against the trusted JWKS and returns its payload.
 * @throws AttestationError `ERR_ATTESTATION_MALFORMED` (not an envelope), `ERR_ATTESTATION_KEY_UNKNOWN`
 *   (no signature by a key in the JWKS), `ERR_ATTESTATION_SIGNATURE` (a signature by a trusted key
 *   does not verify), `ERR_ATTESTATION_PAYLOAD_TYPE` (another payload type than expected).
 */
export function verifyEnvelope(envelope: unknown, jwks: Jwks, expectedPayloadType: string = IN_TOTO_PAYLOAD_TYPE): VerifiedEnvelope {
  const parsed = DsseEnvelopeSchema.safeParse(envelope);
  if (!parsed.success) {
    throw new AttestationError('ERR_ATTESTATION_MALFORMED', `not a DSSE envelope: ${parsed.error.issues[0]?.path.join('.') || '(envelope)'}: ${parsed.error.issues[0]?.message}`);
  }
  const { payloadType, payload: payloadB64, signatures } = parsed.data;
  if (payloadType !== expectedPayloadType) {
    throw new AttestationError('ERR_ATTESTATION_PAYLOAD_TYPE', `payload type is "${payloadType}", expected "${expectedPayloadType}"`);
  }
  const payload = Buffer.from(payloadB64, 'base64');
  const message = preAuthEncoding(payloadType, payload);
  const keyids: string[] = [];
  let trustedSignatures = 0;
  for (const signature of signatures) {
    const jwk = jwks.keys.find((k) => k.kid === signature.keyid);
    if (jwk === undefined) continue;
    trustedSignatures++;
    const key = publicKeyOfJwk(jwk);
    const sig = Buffer.from(signature.sig, 'base64');
    const ok = jwk.alg === 'EdDSA' ? nodeVerify(null, message, key, sig) : nodeVerify('sha256', message, { key, dsaEncoding: 'der' }, sig);
    // One bad signature by a trusted key fails the envelope: it was altered after signing.
    if (!ok) throw new AttestationError('ERR_ATTESTATION_SIGNATURE', `the signature by key ${signature.keyid} does not verify`);
    keyids.push(signature.keyid);
  }
  if (trustedSignatures === 0) {
    throw new AttestationError('ERR_ATTESTATION_KEY_UNKNOWN', `no signature by a key in the trusted JWKS (keyids: ${signatures.map((s) => s.keyid).join(', ')})`);
  }
  return { payloadType, payload, keyids };
}
