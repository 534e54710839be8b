/**
 * Signed approval decisions: only a registered, unremoved approver's key verifies, and only for
 * the exact decision it signed. Table-driven forgeries, each refused with
 * ERR_APPROVAL_UNAUTHENTICATED naming why; the registry refuses a taken name.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlattenedSign, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialError, WardenError } from '../../errors';
import { APPROVAL_MAX_AGE_MS, issueApproverKey, signApprovalDecision, verifyApprovalDecision, type ApproverKeyFile, type ExpectedDecision, type SignedDecision } from '../../identity/approval-decision';
import { openApproverStore, type ApproverStore } from '../../identity/approver-registry';
import { findSecretsIn } from '../../identity/redact';

let store: ApproverStore;
let alice: ApproverKeyFile;
let bob: ApproverKeyFile;
/** A key file naming alice but holding a key Warden never issued. */
let impostor: ApproverKeyFile;

const decision: ExpectedDecision = { workflowId: 'wf-1', runId: 'run-1', requestId: 'req-1', action: 'digest-1', approved: true, reason: 'ok' };

beforeAll(async () => {
  store = openApproverStore({ stateDir: mkdtempSync(join(tmpdir(), 'warden-approvers-')) });
  alice = (await issueApproverKey(store, { name: 'alice' })).keyFile;
  bob = (await issueApproverKey(store, { name: 'bob' })).keyFile;
  const other = openApproverStore({ stateDir: mkdtempSync(join(tmpdir(), 'warden-approvers-other-')) });
  impostor = { ...(await issueApproverKey(other, { name: 'alice' })).keyFile };
  other.close();
  store.remove('bob');
});
afterAll(() => store.close());

async function refusal(signed: unknown, expected: ExpectedDecision = decision, now?: number): Promise<string> {
  try {
    await verifyApprovalDecision(store, signed, expected, now);
    return 'verified';
  } catch (error) {
    if (error instanceof CredentialError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

async function withHeader(header: Record<string, unknown>, payload: object): Promise<SignedDecision> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(header as { alg: string }).sign(privateKey);
  return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
}

describe('verifyApprovalDecision', () => {
  it("verifies the registered approver's own decision and says who and with which key", async () => {
    const verified = await verifyApprovalDecision(store, await signApprovalDecision(alice, decision), decision);
    expect(verified).toMatchObject({ approver: 'alice', kid: alice.kid });
  });

  it('the signed decision holds no secret (it goes into history)', async () => {
    expect(findSecretsIn(await signApprovalDecision(alice, decision))).toEqual([]);
  });

  const cases: { name: string; make: () => Promise<unknown>; expected?: ExpectedDecision; now?: number; why: RegExp }[] = [
    { name: 'no signature at all', make: async () => undefined, why: /carries no approver signature/ },
    { name: 'a bare name instead of a signature', make: async () => 'alice', why: /carries no approver signature/ },
    { name: 'a key Warden never issued, under a registered name', make: () => signApprovalDecision(impostor, decision), why: /not signed with the key issued to "alice"/ },
    { name: 'an unregistered approver', make: () => signApprovalDecision({ ...impostor, name: 'mallory' }, decision), why: /"mallory" is not a registered approver/ },
    { name: 'a removed approver', make: () => signApprovalDecision(bob, decision), why: /approver "bob" was removed/ },
    { name: 'another request', make: () => signApprovalDecision(alice, { ...decision, requestId: 'req-2' }), why: /another decision \(requestId differ\)/ },
    { name: 'another run of the workflow', make: () => signApprovalDecision(alice, { ...decision, runId: 'run-0' }), why: /runId differ/ },
    { name: 'another task', make: () => signApprovalDecision(alice, { ...decision, workflowId: 'wf-2' }), why: /workflowId differ/ },
    { name: 'another action', make: () => signApprovalDecision(alice, { ...decision, action: 'digest-2' }), why: /action differ/ },
    { name: 'a deny sent as an approve', make: () => signApprovalDecision(alice, { ...decision, approved: false }), why: /approved differ/ },
    { name: 'another reason', make: () => signApprovalDecision(alice, { ...decision, reason: 'other' }), why: /reason differ/ },
    { name: 'a decision signed long ago', make: () => signApprovalDecision(alice, decision, Date.now() - APPROVAL_MAX_AGE_MS - 60_000), why: /more than 10 minutes from now/ },
    { name: 'a decision dated in the future', make: () => signApprovalDecision(alice, decision, Date.now() + APPROVAL_MAX_AGE_MS + 60_000), why: /more than 10 minutes from now/ },
    {
      name: 'a tampered payload',
      make: async () => {
        const signed = await signApprovalDecision(alice, { ...decision, approved: false });
        const claims = JSON.parse(Buffer.from(signed.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
        return { ...signed, payload: Buffer.from(JSON.stringify({ ...claims, approved: true })).toString('base64url') };
      },
      why: /signature does not verify/,
    },
    {
      name: 'a header carrying its own key',
      make: async () => withHeader({ alg: 'EdDSA', typ: 'warden-approval+jws', kid: alice.kid, jwk: alice.privateJwk }, { ...decision, approver: 'alice', iat: Math.floor(Date.now() / 1000), jti: 'x' }),
      why: /header must be exactly/,
    },
    {
      name: 'another algorithm',
      make: async () => withHeader({ alg: 'HS256', typ: 'warden-approval+jws', kid: alice.kid }, { ...decision, approver: 'alice', iat: 1, jti: 'x' }).catch(() => ({ protected: Buffer.from('{"alg":"none","typ":"warden-approval+jws","kid":"k"}').toString('base64url'), payload: 'e30', signature: 'x' })),
      why: /header must be exactly/,
    },
  ];

  it.each(cases)('refuses $name', async ({ make, expected, now, why }) => {
    const outcome = await refusal(await make(), expected, now);
    expect(outcome).toMatch(/^ERR_APPROVAL_UNAUTHENTICATED: /);
    expect(outcome).toMatch(why);
  });
});

describe('the approver registry', () => {
  it('refuses a name already registered, also after removal, and a malformed name', async () => {
    for (const name of ['alice', 'bob']) {
      const error = await issueApproverKey(store, { name }).catch((e: unknown) => e);
      expect((error as WardenError).code).toBe('ERR_APPROVER_INVALID');
    }
    const bad = await issueApproverKey(store, { name: 'Alice Smith' }).catch((e: unknown) => e);
    expect((bad as WardenError).code).toBe('ERR_APPROVER_INVALID');
  });

  it('lists approvers with their status', async () => {
    expect((await store.list()).map((r) => [r.name, r.revokedAt === undefined])).toEqual([
      ['alice', true],
      ['bob', false],
    ]);
  });
});
