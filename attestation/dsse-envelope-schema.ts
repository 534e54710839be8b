/**
 * The shape of a DSSE envelope (https://github.com/secure-systems-lab/dsse, envelope.md), apart
 * from signing and verification (dsse.ts) so that workflow code, which must not import
 * node:crypto, can carry envelopes in its results.
 *
 * Pure (zod only): the workflow imports this file.
 */
import { z } from 'zod';

const Base64Schema = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');

export const DsseSignatureSchema = z.strictObject({
  /** The signing key's JWK thumbprint (its `kid` in Warden's published JWKS). */
  keyid: z.string().min(1).max(128),
  /** Base64 of the raw signature: Ed25519 (64 bytes) or ECDSA P-256 (ASN.1 DER). */
  sig: Base64Schema,
});

export const DsseEnvelopeSchema = z.strictObject({
  /** Base64 of the payload bytes. */
  payload: Base64Schema,
  payloadType: z.string().min(1),
  signatures: z.array(DsseSignatureSchema).min(1).max(16),
});
export type DsseEnvelope = z.infer<typeof DsseEnvelopeSchema>;
