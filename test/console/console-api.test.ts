/**
 * The console's HTTP surface, attacked from outside the browser: every API route refuses a call
 * without the login token (and the token anywhere but the Authorization header), a request for
 * another host name, a foreign origin, and bodies that are not a valid decision; the server
 * listens on 127.0.0.1 only and its page carries a strict Content-Security-Policy.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@temporalio/client';
import { ConsoleData, verificationOf } from '../../console/console-data';
import { CONSOLE_API_ROUTES, startConsoleServer, type ConsoleServer } from '../../console/console-server';
import { bearerTokenOf, newConsoleToken, tokenMatches } from '../../console/console-token';
import { CredentialError } from '../../errors';
import { connectClient } from '../../temporal/connect';
import { testTemporalConfig } from '../support/temporal';
import { TEST_STATE_DIR } from '../support/warden-test-env';

let server: ConsoleServer;
let readOnly: ConsoleServer;
let close: () => Promise<void>;
/** The key the console would sign with (the decision call is replaced here, so it signs nothing). */
const FAKE_KEY = { type: 'warden-approver-key', name: 'sec-lead', kid: 'k1', privateJwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA', d: 'AAAA' } } as const;
const decisions: unknown[] = [];

beforeAll(async () => {
  const { client, connection }: { client: Client; connection: { close(): Promise<void> } } = await connectClient(testTemporalConfig());
  const data = new ConsoleData({
    client,
    stateDir: TEST_STATE_DIR,
    approverKey: FAKE_KEY,
    // Records what would be decided; nothing here is pending.
    decideApproval: async (_client, { key, ...decision }) => {
      decisions.push({ approver: key.name, ...decision });
      throw new CredentialError('ERR_APPROVAL_NOT_PENDING', `${decision.workflowId} has no action ${decision.requestId} waiting for approval`);
    },
  });
  server = await startConsoleServer({ data });
  readOnly = await startConsoleServer({ data: new ConsoleData({ client, stateDir: TEST_STATE_DIR }) });
  close = async () => {
    await server.close();
    await readOnly.close();
    await connection.close();
  };
});
afterAll(async () => close?.());

/** A raw HTTP request to the console (node:http, so Host and every header are ours to set). */
function call(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { host: `127.0.0.1:${server.port}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const concrete = (path: string) => path.replace('{workflowId}', 'no-such-task');
const bearer = () => ({ authorization: `Bearer ${server.token}` });

describe('the console server', () => {
  it('listens on 127.0.0.1 only', () => {
    expect((server.server.address() as AddressInfo).address).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.loginUrl).toBe(`${server.url}/#token=${server.token}`);
  });

  const refusals: [string, (token: string) => Record<string, string>, string][] = [
    ['no credentials', () => ({}), ''],
    ['a wrong token', () => ({ authorization: `Bearer ${newConsoleToken()}` }), ''],
    ['the token with another scheme', (t) => ({ authorization: `Basic ${t}` }), ''],
    ['the token without a scheme', (t) => ({ authorization: t }), ''],
    ['the token in a cookie', (t) => ({ cookie: `token=${t}` }), ''],
    ['the token in the query string', () => ({}), '?token={token}'],
    ['the token with a character more', (t) => ({ authorization: `Bearer ${t}x` }), ''],
  ];
  for (const route of CONSOLE_API_ROUTES) {
    it.each(refusals)(`${route.method} ${route.path} refuses %s with 401`, async (_what, headers, query) => {
      const body = route.method === 'POST' ? JSON.stringify({ workflowId: 'w', requestId: '0', approved: true }) : undefined;
      const res = await call(route.method, `${concrete(route.path)}${query.replace('{token}', server.token)}`, { ...headers(server.token), ...(body ? { 'content-type': 'application/json' } : {}) }, body);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="warden-console"');
      expect(JSON.parse(res.body)).toEqual({ error: { code: 'ERR_CONSOLE_UNAUTHENTICATED', message: expect.any(String) } });
    });

    it(`${route.method} ${route.path} answers with the token`, async () => {
      const body = route.method === 'POST' ? JSON.stringify({ workflowId: 'w', requestId: '0', approved: true }) : undefined;
      const res = await call(route.method, concrete(route.path), { ...bearer(), ...(body ? { 'content-type': 'application/json' } : {}) }, body);
      // Authenticated: an answer of the route itself (no such task, nothing pending, or data).
      expect([200, 404, 409]).toContain(res.status);
    });
  }
  it('refused calls decided nothing', () => {
    expect(decisions.every((d) => (d as { approver: string }).approver === 'sec-lead')).toBe(true);
    expect(decisions).toHaveLength(1);
  });

  it.each([`evil.example:${0}`, 'evil.example', '127.0.0.1', 'localhost:1', '[::1]'])('refuses Host %s (DNS rebinding), even with the token', async (host) => {
    const res = await call('GET', '/api/tasks', { ...bearer(), host: host.replace(':0', `:${server.port}`) });
    expect(res.status).toBe(421);
    const page = await call('GET', '/', { host: host.replace(':0', `:${server.port}`) });
    expect(page.status).toBe(421);
  });

  it('accepts localhost:<port> as its own name', async () => {
    expect((await call('GET', '/api/session', { ...bearer(), host: `localhost:${server.port}` })).status).toBe(200);
  });

  it.each([
    ['a foreign origin', { origin: 'http://evil.example' }, JSON.stringify({ workflowId: 'w', requestId: '0', approved: true }), 403, 'ERR_CONSOLE_ORIGIN'],
    ['a body that is not JSON', {}, 'approve it', 400, 'the body is not JSON'],
    ['a missing field', {}, JSON.stringify({ workflowId: 'w', approved: true }), 400, 'requestId'],
    ['a wrongly typed field', {}, JSON.stringify({ workflowId: 'w', requestId: '0', approved: 'yes' }), 400, 'approved'],
    ['an extra field (the approver cannot be chosen by the page)', {}, JSON.stringify({ workflowId: 'w', requestId: '0', approved: true, approver: 'user:ceo' }), 400, 'approver'],
    ['a body too large', {}, JSON.stringify({ workflowId: 'w', requestId: '0', approved: true, reason: 'x'.repeat(20_000) }), 413, 'larger than'],
    ['another content type', { 'content-type': 'text/plain' }, JSON.stringify({ workflowId: 'w', requestId: '0', approved: true }), 415, 'application/json'],
  ])('a decision with %s is refused', async (_what, headers, body, status, mention) => {
    const before = decisions.length;
    const res = await call('POST', '/api/approvals/decide', { ...bearer(), 'content-type': 'application/json', ...headers }, body);
    expect(res.status).toBe(status);
    expect(res.body).toContain(mention);
    expect(decisions).toHaveLength(before);
  });

  it('names a decision on nothing pending (409), and wrong methods and paths', async () => {
    const res = await call('POST', '/api/approvals/decide', { ...bearer(), 'content-type': 'application/json', origin: server.url }, JSON.stringify({ workflowId: 'w-x', requestId: '3', approved: false, reason: 'no' }));
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'ERR_APPROVAL_NOT_PENDING' } });
    expect(decisions.at(-1)).toEqual({ approver: 'sec-lead', workflowId: 'w-x', requestId: '3', approved: false, reason: 'no' });
    expect((await call('DELETE', '/api/tasks', bearer())).status).toBe(405);
    expect((await call('GET', '/api/approvals/decide', bearer())).status).toBe(405);
    expect((await call('GET', '/api/nothing', bearer())).status).toBe(404);
    expect((await call('GET', '/etc/passwd')).status).toBe(404);
    expect((await call('GET', '/../console/console-server.ts')).status).toBe(404);
  });

  it('without an approver key, shows the session as read-only and decides nothing (403)', async () => {
    const session = await fetch(`${readOnly.url}/api/session`, { headers: { authorization: `Bearer ${readOnly.token}` } });
    expect(await session.json()).toEqual({ approver: null, readOnly: true });
    const res = await fetch(`${readOnly.url}/api/approvals/decide`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readOnly.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflowId: 'w', requestId: '0', approved: true }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_CONSOLE_READ_ONLY' } });
    // A token of one console opens no other.
    expect((await fetch(`${readOnly.url}/api/session`, { headers: { authorization: `Bearer ${server.token}` } })).status).toBe(401);
  });

  it('serves the page without data, under a strict Content-Security-Policy', async () => {
    const page = await call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toContain(server.token);
    expect(page.body).not.toMatch(/<script>[^<]/);
    const script = await call('GET', '/console.js');
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    // Data becomes text nodes only: no API of the page parses a string as markup.
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) expect(script.body).not.toContain(sink);
  });
});

