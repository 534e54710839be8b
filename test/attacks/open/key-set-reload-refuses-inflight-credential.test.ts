/**
 * Open finding (0d3f64d / 424fa3c, `VerificationKeySet.publicKey` in identity/token-verification.ts):
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
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintCallCredential } from '../../../identity/credential';
import { openKeystore, type Keystore } from '../../../identity/keystore';
import { issueTaskGrant, type IssuedGrant } from '../../../identity/task-grant';
import { createCredentialGate, type CredentialGate } from '../../../sandbox/credential-gate';
import type { SandboxRunRequest } from '../../../sandbox/sandbox-messages';
import { requiredScopeOf } from '../../../tools/call-scope';
import { makeTempDir, rootGrantInput } from '../../identity/identity-test-kit';

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
