/**
 * Regression test, moved from test/attacks/open/ (issue 17). Fixed: `VerificationKeySet.find`
 * returns the JWK together with its imported key (`VerificationKey`, bound when the set is
 * loaded), and the signature is checked with that pair; nothing is looked up again after the
 * await, so no reload can separate them. The table below runs the race with every kind of key
 * source, in both orders, and with the token's kid kept or dropped by the reload.
 *
 * The finding as it was reported (0d3f64d / 424fa3c, `VerificationKeySet.publicKey` in identity/token-verification.ts):
 * `verifyWardenToken` looks a kid up (`await keys.find(kid)`) and, after that await, asks
 * `keys.publicKey(key)` for the imported key, which throws a TypeError ("key <kid> is not in the
 * loaded key set") when the key set was reloaded in between, because the reload builds new JWK
 * objects even for keys it kept. `credentialErrorOf` maps that TypeError to
 * ERR_CREDENTIAL_MALFORMED, so a valid credential of a key that is still trusted is refused.
 *
 * When: a credential naming a kid the gate has not seen yet (a key rotated in by
 * `warden keys rotate`, another worker's fresh key, or any unknown kid once jwks.json changed)
 * starts a reload, and another call's credential is between its lookup and its signature check.
 * The sandbox host's gate reads its keys with a synchronous loader (`() => readJwksFile(stateDir)`),
 * so the reload finishes one microtask later; two IPC requests handled in one turn of the host's
 * event loop (parallel tool calls) are enough. Before 424fa3c the key lookup was jose's
 * `createLocalJWKSet` read after the await, and the same two calls both verified.
 *
 * Severity: low-medium (availability): around a key rotation a valid tool call is refused, with
 * a code that blames the token. No acceptance of a bad token.
 *
 * Suggested fix: make the lookup and the import one step on one snapshot: cache the imported
 * key per JWK object (a WeakMap<PublicJwk, KeyObject>) and import whatever JWK `find` returned,
 * without checking it is still in the current map; or have `find` return { jwk, publicKey }.
 *
 * Real parts: the real keystore and rotation, the real sandbox-host gate (`createCredentialGate`,
 * jwks.json on disk, SQLite stores), real signatures.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import type { Jwks } from '../../identity/claims';
import { readJwksFile } from '../../identity/keystore';
import type { KeySource } from '../../identity/token-verification';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { createCredentialGate, type CredentialGate } from '../../sandbox/credential-gate';
import type { SandboxRunRequest } from '../../sandbox/sandbox-messages';
import { requiredScopeOf } from '../../tools/call-scope';
import { codeOf, createAuthority, makeTempDir, rootGrantInput } from '../identity/identity-test-kit';

let stateDir: string;
let keystore: Keystore;
let root: IssuedGrant;
let gate: CredentialGate;

beforeAll(async () => {
  stateDir = makeTempDir('keyset-race');
  keystore = await openKeystore({ stateDir });
  root = await issueTaskGrant(keystore, rootGrantInput({ expiresAt: Date.now() + 10 * 60_000 }));
  gate = createCredentialGate(stateDir);
});
afterAll(async () => {
  await gate.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

async function call(id: string): Promise<SandboxRunRequest> {
  const { token } = await mintCallCredential(keystore, root, { tool: 'word-count', scope: requiredScopeOf('word-count', {}, {}) });
  return { type: 'run', id, toolName: 'word-count', source: 'return 1;', input: {}, limits: { timeoutMs: 1000, memoryMb: 16, maxOutputBytes: 1000 }, capabilities: {}, credential: token };
}

it('a valid credential of a still-trusted key verifies while another call’s new kid reloads the key set', async () => {
  // The gate has loaded the key set (one key).
  expect(await gate.check(await call('warm-up'))).toEqual({ ok: true });
  const oldKid = keystore.activeKid();
  const signedBeforeRotation = await call('old-key');

  // A rotation: the old key is retired but keeps verifying for an hour; jwks.json lists both.
  await keystore.rotate({ maxTokenLifetimeMs: 60 * 60_000 });
  expect(keystore.activeKid()).not.toBe(oldKid);
  expect(keystore.jwks().keys.map((k) => k.kid)).toContain(oldKid);
  const signedAfterRotation = await call('new-key');

  // Two calls handled in one turn of the host's event loop: both credentials are valid.
  const [withNewKey, withOldKey] = await Promise.all([gate.check(signedAfterRotation), gate.check(signedBeforeRotation)]);
  expect(withNewKey).toEqual({ ok: true });
  expect(withOldKey).toEqual({ ok: true }); // current code: { ok: false, code: 'ERR_CREDENTIAL_MALFORMED', message: 'malformed token: key … is not in the loaded key set' }
});

const TOOL = 'fs.read';
const SCOPE = ['fs.read:notes.txt'];

describe.each(['EdDSA', 'ES256'] as const)('%s: a credential looked up before a reload verifies with the key it looked up', (alg) => {
  const sources: [string, (stateDir: string, keystore: Keystore, dropped: { kid?: string }) => KeySource][] = [
    ['the keystore', (_dir, keystore) => keystore],
    ['a jwks.json loader', (dir) => () => readJwksFile(dir)],
    // A loader that builds new objects on every call and, once told, leaves a kid out (an operator's file edited meanwhile).
    ['a loader of fresh objects', (dir, _keystore, dropped) => (): Jwks => ({ keys: readJwksFile(dir).keys.filter((k) => k.kid !== dropped.kid).map((k) => ({ ...k })) })],
  ];
  const cases = sources.flatMap(([source, keysOf]) =>
    (['the new kid first', 'the old kid first'] as const).flatMap((order) =>
      (source === 'a loader of fresh objects' ? [false, true] : [false]).map((drop) => ({ source, keysOf, order, drop })),
    ),
  );
  it.each(cases)('$source, $order, old kid dropped by the reload: $drop', async ({ keysOf, order, drop }) => {
    const a = await createAuthority(`reload-race-${alg.toLowerCase()}`, alg);
    try {
      const dropped: { kid?: string } = {};
      const verifier = createCredentialVerifier({ keys: keysOf(a.stateDir, a.keystore, dropped), replayStore: a.stores.replay, revocationStore: a.stores.revocation, clock: a.time.clock });
      const verify = (token: string) => codeOf(verifier.verify(token, { tool: TOOL, requiredScope: SCOPE }));
      expect(await verify((await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE })).token)).toBe('ok');
      const oldKid = a.keystore.activeKid();
      const old = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      const oldAfterTheReload = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      await a.keystore.rotate({ maxTokenLifetimeMs: 60 * 60_000 });
      const fresh = await mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
      if (drop) dropped.kid = oldKid;
      const [first, second] = order === 'the new kid first' ? [fresh, old] : [old, fresh];
      // Both start in one turn: the new kid reloads the set while the old kid's credential, looked up before, is in flight.
      // It verifies with the key it looked up (as jose's lookup did), even when the reload dropped that key;
      expect(await Promise.all([verify(first.token), verify(second.token)])).toEqual(['ok', 'ok']);
      // a lookup after the reload sees the set as reloaded.
      expect(await verify(oldAfterTheReload.token)).toBe(drop ? 'ERR_CREDENTIAL_KID_UNKNOWN' : 'ok');
    } finally {
      a.close();
    }
  });
});
