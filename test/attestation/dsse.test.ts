/**
 * DSSE envelopes (secure-systems-lab/dsse protocol.md) and in-toto Statements v1: the PAE matches
 * the spec's example, envelopes verify only with a trusted key, and every kind of alteration fails.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { byteSignerFromKey, preAuthEncoding, signEnvelope, verifyEnvelope, IN_TOTO_PAYLOAD_TYPE, type DsseEnvelope } from '../../attestation/dsse';
import { claimPredicateType, jsonSubject, openStatement, signStatement, STATEMENT_TYPE, type Statement } from '../../attestation/in-toto-statement';
import type { Jwks, PublicJwk } from '../../identity/claims';

function keyPair(type: 'ed25519' | 'p256', kid: string) {
  const { privateKey, publicKey } = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const published = (type === 'ed25519' ? { ...jwk, kid, alg: 'EdDSA', use: 'sig' } : { ...jwk, kid, alg: 'ES256', use: 'sig' }) as PublicJwk;
  return { signer: byteSignerFromKey(privateKey, kid), jwk: published };
}

const statement: Statement = {
  _type: STATEMENT_TYPE,
  subject: [jsonSubject('workflow:wf-1/run-1', { workflowId: 'wf-1', runId: 'run-1' })],
  predicateType: claimPredicateType('sql.count'),
  predicate: { claim: { kind: 'sql.count', database: 'app', table: 'items', where: {}, equals: 3 }, verdict: 'verified', observed: 3 },
};

describe('PAE', () => {
  it('matches the example of the DSSE protocol', () => {
    expect(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });
  it('counts bytes, not characters', () => {
    expect(preAuthEncoding('t', Buffer.from('é', 'utf8')).toString('utf8')).toBe('DSSEv1 1 t 2 é');
    expect(preAuthEncoding('', Buffer.alloc(0)).toString()).toBe('DSSEv1 0  0 ');
  });
});

describe.each(['ed25519', 'p256'] as const)('envelopes signed with %s', (type) => {
  const trusted = keyPair(type, 'warden-key-1');
  const stranger = keyPair(type, 'warden-key-1'); // same kid, other key: a forged key id
  const jwks: Jwks = { keys: [trusted.jwk] };

  it('verify with the published key and give back the Statement', async () => {
    const envelope = await signStatement(statement, trusted.signer);
    const opened = openStatement(envelope, jwks);
    expect(opened.statement).toEqual(statement);
    expect(opened.keyids).toEqual(['warden-key-1']);
  });

  const tamper: Array<[string, (e: DsseEnvelope) => DsseEnvelope, string]> = [
    ['payload changed', (e) => ({ ...e, payload: Buffer.from(Buffer.from(e.payload, 'base64').toString().replace('"observed":3', '"observed":4')).toString('base64') }), 'ERR_ATTESTATION_SIGNATURE'],
    ['payload type changed', (e) => ({ ...e, payloadType: 'application/json' }), 'ERR_ATTESTATION_PAYLOAD_TYPE'],
    ['signature bytes flipped', (e) => ({ ...e, signatures: e.signatures.map((s) => ({ ...s, sig: Buffer.from(Buffer.from(s.sig, 'base64').map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64') })) }), 'ERR_ATTESTATION_SIGNATURE'],
    ['unknown key id', (e) => ({ ...e, signatures: e.signatures.map((s) => ({ ...s, keyid: 'someone-else' })) }), 'ERR_ATTESTATION_KEY_UNKNOWN'],
    ['no signatures', (e) => ({ ...e, signatures: [] }), 'ERR_ATTESTATION_MALFORMED'],
    ['extra field', (e) => ({ ...e, extra: 1 }) as DsseEnvelope, 'ERR_ATTESTATION_MALFORMED'],
  ];
  it.each(tamper)('fail when %s', async (_name, change, code) => {
    const envelope = await signStatement(statement, trusted.signer);
    expect(() => openStatement(change(structuredClone(envelope)), jwks)).toThrow(expect.objectContaining({ code }));
  });

  it('fail when signed by another key under the trusted key id', async () => {
    const forged = await signStatement(statement, stranger.signer);
    expect(() => openStatement(forged, jwks)).toThrow(expect.objectContaining({ code: 'ERR_ATTESTATION_SIGNATURE' }));
  });

  it('fail when a good signature sits next to a bad one by a trusted key', async () => {
    const good = await signStatement(statement, trusted.signer);
    const forged = await signStatement(statement, stranger.signer);
    expect(() => verifyEnvelope({ ...good, signatures: [...good.signatures, ...forged.signatures] }, jwks)).toThrow(expect.objectContaining({ code: 'ERR_ATTESTATION_SIGNATURE' }));
  });

  it('refuse a payload that is not a Statement v1', async () => {
    const envelope = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', subject: [] })), trusted.signer);
    expect(() => openStatement(envelope, jwks)).toThrow(expect.objectContaining({ code: 'ERR_ATTESTATION_MALFORMED' }));
  });
});
