/**
 * Regression test, moved from test/attacks/open/ (issue 17). Fixed: `VerificationKeySet` gives a
 * kid listed more than once no key (ERR_CREDENTIAL_KID_UNKNOWN, as jose), whatever the order and
 * even when both entries are the same key, without touching the set's other kids; and a JWKS file
 * listing a kid twice (`readJwksFileAt`: the keystore's jwks.json, the sandbox host's `jwksFile`)
 * is refused where it is read, ERR_KEYSTORE_INVALID naming the file and the kid.
 *
 * The finding as it was reported (0d3f64d / 424fa3c, `VerificationKeySet` in identity/token-verification.ts): when the
 * key set lists two keys under one kid, the gate silently trusts the LAST one (`byKid` is a Map
 * built in list order) and verifies the token with it. jose's `createLocalJWKSet`, which the gate
 * used before 424fa3c and which the tests take as the reference, refuses such a token
 * (ERR_JWKS_MULTIPLE_MATCHING_KEYS, mapped to ERR_CREDENTIAL_KID_UNKNOWN): it does not guess which
 * of two keys a kid means. So a token the old code refused is now accepted (key order: foreign,
 * real) and a valid one is refused with a misleading ERR_CREDENTIAL_SIGNATURE (order: real, foreign).
 *
 * Where such a set comes from: the sandbox host's `jwksFile` option (a JWKS an operator supplies,
 * e.g. merged from several sources) or any loader passed as a KeySource; `JwksSchema` does not
 * require unique kids (the keystore's index does, claims.ts vs keystore.ts).
 *
 * Severity: low. Both keys are in the trusted set, so this needs a bad key set rather than a forged
 * token; but which key a kid names then depends on list order, silently.
 *
 * Suggested fix: refuse the key set where it is loaded (`JwksSchema` refine: unique kids, a clear
 * error naming the kid), or refuse tokens naming a kid listed twice, ERR_CREDENTIAL_KID_UNKNOWN,
 * as jose and the old code did.
 *
 * Real parts: the real keystore, verifier and SQLite stores; jose 6 as the reference.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublicJwk } from '../../identity/claims';
import { mintCallCredential } from '../../identity/credential';
import { readJwksFileAt } from '../../identity/keystore';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { createCredentialGate } from '../../sandbox/credential-gate';
import { getBuiltinTool } from '../../tools/builtin-tools';
import { SANDBOX_PROBE_CALL } from '../../sandbox/sandbox-messages';
import { codeOf, createAuthority, errorOf, type Authority } from './identity-test-kit';

const TOOL = 'fs.read';
const SCOPE = ['fs.read:notes.txt'];

for (const alg of ['EdDSA', 'ES256'] as const) {
  describe(`${alg}: a key set with two keys under one kid`, () => {
    let a: Authority;
    beforeAll(async () => {
      a = await createAuthority(`dup-kid-${alg.toLowerCase()}`, alg);
    });
    afterAll(() => a.close());

    /** A key that is not the keystore's, published under the keystore's active kid. */
    function impostor(): PublicJwk {
      const { publicKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
      return { ...jwk, kid: a.keystore.activeKid(), alg, use: 'sig' } as PublicJwk;
    }

    it.each([
      ['the other key first, the signing key last', (real: PublicJwk, other: PublicJwk) => [other, real]],
      ['the signing key first, the other key last', (real: PublicJwk, other: PublicJwk) => [real, other]],
      ['the signing key twice', (real: PublicJwk) => [real, { ...real }]],
      ['the other key between two copies of the signing key', (real: PublicJwk, other: PublicJwk) => [real, other, { ...real }]],
    ])('refuses the kid as jose does (%s)', async (_order, arrange) => {
      const real = a.keystore.jwks().keys[0] as PublicJwk;
      const jwks = { keys: arrange(real, impostor()) };
      const { token } = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });

      // The reference: jose refuses to pick one of two keys for one kid.
      const joseCode = await jwtVerify(token, createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]), {
        algorithms: [alg],
        currentDate: new Date(a.time.now),
      }).then(
        () => 'ok',
        (error: { code?: string }) => error.code,
      );
      expect(joseCode).toBe('ERR_JWKS_MULTIPLE_MATCHING_KEYS');

      const verifier = createCredentialVerifier({ keys: () => jwks, replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
      // Current code: 'ok' with the signing key last, 'ERR_CREDENTIAL_SIGNATURE' with it first.
      expect(await codeOf(verifier.verify(token, { tool: TOOL, requiredScope: SCOPE, consume: false }))).toBe('ERR_CREDENTIAL_KID_UNKNOWN');
    });
  });
}

describe('a kid listed twice, beside other keys and in files', () => {
  let a: Authority;
  beforeAll(async () => {
    a = await createAuthority('dup-kid-files');
  });
  afterAll(() => a.close());

  function impostorOf(kid: string): PublicJwk {
    const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as Record<string, string>;
    return { ...jwk, kid, alg: 'EdDSA', use: 'sig' } as PublicJwk;
  }

  it('leaves the set’s other kids verifying', async () => {
    const retiredKid = a.keystore.activeKid();
    await a.keystore.rotate({ maxTokenLifetimeMs: 60_000 });
    const jwks = { keys: [...a.keystore.jwks().keys, impostorOf(retiredKid)] };
    const verifier = createCredentialVerifier({ keys: () => jwks, replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
    const { token } = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
    expect(await codeOf(verifier.verify(token, { tool: TOOL, requiredScope: SCOPE, consume: false }))).toBe('ok');
  });

  it('a JWKS file listing a kid twice is refused where it is read, naming the file and the kid', async () => {
    const kid = a.keystore.activeKid();
    const file = join(a.stateDir, 'operator-jwks.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [...a.keystore.jwks().keys, impostorOf(kid)] }));
    const error = await errorOf(() => readJwksFileAt(file));
    expect(error.code).toBe('ERR_KEYSTORE_INVALID');
    expect(error.message).toContain(file);
    expect(error.message).toContain(kid);

    // The sandbox host's gate with that file as its `jwksFile`: every call is refused with that error.
    const gate = createCredentialGate(a.stateDir, { jwksFile: file });
    try {
      const { token } = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      const source = getBuiltinTool(TOOL)!.executor.source;
      const result = await gate.check({ ...SANDBOX_PROBE_CALL, type: 'run', id: 'c1', toolName: TOOL, source, input: { path: 'notes.txt' }, credential: token });
      expect(result).toMatchObject({ ok: false, code: 'ERR_KEYSTORE_INVALID' });
      expect(result.ok === false && result.message).toContain(kid);
    } finally {
      await gate.close();
    }
  });
});
