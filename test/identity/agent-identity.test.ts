import { describe, expect, it } from 'vitest';
import { actChainOf, actClaimOf, ActClaimSchema, agentId, extendActChain, formatActChain, parseSubjectId, userId } from '../../identity/agent-identity';
import { fsScope, httpScope, parseScope, scopeOutsideGrant, sqlScope } from '../../identity/call-scope';

describe('agent and user ids', () => {
  it('are stable and parse back', () => {
    expect(agentId('scribe', 'warden-scribe-1')).toBe('agent:scribe@warden-scribe-1');
    expect(agentId('reviewer', 'warden-scribe-1/reviewer-3')).toBe('agent:reviewer@warden-scribe-1/reviewer-3');
    expect(userId('alice@example.com')).toBe('user:alice@example.com');
    expect(userId('user:alice@example.com')).toBe('user:alice@example.com');
    expect(parseSubjectId('agent:reviewer@wf-1/reviewer-3@x')).toEqual({ kind: 'agent', name: 'reviewer', workflowId: 'wf-1/reviewer-3@x' });
    expect(parseSubjectId('user:alice@example.com')).toEqual({ kind: 'user', id: 'alice@example.com' });
  });

  it('refuse names that could be ambiguous', () => {
    expect(() => agentId('Scribe', 'wf')).toThrow();
    expect(() => agentId('a@b', 'wf')).toThrow();
    expect(() => agentId('scribe', '')).toThrow();
    expect(() => userId('alice smith')).toThrow();
    expect(() => parseSubjectId('service:x')).toThrow(TypeError);
  });
});

describe('the act chain (RFC 8693)', () => {
  it('nests the current actor outermost and reads user → agent → sub-agent', () => {
    const root = actClaimOf(['user:alice', 'agent:scribe@wf']);
    expect(root).toEqual({ sub: 'agent:scribe@wf', act: { sub: 'user:alice' } });
    const child = extendActChain(root, 'agent:reviewer@wf/r-1');
    expect(child).toEqual({ sub: 'agent:reviewer@wf/r-1', act: { sub: 'agent:scribe@wf', act: { sub: 'user:alice' } } });
    expect(actChainOf(child)).toEqual(['user:alice', 'agent:scribe@wf', 'agent:reviewer@wf/r-1']);
    expect(formatActChain(child)).toBe('user:alice → agent:scribe@wf → agent:reviewer@wf/r-1');
  });

  it('the schema refuses unknown members, foreign subjects and absurd depth', () => {
    expect(ActClaimSchema.safeParse({ sub: 'agent:a@wf', act: { sub: 'user:u' } }).success).toBe(true);
    expect(ActClaimSchema.safeParse({ sub: 'agent:a@wf', iss: 'x' }).success).toBe(false);
    expect(ActClaimSchema.safeParse({ sub: 'root' }).success).toBe(false);
    let deep: Record<string, unknown> = { sub: 'user:u' };
    for (let i = 0; i < 20; i += 1) deep = { sub: `agent:a@wf${i}`, act: deep };
    expect(ActClaimSchema.safeParse(deep).success).toBe(false);
  });
});

describe('call scopes', () => {
  it('are written the same way at minting and at verifying', () => {
    expect(fsScope('read', './notes//a/../b.txt')).toBe('fs.read:notes/b.txt');
    expect(fsScope('list')).toBe('fs.list:.');
    expect(fsScope('list', '')).toBe('fs.list:.');
    expect(httpScope('post', 'https://api.example.com/v1/items?token=secret#x')).toBe('http.fetch:POST:api.example.com/v1/items');
    expect(httpScope('GET', 'http://127.0.0.1:8080/')).toBe('http.fetch:GET:127.0.0.1:8080/');
    expect(sqlScope('exec', 'inventory')).toBe('sql.exec:db:inventory');
    expect(() => httpScope('GET', 'file:///etc/passwd')).toThrow(TypeError);
  });

  it('parse into what the grant check needs', () => {
    expect(parseScope('http.fetch:GET:api.example.com/v1')).toMatchObject({ action: 'http.fetch', host: 'api.example.com' });
    expect(parseScope('sql.query:db:inventory')).toMatchObject({ action: 'sql.query', database: 'inventory' });
    expect(parseScope('word-count:invoke')).toEqual({ action: 'word-count', resource: 'invoke' });
    expect(() => parseScope('sql.exec:inventory')).toThrow(TypeError);
    expect(() => parseScope('http.fetch:api.example.com')).toThrow(TypeError);
  });

  it('are checked against the grant entry by entry', () => {
    const grants = { tools: ['word-count', 'fs.read', 'http.fetch'], subagents: [], hosts: ['api.example.com'], databases: [] };
    expect(scopeOutsideGrant(grants, 'word-count', ['fs.read:notes.txt', 'word-count:invoke'])).toBeNull();
    expect(scopeOutsideGrant(grants, 'word-count', ['fs.write:notes.txt'])).toBe('scope "fs.write:notes.txt": "fs.write" is not granted');
    expect(scopeOutsideGrant(grants, 'http.fetch', ['http.fetch:GET:api.example.com:8443/x'])).toBe('scope "http.fetch:GET:api.example.com:8443/x": host "api.example.com:8443" is not granted');
  });
});
