/**
 * in-toto Attestation Framework Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md):
 * what was checked (`subject`, by digest), what kind of check (`predicateType`), and what it found
 * (`predicate`). Warden's predicate types are URIs under https://warden.dev/attestation/.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes } from '../custody/canonical-json';
import { AttestationError } from '../errors';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope, type ByteSigner, type DsseEnvelope } from './dsse';
import type { Jwks } from '../identity/claims';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_BASE = 'https://warden.dev/attestation';

/** The predicate type of a claim verification of one kind, e.g. `.../claim/sql.count/v1`. */
export function claimPredicateType(kind: string): string {
  return `${PREDICATE_BASE}/claim/${kind}/v1`;
}
export const RECEIPT_PREDICATE_TYPE = `${PREDICATE_BASE}/task-receipt/v1`;

import { SubjectSchema, type Subject } from './in-toto-subject';
export { SubjectSchema, type Subject };

export const StatementSchema = z.strictObject({
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(SubjectSchema).min(1),
  predicateType: z.string().url(),
  predicate: z.record(z.string(), z.unknown()),
});
export type Statement = z.infer<typeof StatementSchema>;

/** Hex SHA-256 of bytes or a UTF-8 string. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A subject that stands for a JSON value (e.g. a workflow run): its canonical JSON's SHA-256. */
export function jsonSubject(name: string, value: unknown): Subject {
  return { name, digest: { sha256: sha256Hex(canonicalBytes(value)) } };
}

/** Signs a Statement into a DSSE envelope; the payload is the Statement's canonical JSON (RFC 8785). */
export async function signStatement(statement: Statement, signer: ByteSigner): Promise<DsseEnvelope> {
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, canonicalBytes(StatementSchema.parse(statement)), signer);
}

/**
 * Verifies an envelope with the trusted JWKS and parses its Statement.
 * @throws AttestationError as `verifyEnvelope`, or `ERR_ATTESTATION_MALFORMED` when the payload is not a Statement v1.
 */
export function openStatement(envelope: unknown, jwks: Jwks): { statement: Statement; keyids: string[] } {
  const { payload, keyids } = verifyEnvelope(envelope, jwks, IN_TOTO_PAYLOAD_TYPE);
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new AttestationError('ERR_ATTESTATION_MALFORMED', 'the envelope payload is not JSON');
  }
  const parsed = StatementSchema.safeParse(json);
  if (!parsed.success) {
    throw new AttestationError('ERR_ATTESTATION_MALFORMED', `the envelope payload is not an in-toto Statement v1: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  }
  return { statement: parsed.data, keyids };
}
