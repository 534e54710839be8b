import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actChainOf } from '../../identity/agent-identity';
import { GrantClaimsSchema } from '../../identity/claims';
import { verifyDelegationChain } from '../../identity/delegation-chain';
import { grantHash, hashIntent, issueTaskGrant, verifyTaskGrant } from '../../identity/task-grant';
import { childGrantInput, codeOf, createAuthority, decodePart, errorOf, rootGrantInput, T0, type Authority } from './identity-test-kit';

let authority: Authority;
beforeAll(async () => {
  authority = await createAuthority('grant');
});
afterAll(() => authority.close());

describe('the root task grant', () => {
  it('binds user, intent hash, agent, model and grants until the task deadline', async () => {
    const { root, keystore } = authority;
    expect(decodePart(root.token, 0)).toEqual({ alg: 'EdDSA', kid: keystore.activeKid(), typ: 'warden-grant+jwt' });
    expect(root.claims).toEqual({
      iss: 'warden',
      sub: 'agent:scribe@warden-scribe-1',
      aud: 'warden',
      jti: root.id,
      iat: T0 / 1000,
      nbf: T0 / 1000,
      exp: T0 / 1000 + 600,
      act: { sub: 'agent:scribe@warden-scribe-1', act: { sub: 'user:alice@example.com' } },
      user: 'user:alice@example.com',
      workflow_id: 'warden-scribe-1',
      intent_hash: hashIntent('Count the words in notes.txt'),
      agent: { name: 'scribe', model: { id: 'scripted-scribe', version: '2026-11-25' } },
      grants: rootGrantInput().grants,
      limits: { maxSteps: 50, toolTimeoutMs: 5000, toolMemoryMb: 64 },
      lineage: [],
      depth: 0,
    });
    expect(decodePart(root.token, 1)).toEqual(root.claims);
    expect(root.hash).toBe(grantHash(root.token));
    expect(root.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashIntent('x')).toBe('sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
  });

  it('verifies, and refuses a deadline in the past or a missing user', async () => {
    const { root, keystore, time } = authority;
    expect((await verifyTaskGrant(root.token, keystore, { clock: time.clock })).claims).toEqual(root.claims);
    expect(await codeOf(issueTaskGrant(keystore, rootGrantInput({ expiresAt: T0 })))).toBe('ERR_CREDENTIAL_EXPIRED');
    await expect(issueTaskGrant(keystore, rootGrantInput({ user: undefined }))).rejects.toThrow(TypeError);
    await expect(issueTaskGrant(keystore, rootGrantInput({ grants: { tools: ['Not A Tool'], subagents: [], hosts: [], databases: [] } }))).rejects.toThrow(/grants/);
  });

  it('gives every grant its own id', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => issueTaskGrant(authority.keystore, rootGrantInput()).then((g) => g.id)));
    expect(new Set(ids).size).toBe(20);
  });
});

