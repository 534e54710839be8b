import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsScope, httpScope, sqlScope } from '../../identity/call-scope';
import { mintCallCredential } from '../../identity/credential';
import { createMemoryCredentialStores } from '../../identity/credential-stores';
import { openKeystore, readJwksFile } from '../../identity/keystore';
import { issueTaskGrant } from '../../identity/task-grant';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { b64url, childGrantInput, codeOf, createAuthority, decodePart, errorOf, T0, type Authority } from './identity-test-kit';

let authority: Authority;
beforeAll(async () => {
  authority = await createAuthority('credential');
});
afterAll(() => authority.close());

describe('minting a per-call credential', () => {
  it('is for exactly one tool and the resources of this call, expires in 60 s and carries the grant\'s act chain', async () => {
    const { keystore, root } = authority;
    const { token, claims } = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [fsScope('read', './notes.txt')] });
    expect(decodePart(token, 0)).toEqual({ alg: 'EdDSA', kid: keystore.activeKid(), typ: 'warden-call+jwt' });
    expect(claims).toEqual({
      iss: 'warden',
      sub: root.claims.sub,
      aud: 'tool:fs.read',
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: T0 / 1000,
      nbf: T0 / 1000,
      exp: T0 / 1000 + 60,
      scope: ['fs.read:notes.txt'],
      act: root.claims.act,
      grant: root.id,
      lineage: [],
    });
    expect(decodePart(token, 1)).toEqual(claims);
  });

  it('mints from the grant token too (verifying it first)', async () => {
    const { keystore, root } = authority;
    const { claims } = await mintCallCredential(keystore, root.token, { tool: 'sql.query', scope: [sqlScope('query', 'inventory')] });
    expect(claims.scope).toEqual(['sql.query:db:inventory']);
    expect(await codeOf(mintCallCredential(keystore, `${root.token}x`, { tool: 'fs.read', scope: [] }))).toBe('ERR_CREDENTIAL_SIGNATURE');
  });

  it('gives every call its own jti', async () => {
    const jtis = await Promise.all(Array.from({ length: 200 }, () => mintCallCredential(authority.keystore, authority.root, { tool: 'fs.read', scope: [] }).then((c) => c.claims.jti)));
    expect(new Set(jtis).size).toBe(200);
  });

  it('caps the lifetime by the caller\'s maximum (the activity timeout) and by the task deadline', async () => {
    const { keystore, root, time } = authority;
    expect((await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [], maxTtlMs: 5000 })).claims.exp).toBe(T0 / 1000 + 5);
    expect((await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [], ttlMs: 10_000 })).claims.exp).toBe(T0 / 1000 + 10);
    expect((await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [], ttlMs: 10, maxTtlMs: 10 })).claims.exp).toBe(T0 / 1000 + 1);
    time.advance(9 * 60_000 + 30_000); // 30 s before the deadline
    try {
      expect((await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] })).claims.exp).toBe(root.claims.exp);
      time.advance(30_000);
      expect(await codeOf(mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] }))).toBe('ERR_CREDENTIAL_EXPIRED');
    } finally {
      time.now = T0;
    }
    await expect(mintCallCredential(keystore, root, { tool: 'fs.read', scope: [], ttlMs: 0 })).rejects.toThrow(TypeError);
    await expect(mintCallCredential(keystore, root, { tool: 'FS READ', scope: [] })).rejects.toThrow(TypeError);
  });

  it.each([
    ['fs.delete', [], 'tool "fs.delete" is not granted'],
    ['fs.read', ['sql.exec:db:inventory'], 'scope "sql.exec:db:inventory": "sql.exec" is not granted'],
    ['http.fetch', [httpScope('GET', 'https://evil.example/x')], 'scope "http.fetch:GET:evil.example/x": host "evil.example" is not granted'],
    ['sql.query', [sqlScope('query', 'payroll')], 'scope "sql.query:db:payroll": database "payroll" is not granted'],
    ['fs.read', ['not a scope'], 'not a scope: "not a scope"'],
  ])('refuses to mint %s %j outside the grant: %s', async (tool, scope, reason) => {
    const error = await errorOf(mintCallCredential(authority.keystore, authority.root, { tool, scope }));
    expect(error.code).toBe('ERR_CREDENTIAL_SCOPE');
    expect(error.details['reason']).toBe(reason);
  });
});

