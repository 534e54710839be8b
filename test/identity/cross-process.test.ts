/**
 * The deployment shape: the worker mints (this test process) and a separate process verifies
 * with nothing but the public JWKS and the shared SQLite stores, as the sandbox host will.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { findSecretsIn } from '../../identity/redact';
import { issueTaskGrant } from '../../identity/task-grant';
import { childGrantInput, codeOf, createAuthority, IdentityChild, type Authority } from './identity-test-kit';

let a: Authority;
let host: IdentityChild;
let secondHost: IdentityChild;
const scope = ['fs.read:notes.txt'];

beforeAll(async () => {
  a = await createAuthority('cross-process');
  host = new IdentityChild();
  secondHost = new IdentityChild();
  const init = { type: 'init', stateDir: a.stateDir, jwks: a.keystore.jwks(), now: a.time.now };
  expect(findSecretsIn(init)).toEqual([]); // no private key crosses
  expect(await host.request(init)).toEqual({ ok: true });
  expect(await secondHost.request(init)).toEqual({ ok: true });
});
afterAll(async () => {
  await host?.close();
  await secondHost?.close();
  a?.close();
});

describe('minting in one process, verifying in another', () => {
  it('a credential minted here verifies there, once, and the use is seen here too', async () => {
    const { token, claims } = await mintCallCredential(a.keystore, a.root, { tool: 'fs.read', scope });
    expect(await host.request({ type: 'verify', token, tool: 'fs.read', requiredScope: scope })).toEqual({ ok: true, jti: claims.jti });
    expect(await host.request({ type: 'verify', token, tool: 'fs.read', requiredScope: scope })).toEqual({ ok: false, code: 'ERR_CREDENTIAL_REPLAYED' });
    expect(await codeOf(a.verifier.verify(token, { tool: 'fs.read', requiredScope: scope }))).toBe('ERR_CREDENTIAL_REPLAYED');
  });

  it('two host processes racing on the same credential: exactly one runs the call', async () => {
    for (let round = 0; round < 5; round += 1) {
      const { token } = await mintCallCredential(a.keystore, a.root, { tool: 'fs.read', scope });
      const replies = await Promise.all([host, secondHost].map((h) => h.request({ type: 'verify', token, tool: 'fs.read', requiredScope: scope })));
      expect(replies.filter((r) => r.ok)).toHaveLength(1);
      expect(replies.filter((r) => !r.ok).map((r) => r.code)).toEqual(['ERR_CREDENTIAL_REPLAYED']);
    }
  });

  it('ending the task here stops its (and its sub-agents\') credentials there, before their exp', async () => {
    const task = await issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer'));
    const sub = await issueTaskGrant(a.keystore, childGrantInput(task, 'checker'));
    const own = await mintCallCredential(a.keystore, task, { tool: 'fs.read', scope });
    const subs = await mintCallCredential(a.keystore, sub, { tool: 'fs.read', scope });
    a.stores.revocation.revokeGrant(task.id, 'task completed', a.time.now);
    expect(await host.request({ type: 'verify', token: own.token, tool: 'fs.read', requiredScope: scope })).toEqual({ ok: false, code: 'ERR_CREDENTIAL_REVOKED' });
    expect(await host.request({ type: 'verify', token: subs.token, tool: 'fs.read', requiredScope: scope })).toEqual({ ok: false, code: 'ERR_CREDENTIAL_REVOKED' });
  });

  it('the host applies the audience and scope checks itself', async () => {
    const { token } = await mintCallCredential(a.keystore, a.root, { tool: 'fs.read', scope });
    expect(await host.request({ type: 'verify', token, tool: 'fs.write', requiredScope: [] })).toEqual({ ok: false, code: 'ERR_CREDENTIAL_AUDIENCE' });
    expect(await host.request({ type: 'verify', token, tool: 'fs.read', requiredScope: ['fs.read:other.txt'] })).toEqual({ ok: false, code: 'ERR_CREDENTIAL_SCOPE' });
  });
});