describe('sub-agent grants', () => {
  it('name the parent by id and token hash, extend the act chain and the lineage, and sit one level deeper', async () => {
    const { root, keystore } = authority;
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    expect(child.claims).toMatchObject({
      sub: 'agent:reviewer@warden-scribe-1/reviewer-1',
      user: 'user:alice@example.com',
      parent: { id: root.id, hash: root.hash },
      lineage: [root.id],
      depth: 1,
      exp: root.claims.exp,
    });
    expect(actChainOf(child.claims.act)).toEqual(['user:alice@example.com', 'agent:scribe@warden-scribe-1', 'agent:reviewer@warden-scribe-1/reviewer-1']);
    expect(GrantClaimsSchema.parse(child.claims)).toEqual(child.claims);
  });

  it('a three-level chain verifies link by link back to the user', async () => {
    const { root, keystore, time } = authority;
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    const grandchild = await issueTaskGrant(keystore, childGrantInput(child, 'checker', { grants: { tools: ['fs.read'], subagents: [], hosts: [], databases: [] } }));
    const chain = await verifyDelegationChain([root.token, child.token, grandchild.token], keystore, { clock: time.clock });
    expect(chain.links.map((l) => l.id)).toEqual([root.id, child.id, grandchild.id]);
    expect(chain.leaf.claims.depth).toBe(2);
    expect(chain.leaf.claims.lineage).toEqual([root.id, child.id]);
    expect(chain.actors).toEqual([
      'user:alice@example.com',
      'agent:scribe@warden-scribe-1',
      'agent:reviewer@warden-scribe-1/reviewer-1',
      'agent:checker@warden-scribe-1/reviewer-1/checker-1',
    ]);
    // The verifier works from the public JWKS alone, too.
    expect((await verifyDelegationChain([root.token, child.token, grandchild.token], keystore.jwks(), { clock: time.clock })).leaf.id).toBe(grandchild.id);
  });

  it('can be issued from the parent\'s recorded claims and hash instead of its token', async () => {
    const { root, keystore, time } = authority;
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { parent: { claims: root.claims, hash: root.hash } }));
    expect(child.claims.parent).toEqual({ id: root.id, hash: root.hash });
    expect((await verifyDelegationChain([root.token, child.token], keystore, { clock: time.clock })).leaf.id).toBe(child.id);
  });

  it('refuses a wider request, naming the exact scope', async () => {
    const { root, keystore } = authority;
    const error = await errorOf(issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { grants: { tools: ['fs.read', 'sql.exec'], subagents: [], hosts: [], databases: [] } })));
    expect(error.code).toBe('ERR_DELEGATION_WIDENS');
    expect(error.message).toBe('tools: "sql.exec" is not granted to the parent');
    expect(error.details).toMatchObject({ parentGrant: root.id, scope: 'tools', entry: 'sql.exec' });
  });

  it('refuses a child acting for another user, or outliving the parent', async () => {
    const { root, keystore } = authority;
    const otherUser = await errorOf(issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { user: 'mallory@example.com' })));
    expect([otherUser.code, otherUser.message]).toEqual(['ERR_DELEGATION_WIDENS', 'user: "user:mallory@example.com" is not the parent\'s user "user:alice@example.com"']);
    expect(await codeOf(issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { expiresAt: root.claims.exp * 1000 + 1000 })))).toBe('ERR_DELEGATION_EXPIRY');
  });

  it('refuses nesting deeper than the limit (default 3, or the task\'s own)', async () => {
    const { root, keystore } = authority;
    let grant = root;
    for (const name of ['reviewer', 'checker', 'reviewer']) grant = await issueTaskGrant(keystore, childGrantInput(grant, name));
    expect(grant.claims.depth).toBe(3);
    expect(await codeOf(issueTaskGrant(keystore, childGrantInput(grant, 'checker')))).toBe('ERR_DELEGATION_DEPTH');
    const child = await issueTaskGrant(keystore, childGrantInput(root, 'reviewer'));
    expect(await codeOf(issueTaskGrant(keystore, childGrantInput(child, 'checker', { maxDepth: 1 })))).toBe('ERR_DELEGATION_DEPTH');
    const shallowRoot = await issueTaskGrant(keystore, rootGrantInput({ limits: { maxDepth: 1 } }));
    const shallowChild = await issueTaskGrant(keystore, childGrantInput(shallowRoot, 'reviewer', { limits: { maxDepth: 1 } }));
    expect(await codeOf(issueTaskGrant(keystore, childGrantInput(shallowChild, 'checker', { limits: { maxDepth: 1 } })))).toBe('ERR_DELEGATION_DEPTH');
  });

  it('refuses to issue under an expired parent', async () => {
    const { root, keystore, time } = authority;
    time.advance(11 * 60_000);
    try {
      expect(await codeOf(issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { expiresAt: time.now + 60_000 })))).toBe('ERR_CREDENTIAL_EXPIRED');
      expect(await codeOf(issueTaskGrant(keystore, childGrantInput(root, 'reviewer', { expiresAt: time.now + 60_000, parent: { claims: root.claims, hash: root.hash } })))).toBe(
        'ERR_CREDENTIAL_EXPIRED',
      );
    } finally {
      time.now = T0;
    }
  });
});