describe('tokens', () => {
  it('are 256 random bits, and compared whole', () => {
    const token = newConsoleToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newConsoleToken()).not.toBe(token);
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(token, token.slice(0, -1))).toBe(false);
    expect(tokenMatches(token, undefined)).toBe(false);
    expect(tokenMatches(token, '')).toBe(false);
  });

  it.each([
    ['Bearer abc', 'abc'],
    ['Bearer  abc', undefined],
    ['bearer abc', undefined],
    ['Bearer abc def', undefined],
    ['Basic abc', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('Authorization %j carries bearer %j', (header, token) => {
    expect(bearerTokenOf(header)).toBe(token);
  });
});

describe('record verification states', () => {
  const report = (over: object) => ({ ok: true, path: 'p', records: 3, totalRecords: 10, checkpoints: 1, latestCheckpoint: { id: 1, treeSize: 8, rootHash: 'r', timestamp: 't' }, uncheckpointed: 2, ...over });
  it.each([
    [null, report({}), 'no-record'],
    [3, undefined, 'no-record'],
    [3, report({}), 'checkpointed'],
    [8, report({}), 'signed'],
    [5, report({ ok: false, firstProblem: { seq: 5, kind: 'changed', message: 'm' } }), 'broken'],
    [4, report({ ok: false, firstProblem: { seq: 5, kind: 'changed', message: 'm' } }), 'checkpointed'],
    [2, report({ latestCheckpoint: null }), 'signed'],
  ])('record %s under %j is %s', (seq, r, state) => {
    expect(verificationOf(seq, r as never)).toBe(state);
  });
});