describe('verifying a credential', () => {
  it('accepts a fresh credential for its tool and any part of its scope, once', async () => {
    const { keystore, root, verifier } = authority;
    const scope = [fsScope('read', 'notes.txt'), fsScope('read', 'todo.txt')];
    const { token, claims } = await mintCallCredential(keystore, root, { tool: 'fs.read', scope });
    const verified = await verifier.verify(token, { tool: 'fs.read', requiredScope: [fsScope('read', 'notes.txt')] });
    expect(verified.claims).toEqual(claims);
    expect(verified.header).toEqual({ alg: 'EdDSA', kid: keystore.activeKid(), typ: 'warden-call+jwt' });
    expect(await codeOf(verifier.verify(token, { tool: 'fs.read', requiredScope: [] }))).toBe('ERR_CREDENTIAL_REPLAYED');
  });

  it('with consume: false checks without using the credential up', async () => {
    const { keystore, root, verifier } = authority;
    const { token } = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] });
    await verifier.verify(token, { tool: 'fs.read', requiredScope: [], consume: false });
    await verifier.verify(token, { tool: 'fs.read', requiredScope: [], consume: false });
    await verifier.verify(token, { tool: 'fs.read', requiredScope: [] });
    expect(await codeOf(verifier.verify(token, { tool: 'fs.read', requiredScope: [], consume: false }))).toBe('ERR_CREDENTIAL_REPLAYED');
  });

  it('a credential that fails a check is not used up', async () => {
    const { keystore, root, verifier } = authority;
    const { token } = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: ['fs.read:a.txt'] });
    expect(await codeOf(verifier.verify(token, { tool: 'fs.read', requiredScope: ['fs.read:b.txt'] }))).toBe('ERR_CREDENTIAL_SCOPE');
    expect(await codeOf(verifier.verify(token, { tool: 'fs.read', requiredScope: ['fs.read:a.txt'] }))).toBe('ok');
  });

  it('ending a parent task revokes the credentials of its sub-agents (and grandchildren)', async () => {
    const { keystore, root, verifier, stores, time } = authority;
    const parent = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    const child = await issueTaskGrant(keystore, childGrantInput(parent, 'checker'));
    const mint = () => mintCallCredential(keystore, child, { tool: 'fs.read', scope: [] });
    expect(await codeOf(mint().then((c) => verifier.verify(c.token, { tool: 'fs.read', requiredScope: [] })))).toBe('ok');
    const pending = await mint();
    stores.revocation.revokeGrant(parent.id, 'task completed', time.now);
    const error = await errorOf(verifier.verify(pending.token, { tool: 'fs.read', requiredScope: [] }));
    expect(error.code).toBe('ERR_CREDENTIAL_REVOKED');
    expect(error.message).toBe(`an ancestor grant (${parent.id}) was ended at 2026-11-25T10:00:00.000Z: task completed`);
    // The root's own credentials are untouched.
    const rootCall = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] });
    expect(await codeOf(verifier.verify(rootCall.token, { tool: 'fs.read', requiredScope: [] }))).toBe('ok');
  });

  it('keeps verifying credentials signed before a rotation; a JWKS-file verifier picks up the new key', async () => {
    const { keystore, root, stores, time, stateDir } = authority;
    const fileVerifier = createCredentialVerifier({ keys: () => readJwksFile(stateDir), replayStore: stores.replay, revocationStore: stores.revocation, clock: time.clock });
    const before = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] });
    expect(await codeOf(fileVerifier.verify(before.token, { tool: 'fs.read', requiredScope: [], consume: false }))).toBe('ok');
    await keystore.rotate({ maxTokenLifetimeMs: 15 * 60_000 });
    const after = await mintCallCredential(keystore, root, { tool: 'fs.read', scope: [] });
    expect(decodePart(after.token, 0)['kid']).toBe(keystore.activeKid());
    expect(await codeOf(authority.verifier.verify(before.token, { tool: 'fs.read', requiredScope: [] }))).toBe('ok');
    expect(await codeOf(fileVerifier.verify(after.token, { tool: 'fs.read', requiredScope: [] }))).toBe('ok');
  });

  it('works the same with ES256 keys and in-memory stores', async () => {
    const es = await createAuthority('credential-es256', 'ES256');
    try {
      const memory = createMemoryCredentialStores(es.time.clock);
      const verifier = createCredentialVerifier({ keys: es.keystore.jwks(), replayStore: memory.replay, revocationStore: memory.revocation, clock: es.time.clock });
      const { token } = await mintCallCredential(es.keystore, es.root, { tool: 'http.fetch', scope: [httpScope('get', 'https://api.example.com/v1/items?page=2')] });
      expect(decodePart(token, 0)['alg']).toBe('ES256');
      const { claims } = await verifier.verify(token, { tool: 'http.fetch', requiredScope: ['http.fetch:GET:api.example.com/v1/items'] });
      expect(claims.aud).toBe('tool:http.fetch');
      expect(await codeOf(verifier.verify(token, { tool: 'http.fetch', requiredScope: [] }))).toBe('ERR_CREDENTIAL_REPLAYED');
    } finally {
      es.close();
    }
  });
});

