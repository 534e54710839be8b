import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { assertNoSecrets, findSecrets, findSecretsIn, redactSecrets } from '../../identity/redact';
import { createAuthority, type Authority } from './identity-test-kit';

let a: Authority;
let token: string;
let privateJwkFile: string;
beforeAll(async () => {
  a = await createAuthority('redact');
  ({ token } = await mintCallCredential(a.keystore, a.root, { tool: 'fs.read', scope: ['fs.read:notes.txt'] }));
  privateJwkFile = fs.readFileSync(path.join(a.keystore.dir, `${a.keystore.activeKid()}.jwk.json`), 'utf8');
});
afterAll(() => a.close());

/** A Temporal history event as `fetchHistory()` returns it: payload data is base64 JSON (or bytes). */
function historyEvent(value: unknown, asBytes = false) {
  const data = Buffer.from(JSON.stringify(value));
  return { eventType: 'ACTIVITY_TASK_SCHEDULED', attributes: { input: { payloads: [{ metadata: { encoding: 'anNvbi9wbGFpbg==' }, data: asBytes ? new Uint8Array(data) : data.toString('base64') }] } } };
}

describe('finding leaked credentials', () => {
  it.each([
    ['plain text', () => `Authorization: Bearer ${token}`],
    ['a JSON string', () => JSON.stringify({ headers: { authorization: token } })],
    ['JSON inside JSON', () => JSON.stringify({ log: JSON.stringify({ token }) })],
    ['a base64 Temporal payload', () => JSON.stringify(historyEvent({ args: [{ credential: token }] }))],
    ['the grant token', () => `grant=${a.root.token}`],
  ])('finds a token in %s', (_where, text) => {
    expect(findSecrets(text()).length).toBeGreaterThan(0);
  });

  it('finds tokens in values: nested objects, byte arrays, base64 payloads', () => {
    expect(findSecretsIn(historyEvent({ token }, true))).toEqual([token]);
    expect(findSecretsIn(historyEvent({ token }))).toEqual([token]);
    expect(findSecretsIn({ steps: [{ output: `x ${token} y` }] })).toEqual([token]);
  });

  it('finds private key material: a JWK "d", escaped or not, and PEM', () => {
    const d = JSON.parse(privateJwkFile).d as string;
    expect(findSecrets(privateJwkFile)).toEqual([d]);
    expect(findSecrets(JSON.stringify({ file: privateJwkFile }))).toEqual([d]);
    expect(findSecretsIn(historyEvent(JSON.parse(privateJwkFile)))).toEqual([d]);
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect(findSecrets(`key:\n${pem}`)).toHaveLength(1);
  });

  it('stays quiet on what may be recorded: ids, hashes, claims, the JWKS', async () => {
    const { claims } = await mintCallCredential(a.keystore, a.root, { tool: 'fs.read', scope: [] });
    expect(findSecretsIn({ jti: claims.jti, grant: a.root.id, hash: a.root.hash, claims, grantClaims: a.root.claims, jwks: a.keystore.jwks() })).toEqual([]);
    expect(findSecretsIn(historyEvent({ claims, note: 'eyJ is how JSON starts in base64' }))).toEqual([]);
    expect(() => assertNoSecrets({ claims }, 'history')).not.toThrow();
  });

  it('assertNoSecrets names the kind, never the secret; redactSecrets replaces it', () => {
    expect(() => assertNoSecrets({ log: token }, 'worker log')).toThrow(/^worker log: 1 secret\(s\) found: JWS\(\d+ chars\)$/);
    try {
      assertNoSecrets({ log: token }, 'worker log');
    } catch (error) {
      expect((error as Error).message).not.toContain(token.slice(0, 20));
    }
    const redacted = redactSecrets(`calling with ${token} now`);
    expect(redacted).toMatch(/^calling with \[redacted JWS\(\d+ chars\)\] now$/);
  });
});
