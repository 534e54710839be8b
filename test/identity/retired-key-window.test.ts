/**
 * Regression test, moved from test/attacks/open/ (issue 17). Fixed: a retired key's public JWK
 * carries its window's end as `exp` (keystore `jwks()`, jwks.json, rows published to the shared
 * database), `VerificationKeySet.find` refuses a key past it at every use, and a key set older
 * than 30 s on the verifier's clock is re-read at its next use, so a window set after a verifier
 * loaded the key reaches it too. The table below covers the class: key sources × when the
 * verifier loaded the key × either side of the window's end; and a jwks.json written before
 * windows (no `exp`) still loads.
 *
 * The finding as it was reported (pre-existing: the old jose path, 0d3f64d~4, fails this test the same way;
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
import { randomUUID, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential, type MintedCredential } from '../../identity/credential';
import { KEYS_DIR, readJwksFile } from '../../identity/keystore';
import type { KeySource } from '../../identity/token-verification';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { codeOf, createAuthority, privateKeyOf, signCompact, type Authority } from './identity-test-kit';

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

const SOURCES: [string, (a: Authority) => KeySource][] = [
  ['the keystore (the worker’s own gate)', (a) => a.keystore],
  ['jwks.json (the sandbox host)', (a) => () => readJwksFile(a.stateDir)],
];
const LOADED = ['after the rotation (its new kid)', 'before the rotation, never seeing the new kid'] as const;
const WINDOW_MS = 60_000;
const AT: [string, number, string][] = [
  ['1 s before the window ends', WINDOW_MS - 1000, 'ok'],
  ['when the window ends', WINDOW_MS, 'ERR_CREDENTIAL_KID_UNKNOWN'],
  ['an hour after', WINDOW_MS + 3_600_000, 'ERR_CREDENTIAL_KID_UNKNOWN'],
];

describe.each(['EdDSA', 'ES256'] as const)('%s: a retired key verifies only inside its window, wherever its verifier loaded it', (alg) => {
  const cases = SOURCES.flatMap(([source, keysOf]) => LOADED.flatMap((loaded) => AT.map(([at, offset, expected]) => ({ source, keysOf, loaded, at, offset, expected }))));
  it.each(cases)('$source, loaded $loaded, $at: $expected', async ({ keysOf, loaded, offset, expected }) => {
    const a = await createAuthority(`window-${alg.toLowerCase()}`, alg);
    try {
      const verifier = createCredentialVerifier({ keys: keysOf(a), replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
      const verify = (token: string) => verifier.verify(token, { tool: TOOL, requiredScope: SCOPE });
      const oldKid = a.keystore.activeKid();
      const oldKey: KeyObject = privateKeyOf(a.keystore, oldKid);
      const template: MintedCredential = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      expect(await codeOf(verify(template.token))).toBe('ok'); // the verifier has loaded the old key, without a window

      const rotatedAt = a.time.now;
      await a.keystore.rotate({ maxTokenLifetimeMs: WINDOW_MS });
      const expectedExp = Math.floor((rotatedAt + WINDOW_MS) / 1000);
      expect(readJwksFile(a.stateDir).keys.find((k) => k.kid === oldKid)?.exp).toBe(expectedExp);
      if (loaded.startsWith('after')) expect(await codeOf(verify((await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE })).token))).toBe('ok');

      a.time.advance(offset);
      const now = Math.floor(a.time.now / 1000);
      const signedWithOldKey = signCompact({ alg, kid: oldKid, typ: 'warden-call+jwt' }, { ...template.claims, jti: randomUUID(), iat: now, nbf: now, exp: now + 30 }, oldKey);
      expect(await codeOf(verify(signedWithOldKey))).toBe(expected);
    } finally {
      a.close();
    }
  });
});

describe('a jwks.json written before key windows (no exp)', () => {
  it('still loads, and its retired key verifies until the file drops it', async () => {
    const a = await createAuthority('window-legacy');
    try {
      const oldKid = a.keystore.activeKid();
      const oldKey = privateKeyOf(a.keystore, oldKid);
      const template = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      await a.keystore.rotate({ maxTokenLifetimeMs: WINDOW_MS });
      const file = join(a.stateDir, KEYS_DIR, 'jwks.json');
      const legacy = { keys: readJwksFile(a.stateDir).keys.map(({ exp: _exp, ...jwk }) => jwk) };
      fs.writeFileSync(file, `${JSON.stringify(legacy, null, 2)}\n`);
      expect(readJwksFile(a.stateDir)).toEqual(legacy);

      const verifier = createCredentialVerifier({ keys: () => readJwksFile(a.stateDir), replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
      const now = Math.floor(a.time.now / 1000);
      const token = signCompact({ alg: 'EdDSA', kid: oldKid, typ: 'warden-call+jwt' }, { ...template.claims, jti: randomUUID(), iat: now, nbf: now, exp: now + 30 }, oldKey);
      expect(await codeOf(verifier.verify(token, { tool: TOOL, requiredScope: SCOPE }))).toBe('ok');
    } finally {
      a.close();
    }
  });
});
