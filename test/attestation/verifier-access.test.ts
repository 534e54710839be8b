/**
 * What a claim's verifier may touch: exactly the resources the claim names, each only if the
 * agent that made the claim was granted it (and the task declares it), read-only. The table is the
 * spec: every kind, allowed and refused.
 */
import { describe, expect, it } from 'vitest';
import { ClaimSchema, normalizeClaim } from '../../attestation/claim-schema';
import { verifierAccessOf, VerifierAccessRefused, READ_ONLY_ACTIONS } from '../../attestation/verifier-access';
import type { GrantSet } from '../../identity/claims';
import { scopeOutsideGrant } from '../../identity/call-scope';
import { TaskSchema } from '../../task/task-schema';

const task = TaskSchema.parse({
  user: 'u',
  intent: 'i',
  agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } },
  resources: { workspace: '/ws', databases: { app: '/db/app.db', other: '/db/other.db' }, hosts: ['api.example.com', '127.0.0.1:8080'] },
  attestation: { verifiers: { audit: { capabilities: ['fs.read', 'sql.query', 'http.fetch'], source: 'return { holds: true, reason: "" }' } } },
});
const grants: GrantSet = { tools: ['fs.read'], subagents: [], hosts: ['api.example.com'], databases: ['app'], commands: ['node'] };
const claimant = { workflowId: 'wf', agent: 'a' };

function access(raw: unknown, g: GrantSet = grants) {
  const claim = normalizeClaim(ClaimSchema.parse(raw));
  return verifierAccessOf(claim, g, task, claimant, '/ws');
}

describe('verifier access', () => {
  it.each<[string, unknown, string[]]>([
    ['file.sha256', { kind: 'file.sha256', path: 'a/./b.txt', sha256: '0'.repeat(64) }, ['fs.read:a/b.txt']],
    ['file.contains', { kind: 'file.contains', path: 'r.md', text: 'x' }, ['fs.read:r.md']],
    ['sql.count', { kind: 'sql.count', database: 'app', table: 't', equals: 1 }, ['sql.query:db:app']],
    ['http.status', { kind: 'http.status', url: 'https://api.example.com/health?x=1', status: 200 }, ['http.fetch:GET:api.example.com/health']],
    ['tests.pass', { kind: 'tests.pass', command: 'node', args: ['--test'] }, ['proc.run:node']],
    ['tool.called', { kind: 'tool.called', tool: 'fs.read' }, ['warden-verifier.tool.called:wf']],
    ['custom', { kind: 'custom', verifier: 'audit', params: {} }, ['warden-verifier.custom.audit:invoke', 'fs.read:*', 'http.fetch:ANY:api.example.com', 'sql.query:db:app']],
  ])('%s: exactly the named resources, covered by a read-only grant', (_kind, raw, scope) => {
    const a = access(raw);
    expect(a.scope).toEqual(scope);
    expect(scopeOutsideGrant(a.grants, a.tool, a.scope)).toBeNull();
    expect(a.grants.tools.filter((t) => t !== a.tool).every((t) => (READ_ONLY_ACTIONS as readonly string[]).includes(t))).toBe(true);
  });

  it.each<[string, unknown, RegExp]>([
    ['a database the agent was not granted', { kind: 'sql.count', database: 'other', table: 't', equals: 1 }, /database "other" is not granted/],
    ['a database the task does not declare', { kind: 'sql.count', database: 'ghost', table: 't', equals: 1 }, /database "ghost"/],
    ['a host the agent was not granted', { kind: 'http.status', url: 'http://127.0.0.1:8080/', status: 200 }, /host "127.0.0.1:8080" is not granted/],
    ['cloud metadata', { kind: 'http.status', url: 'http://169.254.169.254/latest/meta-data/', status: 200 }, /host "169.254.169.254" is not granted/],
    ['the granted host on another port', { kind: 'http.status', url: 'https://api.example.com:8443/', status: 200 }, /host "api.example.com:8443" is not granted/],
    ['a program the agent was not granted', { kind: 'tests.pass', command: 'sh', args: ['-c', 'exit 0'] }, /program "sh" is not granted/],
    ['an undeclared verifier', { kind: 'custom', verifier: 'nobody', params: {} }, /no verifier "nobody"/],
  ])('refuses %s', (_name, raw, message) => {
    expect(() => access(raw)).toThrow(VerifierAccessRefused);
    expect(() => access(raw)).toThrow(message);
  });

  it("narrows a custom verifier's capabilities to the agent's grants", () => {
    const a = access({ kind: 'custom', verifier: 'audit', params: {} }, { ...grants, hosts: [], databases: [] });
    expect(a.capabilities).toEqual({ fs: { root: '/ws', read: true, write: false, list: false }, http: { allowedHosts: [] }, sql: { databases: {}, query: true, exec: false } });
    expect(a.grants.hosts).toEqual([]);
    expect(a.grants.databases).toEqual([]);
  });

  it('files need a workspace', () => {
    const bare = { ...task, resources: { ...task.resources, workspace: undefined } };
    expect(() => verifierAccessOf(normalizeClaim(ClaimSchema.parse({ kind: 'file.contains', path: 'a', text: 'b' })), grants, bare, claimant)).toThrow(/no workspace/);
  });
});
