/**
 * Authenticated approval decisions. `warden approvers add <name>` has Warden issue a person an
 * Ed25519 key (the private half goes to them in a key file; the public half is registered, see
 * approver-registry.ts). A decision is a flattened JWS (RFC 7515 §7.2.2) the approver makes with
 * that key over exactly one decision: which task run, which pending request, which action (a
 * digest of the held tool and arguments), approve or deny, and why.
 *
 * Invariants:
 *  - only a registered, unremoved approver's key verifies, and only for the decision it signed:
 *    another request, run, action, verdict or reason does not verify (no forged or replayed
 *    decision); a decision signed more than APPROVAL_MAX_AGE_MS ago (or in the future) does not;
 *  - the header names the key by id only (`kid`); keys carried in or pointed to by a header are
 *    refused, as for every Warden token;
 *  - the signed decision holds no secret: it may sit in workflow history and the custody ledger.
 */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, flattenedVerify, FlattenedSign, generateKeyPair, importJWK } from './jose';
import { z } from 'zod';
import { ApproverError, CredentialError } from '../errors';
import { ApproverNameSchema, ApproverPublicJwkSchema, type ApproverRecord, type ApproverStore } from './approver-registry';

/** `typ` of a signed decision. */
export const APPROVAL_TYP = 'warden-approval+jws';
/** How long a signed decision stays usable: long enough for a slow network, short enough to be one act. */
export const APPROVAL_MAX_AGE_MS = 10 * 60_000;

const B64 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

/** The approver's key file, as `warden approvers add` writes it (0600). Keep it away from every workspace. */
export const ApproverKeyFileSchema = z.strictObject({
  type: z.literal('warden-approver-key'),
  name: ApproverNameSchema,
  kid: z.string().min(1),
  privateJwk: z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: B64, d: B64 }),
});
export type ApproverKeyFile = z.infer<typeof ApproverKeyFileSchema>;

/** What the approver signs. */
export const ApprovalClaimsSchema = z.strictObject({
  approver: ApproverNameSchema,
  workflowId: z.string().min(1),
  runId: z.string().min(1),
  requestId: z.string().min(1),
  /** Digest of the held tool and arguments (recovery/call-key.ts `callDigestOf`). */
  action: z.string().min(1),
  approved: z.boolean(),
  reason: z.string().max(2000).optional(),
  /** NumericDate (seconds). */
  iat: z.number().int(),
  jti: z.string().min(1).max(128),
});
export type ApprovalClaims = z.infer<typeof ApprovalClaimsSchema>;

/** A flattened JWS (RFC 7515 §7.2.2). */
export const SignedDecisionSchema = z.strictObject({
  protected: z.string().min(1).max(1024),
  payload: z.string().min(1).max(8192),
  signature: z.string().min(1).max(512),
});
export type SignedDecision = z.infer<typeof SignedDecisionSchema>;

/** The decision as the workflow expects it: everything but who signed, when, and the nonce. */
export type ExpectedDecision = Omit<ApprovalClaims, 'approver' | 'iat' | 'jti'>;

/**
 * Issues `name` an approver key: registers its public half in `store` and returns the key file
 * to hand to that person. `keyFile` is where the caller will write it (recorded, so Warden keeps
 * tools away from it). Throws ApproverError ERR_APPROVER_INVALID for a bad or taken name.
 */
export async function issueApproverKey(store: ApproverStore, options: { name: string; keyFile?: string; now?: number }): Promise<{ record: ApproverRecord; keyFile: ApproverKeyFile }> {
  const name = ApproverNameSchema.safeParse(options.name);
  if (!name.success) throw new ApproverError('ERR_APPROVER_INVALID', `"${options.name}" is not ${name.error.issues[0]?.message ?? 'a valid approver name'}`);
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const publicJwk = ApproverPublicJwkSchema.parse(pick(await exportJWK(publicKey), ['kty', 'crv', 'x']));
  const privateJwk = pick(await exportJWK(privateKey), ['kty', 'crv', 'x', 'd']);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const record: ApproverRecord = { name: name.data, kid, publicJwk, addedAt: options.now ?? Date.now(), ...(options.keyFile === undefined ? {} : { keyFile: options.keyFile }) };
  await store.add(record);
  return { record, keyFile: ApproverKeyFileSchema.parse({ type: 'warden-approver-key', name: name.data, kid, privateJwk }) };
}

