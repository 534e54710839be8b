import { describe, expect, it } from 'vitest';
import type { GrantClaims } from '../../identity/claims';
import { checkDelegation, findDelegationViolation, wideningsOf, type DelegationParent } from '../../identity/delegation';
import { DelegationError } from '../../errors';
import { T0 } from './identity-test-kit';

const parent: DelegationParent = {
  jti: '00000000-0000-4000-8000-000000000001',
  grants: { tools: ['fs.read', 'http.fetch'], subagents: ['reviewer'], hosts: ['api.example.com'], databases: ['inventory'] },
  limits: { maxSteps: 20, toolMemoryMb: 64 },
  exp: T0 / 1000 + 600,
  depth: 0,
};
const none: GrantClaims['grants'] = { tools: [], subagents: [], hosts: [], databases: [] };
const inTime = { expiresAt: T0 + 600_000 };

describe('the delegation rule', () => {
  it('allows any subset that expires no later and sits within the depth', () => {
    expect(findDelegationViolation(parent, { grants: parent.grants, limits: parent.limits }, inTime)).toBeNull();
    expect(findDelegationViolation(parent, { grants: none, limits: { maxSteps: 1, toolMemoryMb: 8, toolTimeoutMs: 10 } }, { expiresAt: T0 })).toBeNull();
    expect(() => checkDelegation(parent, { grants: { ...none, tools: ['fs.read'] }, limits: { maxSteps: 5, toolMemoryMb: 32 } }, { ...inTime, depth: 3 })).not.toThrow();
  });

  it.each([
    [{ ...none, tools: ['fs.write'] }, parent.limits, 'tools: "fs.write" is not granted to the parent'],
    [{ ...none, subagents: ['deployer'] }, parent.limits, 'subagents: "deployer" is not granted to the parent'],
    [{ ...none, hosts: ['evil.example'] }, parent.limits, 'hosts: "evil.example" is not granted to the parent'],
    [{ ...none, databases: ['payroll'] }, parent.limits, 'databases: "payroll" is not granted to the parent'],
    [none, { maxSteps: 21, toolMemoryMb: 64 }, 'limits.maxSteps: 21 exceeds the parent\'s 20'],
    [none, { maxSteps: 20 }, 'limits.toolMemoryMb: unlimited exceeds the parent\'s 64'],
  ])('refuses %j %j: %s', (grants, limits, message) => {
    let thrown: unknown;
    try {
      checkDelegation(parent, { grants, limits }, inTime);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DelegationError);
    expect((thrown as DelegationError).code).toBe('ERR_DELEGATION_WIDENS');
    expect((thrown as DelegationError).message).toBe(message);
  });

  it('lists every widening in the details', () => {
    const request = { grants: { tools: ['fs.read', 'fs.write', 'sql.exec'], subagents: [], hosts: ['evil.example'], databases: [] }, limits: { maxSteps: 5, toolMemoryMb: 64 } };
    expect(wideningsOf(parent, request).map((w) => `${w.scope}:${w.entry}`)).toEqual(['tools:fs.write', 'tools:sql.exec', 'hosts:evil.example']);
    expect(findDelegationViolation(parent, request, inTime)).toMatchObject({
      code: 'ERR_DELEGATION_WIDENS',
      message: 'tools: "fs.write" is not granted to the parent (and 2 more)',
      details: { scope: 'tools', entry: 'fs.write', widenings: [{ scope: 'tools', entry: 'fs.write' }, { scope: 'tools', entry: 'sql.exec' }, { scope: 'hosts', entry: 'evil.example' }] },
    });
  });

  it('refuses a later expiry and a deeper level', () => {
    const limits = parent.limits;
    expect(findDelegationViolation(parent, { grants: none, limits }, { expiresAt: T0 + 601_000 })?.code).toBe('ERR_DELEGATION_EXPIRY');
    expect(findDelegationViolation(parent, { grants: none, limits }, { expiresAt: T0 + 600_999 })).toBeNull(); // same second
    expect(findDelegationViolation(parent, { grants: none, limits }, { ...inTime, depth: 4 })).toMatchObject({ code: 'ERR_DELEGATION_DEPTH', message: 'depth 4 is over the limit of 3' });
    expect(findDelegationViolation(parent, { grants: none, limits }, { ...inTime, maxDepth: 0 })?.code).toBe('ERR_DELEGATION_DEPTH');
    expect(findDelegationViolation({ ...parent, limits: { ...limits, maxDepth: 2 } }, { grants: none, limits: { ...limits, maxDepth: 2 } }, { ...inTime, depth: 3, maxDepth: 5 })?.code).toBe(
      'ERR_DELEGATION_DEPTH',
    );
  });
});
