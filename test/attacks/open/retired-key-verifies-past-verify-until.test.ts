/**
 * Open finding (pre-existing: the old jose path, 0d3f64d~4, fails this test the same way;
 * `VerificationKeySet.find` in identity/token-verification.ts): keystore.ts promises that "a
 * retired key keeps verifying until `retiredAt + maxTokenLifetime`", but a verifier re-reads its
 * keys only when a kid it does not hold shows up. A verifier that loaded the set while the retired
 * key was still in its window (any verification after the rotation) keeps trusting that key after
 * `verifyUntil`, as long as every token names a kid it holds: the worker's own gate
 * (`gateOf` in activities/run-tool.ts, `keys: keystore`) for the worker's life. jose, given the
 * keystore's key set at the time of the call, refuses the token (ERR_JWKS_NO_MATCHING_KEY).
 *
 * Attack: a key is rotated out because it leaked. Past its verifyUntil, the holder of the old key
 * signs a fresh credential (new jti, exp a minute ahead) under the old kid; the gate accepts it.
 * (Until the next open or rotation prunes it, the private key file is even still on disk.)
 *
 * Severity: medium (a retired, possibly compromised key stays trusted without bound).
 *
 * Suggested fix: check a key's window where it is used, not only where the set is loaded: keep
 * `verifyUntil` with each key of the set (for a keystore, `jwks()` is in memory: re-read it, or
 * carry the window), and refuse a key past it with ERR_CREDENTIAL_KID_UNKNOWN; for jwks.json
 * readers, write the window into the file (or prune it when the window ends) and reload on a
 * timer as well as on an unknown kid.
 *
 * Real parts: the real keystore, rotation, verifier and SQLite stores; real signatures.
 */
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../../identity/credential';
import { codeOf, createAuthority, privateKeyOf, signCompact, type Authority } from '../../identity/identity-test-kit';

const TOOL = 'fs.read';
const SCOPE = ['fs.read:notes.txt'];

for (const alg of ['EdDSA', 'ES256'] as const) {
  describe(`${alg}: a retired key past its verifyUntil`, () => {
    let a: Authority;
    beforeAll(async () => {
      a = await createAuthority(`retired-${alg.toLowerCase()}`, alg);
    });
    afterAll(() => a.close());

    it('no longer verifies at a gate that loaded it in its window', async () => {
      const verify = (token: string) => a.verifier.verify(token, { tool: TOOL, requiredScope: SCOPE });
      const oldKid = a.keystore.activeKid();
      expect(await codeOf(verify((await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE })).token))).toBe('ok');

      await a.keystore.rotate({ maxTokenLifetimeMs: 60_000 });
      // The gate sees the new kid and reloads: the retired key is still in its window then.
      const withNewKey = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      expect(await codeOf(verify(withNewKey.token))).toBe('ok');

      a.time.advance(120_000); // past verifyUntil (rotation + 60 s); the root grant runs 10 minutes
      expect(a.keystore.jwks().keys.map((k) => k.kid)).not.toContain(oldKid);
      const now = Math.floor(a.time.now / 1000);
      const forged = signCompact({ alg, kid: oldKid, typ: 'warden-call+jwt' }, { ...withNewKey.claims, jti: randomUUID(), iat: now, nbf: now, exp: now + 60 }, privateKeyOf(a.keystore, oldKid));

      // The reference, with the keystore's key set now: no key has that kid.
      const joseCode = await jwtVerify(forged, createLocalJWKSet(a.keystore.jwks() as Parameters<typeof createLocalJWKSet>[0]), { currentDate: new Date(a.time.now) }).then(
        () => 'ok',
        (error: { code?: string }) => error.code,
      );
      expect(joseCode).toBe('ERR_JWKS_NO_MATCHING_KEY');
      expect(await codeOf(verify(forged))).toBe('ERR_CREDENTIAL_KID_UNKNOWN'); // current code: 'ok'
    });
  });
}