function pick(jwk: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, jwk[k]]));
}

/** Signs one decision with the approver's key. */
export async function signApprovalDecision(key: ApproverKeyFile, decision: ExpectedDecision, now: number = Date.now()): Promise<SignedDecision> {
  const claims = ApprovalClaimsSchema.parse({ ...decision, approver: key.name, iat: Math.floor(now / 1000), jti: randomUUID() });
  const privateKey = await importJWK({ ...key.privateJwk, alg: 'EdDSA' }, 'EdDSA');
  const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: 'EdDSA', typ: APPROVAL_TYP, kid: key.kid }).sign(privateKey);
  return SignedDecisionSchema.parse({ protected: jws.protected, payload: jws.payload, signature: jws.signature });
}

function refused(message: string, details: Record<string, unknown> = {}): CredentialError {
  return new CredentialError('ERR_APPROVAL_UNAUTHENTICATED', message, { details });
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw refused(`the signed decision's ${what} is not a JSON object`);
}

/**
 * Verifies that `signed` is the registered approver's decision `expected`, made within
 * APPROVAL_MAX_AGE_MS of `now`. Returns who decided and with which key; throws CredentialError
 * ERR_APPROVAL_UNAUTHENTICATED naming the first check that failed.
 */
export async function verifyApprovalDecision(
  store: Pick<ApproverStore, 'get'>,
  signed: unknown,
  expected: ExpectedDecision,
  now: number = Date.now(),
): Promise<{ approver: string; kid: string; signedAt: string }> {
  const parsed = SignedDecisionSchema.safeParse(signed);
  if (!parsed.success) throw refused('the decision carries no approver signature (a flattened JWS from `warden approve`)');
  const jws = parsed.data;
  const header = decodeJson(jws.protected, 'header');
  const extra = Object.keys(header).filter((k) => !['alg', 'typ', 'kid'].includes(k));
  if (header.alg !== 'EdDSA' || header.typ !== APPROVAL_TYP || typeof header.kid !== 'string' || extra.length > 0) {
    throw refused(`the signature header must be exactly { alg: "EdDSA", typ: "${APPROVAL_TYP}", kid }`, { header: Object.keys(header) });
  }
  const claims = ApprovalClaimsSchema.safeParse(decodeJson(jws.payload, 'payload'));
  if (!claims.success) throw refused('the signed decision does not have the shape of an approval');
  const record = await store.get(claims.data.approver);
  if (record === undefined) throw refused(`"${claims.data.approver}" is not a registered approver`, { approver: claims.data.approver });
  if (record.revokedAt !== undefined) throw refused(`approver "${record.name}" was removed`, { approver: record.name });
  if (record.kid !== header.kid) throw refused(`the decision is not signed with the key issued to "${record.name}"`, { approver: record.name });
  try {
    await flattenedVerify(jws, await importJWK({ ...record.publicJwk, alg: 'EdDSA' }, 'EdDSA'), { algorithms: ['EdDSA'] });
  } catch {
    throw refused('the approver signature does not verify', { approver: record.name });
  }
  const c = claims.data;
  const mismatched = (['workflowId', 'runId', 'requestId', 'action', 'approved', 'reason'] as const).filter((k) => c[k] !== expected[k]);
  if (mismatched.length > 0) throw refused(`the signature is for another decision (${mismatched.join(', ')} differ)`, { approver: record.name, fields: mismatched });
  if (Math.abs(now - c.iat * 1000) > APPROVAL_MAX_AGE_MS) {
    throw refused(`the decision was signed at ${new Date(c.iat * 1000).toISOString()}, more than ${APPROVAL_MAX_AGE_MS / 60_000} minutes from now`, { approver: record.name });
  }
  return { approver: record.name, kid: record.kid, signedAt: new Date(c.iat * 1000).toISOString() };
}
