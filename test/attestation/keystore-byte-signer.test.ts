/**
 * Warden signs attestations with the credential authority's own key, through the keystore: the
 * private key stays a non-extractable CryptoKey inside it, the signature verifies with the public
 * JWKS only, for Ed25519 and for P-256 (whose WebCrypto r||s form is re-encoded as DER), across a
 * rotation, and with a key from a key source (WARDEN_SIGNING_KEY_FILE).
 */
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signEnvelope, verifyEnvelope, IN_TOTO_PAYLOAD_TYPE } from '../../attestation/dsse';
import { openKeySourceKeystore } from '../../identity/key-source-keystore';
import { openKeystore, p1363ToDer, type Keystore } from '../../identity/keystore';
import { findSecretsIn } from '../../identity/redact';
import { makeTempDir } from '../identity/identity-test-kit';

async function roundTrip(keystore: Keystore, message: string) {
  const envelope = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(message), keystore.byteSigner());
  return verifyEnvelope(envelope, keystore.jwks());
}

describe('the keystore as a byte signer', () => {
  it.each(['EdDSA', 'ES256'] as const)('signs DSSE envelopes with its %s key; the JWKS verifies them', async (alg) => {
    const keystore = await openKeystore({ stateDir: makeTempDir('byte-signer'), alg });
    const opened = await roundTrip(keystore, '{"hello":"world"}');
    expect(opened.keyids).toEqual([keystore.activeKid()]);
    expect(opened.payload.toString()).toBe('{"hello":"world"}');
    // Nothing about the signer leaks its key.
    expect(findSecretsIn([keystore.byteSigner(), JSON.stringify(keystore.byteSigner())])).toEqual([]);
  });

  it('signs with the key active at signing time, across a rotation', async () => {
    const keystore = await openKeystore({ stateDir: makeTempDir('byte-rotate') });
    const signer = keystore.byteSigner();
    const first = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('a'), signer);
    await keystore.rotate({ maxTokenLifetimeMs: 60_000, alg: 'ES256' });
    const second = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from('b'), signer);
    expect(second.signatures[0]?.keyid).toBe(keystore.activeKid());
    expect(first.signatures[0]?.keyid).not.toBe(second.signatures[0]?.keyid);
    // The retired key still verifies during its window: both envelopes check with the published set.
    for (const envelope of [first, second]) expect(verifyEnvelope(envelope, keystore.jwks()).keyids).toHaveLength(1);
  });

  it('signs with a key from a key source', async () => {
    const dir = makeTempDir('byte-keyfile');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = join(dir, 'signing.jwk.json');
    fs.writeFileSync(file, JSON.stringify(privateKey.export({ format: 'jwk' })), { mode: 0o600 });
    const keystore = await openKeySourceKeystore(file);
    expect((await roundTrip(keystore, 'x')).keyids).toEqual([keystore.activeKid()]);
  });
});

describe('P1363 to DER', () => {
  it('re-encodes WebCrypto ECDSA signatures so node:crypto verifies them as DER (many signatures: high bits and leading zeros)', async () => {
    const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const nodeKey = createPublicKey({ key: (await crypto.subtle.exportKey('jwk', publicKey)) as never, format: 'jwk' });
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, data));
      const der = p1363ToDer(raw);
      expect(verify('sha256', data, nodeKey, Buffer.from(der)), `signature ${i}`).toBe(true);
      expect(verify('sha256', data, { key: nodeKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(raw))).toBe(true);
    }
  });

  it('refuses a signature that is not 64 bytes', () => {
    expect(() => p1363ToDer(new Uint8Array(63))).toThrow(TypeError);
  });
});
