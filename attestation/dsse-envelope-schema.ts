/**
 * The shape of a DSSE envelope (https://github.com/secure-systems-lab/dsse, envelope.md), apart
 * from signing and verification (dsse.ts) so that workflow code, which must not import
 * node:crypto, can carry envelopes in its results.
 *
 * Pure (zod only): the workflow imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('attestation/dsse-envelope-schema', () => {
  const Base64Schema = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');
  const DsseSignatureSchema = z.strictObject({
    /** The signing key's JWK thumbprint (its `kid` in Warden's published JWKS). */
    keyid: z.string().min(1).max(128),
    /** Base64 of the raw signature: Ed25519 (64 bytes) or ECDSA P-256 (ASN.1 DER). */
    sig: Base64Schema,
  });
  const DsseEnvelopeSchema = z.strictObject({
    /** Base64 of the payload bytes. */
    payload: Base64Schema,
    payloadType: z.string().min(1),
    signatures: z.array(DsseSignatureSchema).min(1).max(16),
  });
  return { Base64Schema, DsseSignatureSchema, DsseEnvelopeSchema };
});

export const { DsseSignatureSchema, DsseEnvelopeSchema } = schemas;
const { Base64Schema } = schemas;
export type DsseEnvelope = z.infer<typeof DsseEnvelopeSchema>;
