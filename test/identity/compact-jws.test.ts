/**
 * Credentials are signed and verified with node:crypto (identity/compact-jws.ts) instead of
 * jose's WebCrypto path (issue 17). This pins that nothing changed on the wire or at the gate:
 * tokens the keystore signs verify with jose's `jwtVerify` and tokens jose's `SignJWT` signs
 * with the same key verify at Warden's gate (both algorithms; Ed25519 byte for byte), and every
 * tampered token is refused with its Warden code, while jose, run as the reference with the
 * options the gate used to pass it, refuses it too (with the jose code that maps to that Warden code).
 */
import { createHash, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential, type MintedCredential } from '../../identity/credential';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { b64url, codeOf, createAuthority, foreignEd25519Key, privateKeyOf, signCompact, type Authority } from './identity-test-kit';

const TOOL = 'fs.read';
const SCOPE = ['fs.read:notes.txt'];
const TYP = 'warden-call+jwt';

/** A compact JWS over exactly these base64url parts, signed by `key` (so the payload may be any bytes). */
function signParts(headerPart: string, payloadPart: string, key: KeyObject): string {
  const input = `${headerPart}.${payloadPart}`;
  const signature = key.asymmetricKeyType === 'ed25519' ? cryptoSign(null, Buffer.from(input), key) : cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** Changes one character in the middle of the signature part (a bit the signature really carries). */
function flipSignature(token: string): string {
  const parts = token.split('.') as [string, string, string];
  const i = Math.floor(parts[2].length / 2);
  parts[2] = `${parts[2].slice(0, i)}${parts[2][i] === 'A' ? 'B' : 'A'}${parts[2].slice(i + 1)}`;
  return parts.join('.');
}

/** jose's verdict on `token` with the options Warden's gate passed to jwtVerify before compact-jws.ts: "ok" or jose's error code. */
async function joseVerdict(a: Authority, token: string, tool = TOOL): Promise<string> {
  try {
    await jwtVerify(token, createLocalJWKSet(a.keystore.jwks() as Parameters<typeof createLocalJWKSet>[0]), {
      algorithms: [a.keystore.signer().alg],
      crit: {},
      typ: TYP,
      issuer: 'warden',
      audience: `tool:${tool}`,
      currentDate: new Date(a.time.now),
      clockTolerance: 0,
      requiredClaims: ['jti', 'iat', 'nbf', 'exp', 'sub'],
    });
    return 'ok';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}

for (const alg of ['EdDSA', 'ES256'] as const) {
  describe(`${alg} credentials through node:crypto`, () => {
    let a: Authority;
    const mint = (): Promise<MintedCredential> => mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
    const verify = (token: string, tool = TOOL) => a.verifier.verify(token, { tool, requiredScope: tool === TOOL ? SCOPE : [] });
    const key = () => privateKeyOf(a.keystore, a.keystore.activeKid());
    const header = () => ({ alg, kid: a.keystore.activeKid(), typ: TYP });

    beforeAll(async () => {
      a = await createAuthority(`jws-${alg.toLowerCase()}`, alg);
    });
    afterAll(() => a.close());

    it('a credential the keystore signs verifies with jose, and one jose signs with the same key verifies at the gate', async () => {
      const minted = await mint();
      const { payload, protectedHeader } = await jwtVerify(minted.token, createLocalJWKSet(a.keystore.jwks() as Parameters<typeof createLocalJWKSet>[0]), {
        currentDate: new Date(a.time.now),
      });
      expect(protectedHeader).toEqual(header());
      expect(payload).toEqual(minted.claims);

      const jwk = Object.fromEntries(Object.entries(privateKeyOf(a.keystore, a.keystore.activeKid()).export({ format: 'jwk' })));
      const joseSigned = await new SignJWT({ ...minted.claims, jti: randomUUID() }).setProtectedHeader(header()).sign(await importJWK(jwk, alg));
      expect(await codeOf(verify(joseSigned))).toBe('ok');
      if (alg === 'EdDSA') {
        // Ed25519 signatures are deterministic: the same claims give the very same token.
        const again = await new SignJWT(minted.claims).setProtectedHeader(header()).sign(await importJWK(jwk, alg));
        expect(createHash('sha256').update(again).digest('hex')).toBe(createHash('sha256').update(minted.token).digest('hex'));
      }
    });

    // [what, token (built now), Warden code, jose's code for the same token (undefined: refused before jose was asked)]
    const rows: [string, () => Promise<string>, string, string | undefined][] = [
      ['alg none', async () => `${b64url({ alg: 'none', kid: a.keystore.activeKid(), typ: TYP })}.${(await mint()).token.split('.')[1]}.`, 'ERR_CREDENTIAL_UNSIGNED', undefined],
      ['unknown kid', async () => signCompact({ ...header(), kid: 'not-a-warden-key' }, (await mint()).claims, key()), 'ERR_CREDENTIAL_KID_UNKNOWN', undefined],
      ['wrong typ', async () => signCompact({ ...header(), typ: 'warden-grant+jwt' }, (await mint()).claims, key()), 'ERR_CREDENTIAL_TYPE', 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['one signature character changed', async () => flipSignature((await mint()).token), 'ERR_CREDENTIAL_SIGNATURE', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['signature removed', async () => `${(await mint()).token.split('.').slice(0, 2).join('.')}.`, 'ERR_CREDENTIAL_SIGNATURE', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['signature one character short of base64', async () => `${(await mint()).token.split('.').slice(0, 2).join('.')}.AAAAA`, 'ERR_CREDENTIAL_MALFORMED', 'ERR_JWS_INVALID'],
      ['another credential’s signature', async () => `${(await mint()).token.split('.').slice(0, 2).join('.')}.${(await mint()).token.split('.')[2]}`, 'ERR_CREDENTIAL_SIGNATURE', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['claims signed by a foreign key under the real kid', async () => signCompact(header(), (await mint()).claims, alg === 'EdDSA' ? foreignEd25519Key() : foreignP256()), 'ERR_CREDENTIAL_SIGNATURE', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['wrong issuer, signed', async () => signCompact(header(), { ...(await mint()).claims, iss: 'not-warden' }, key()), 'ERR_CREDENTIAL_ISSUER', 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no jti, signed', async () => signCompact(header(), { ...(await mint()).claims, jti: undefined }, key()), 'ERR_CREDENTIAL_MALFORMED', 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['exp a string, signed', async () => signCompact(header(), { ...(await mint()).claims, exp: 'tomorrow' }, key()), 'ERR_CREDENTIAL_MALFORMED', 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['payload an array, signed', async () => signParts(b64url(header()), b64url('[1,2]'), key()), 'ERR_CREDENTIAL_MALFORMED', 'ERR_JWT_INVALID'],
      ['payload not UTF-8, signed', async () => signParts(b64url(header()), Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url'), key()), 'ERR_CREDENTIAL_MALFORMED', 'ERR_JWT_INVALID'],
      ['nbf in the future, signed', async () => signCompact(header(), { ...(await mint()).claims, nbf: Math.floor(a.time.now / 1000) + 30 }, key()), 'ERR_CREDENTIAL_NOT_YET_VALID', 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['exp now, signed', async () => signCompact(header(), { ...(await mint()).claims, exp: Math.floor(a.time.now / 1000) }, key()), 'ERR_CREDENTIAL_EXPIRED', 'ERR_JWT_EXPIRED'],
    ];
    it.each(rows)('refuses %s', async (_what, build, code, joseCode) => {
      const token = await build();
      if (joseCode !== undefined) expect(await joseVerdict(a, token)).toBe(joseCode);
      expect(await codeOf(verify(token))).toBe(code);
    });

    it('a key node:crypto cannot import (a point off the curve) stops only the tokens naming it', async () => {
      const offCurve = { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43), kid: 'off-curve', alg: 'ES256', use: 'sig' } as const;
      const verifier = createCredentialVerifier({ keys: () => ({ keys: [offCurve, ...a.keystore.jwks().keys] }), replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
      const naming = signCompact({ alg: 'ES256', kid: 'off-curve', typ: TYP }, (await mint()).claims, foreignP256());
      expect(await codeOf(verifier.verify(naming, { tool: TOOL, requiredScope: SCOPE }))).toBe('ERR_CREDENTIAL_MALFORMED');
      expect(await codeOf(verifier.verify((await mint()).token, { tool: TOOL, requiredScope: SCOPE }))).toBe('ok');
    });

    it('refuses a credential for another tool, an expired one, a replayed one and one of a revoked grant', async () => {
      const forOther = await mint();
      expect(await joseVerdict(a, forOther.token, 'fs.write')).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
      expect(await codeOf(verify(forOther.token, 'fs.write'))).toBe('ERR_CREDENTIAL_AUDIENCE');

      const expiring = await mint();
      a.time.advance(61_000);
      expect(await joseVerdict(a, expiring.token)).toBe('ERR_JWT_EXPIRED');
      expect(await codeOf(verify(expiring.token))).toBe('ERR_CREDENTIAL_EXPIRED');
      a.time.advance(-61_000);

      const once = await mint();
      expect(await codeOf(verify(once.token))).toBe('ok');
      expect(await codeOf(verify(once.token))).toBe('ERR_CREDENTIAL_REPLAYED');

      const beforeRevocation = await mint();
      await a.stores.revocation.revokeGrant(a.root.id, 'task ended');
      expect(await joseVerdict(a, beforeRevocation.token)).toBe('ok');
      expect(await codeOf(verify(beforeRevocation.token))).toBe('ERR_CREDENTIAL_REVOKED');
    });
  });
}

function foreignP256(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}