describe('minting again from a grant token already verified (the worker mints every call of a task from one token)', () => {
  // Each row mints once from the token (a full verification), changes one thing, and mints again:
  // the second mint must answer exactly as a first verification of that token would now.
  const cases: { name: string; change: (a: Authority) => Promise<string>; expected: string }[] = [
    { name: 'the same token, nothing changed', change: async (a) => a.root.token, expected: 'ok' },
    { name: 'the token with one byte of its signature changed', change: async (a) => `${a.root.token.slice(0, -2)}${a.root.token.at(-2) === 'A' ? 'B' : 'A'}${a.root.token.slice(-1)}`, expected: 'ERR_CREDENTIAL_SIGNATURE' },
    { name: 'the token with its payload edited (wider grants)', change: async (a) => { const [h, , sig] = a.root.token.split('.'); return `${h}.${b64url({ ...a.root.claims, grants: { '*': ['*'] } })}.${sig}`; }, expected: 'ERR_CREDENTIAL_SIGNATURE' },
    {
      name: 'its signing key retired and past its verifyUntil',
      change: async (a) => {
        await a.keystore.rotate({ maxTokenLifetimeMs: 60_000 });
        a.time.advance(2 * 60_000);
        return a.root.token;
      },
      expected: 'ERR_CREDENTIAL_KID_UNKNOWN',
    },
    { name: 'its signing key retired, still within its verifyUntil', change: async (a) => { await a.keystore.rotate({ maxTokenLifetimeMs: 5 * 60_000 }); a.time.advance(60_000); return a.root.token; }, expected: 'ok' },
    { name: 'the clock set back before the grant\'s nbf', change: async (a) => { a.time.now = a.root.claims.nbf * 1000 - 5_000; return a.root.token; }, expected: 'ERR_CREDENTIAL_NOT_YET_VALID' },
    { name: 'the grant expired since', change: async (a) => { a.time.now = a.root.claims.exp * 1000; return a.root.token; }, expected: 'ERR_CREDENTIAL_EXPIRED' },
  ];
  it.each(cases)('$name: $expected', async ({ change, expected }) => {
    const a = await createAuthority('credential-again');
    try {
      expect(await codeOf(mintCallCredential(a.keystore, a.root.token, { tool: 'fs.read', scope: [] }))).toBe('ok');
      const token = await change(a);
      expect(await codeOf(mintCallCredential(a.keystore, token, { tool: 'fs.read', scope: [] }))).toBe(expected);
      // A keystore that never saw the token answers the same (no state of the first keystore decides).
      const fresh = await openKeystore({ stateDir: a.stateDir, clock: a.time.clock });
      expect(await codeOf(mintCallCredential(fresh, token, { tool: 'fs.read', scope: [] }))).toBe(expected);
    } finally {
      a.close();
    }
  });

  it('mints from the remembered grant with the grant\'s claims, a fresh jti each time', async () => {
    const { keystore, root } = authority;
    const first = await mintCallCredential(keystore, root.token, { tool: 'fs.read', scope: [] });
    const second = await mintCallCredential(keystore, root.token, { tool: 'fs.read', scope: [] });
    expect({ ...second.claims, jti: '' }).toEqual({ ...first.claims, jti: '' });
    expect(second.claims.jti).not.toBe(first.claims.jti);
    expect(second.claims.grant).toBe(root.id);
  });
});
