/**
 * Deny-by-default network, the blast-radius part: names that resolve to loopback, link-local or
 * private addresses, redirects there, and method / path-prefix narrowing of a grant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpCapability, isUrlAllowed, privateRangeOf, type Resolver } from '../../sandbox/capabilities/http-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, HostGrantEntry } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf, outputOf, startLoopbackServer, toolCall, type LoopbackServer } from '../sandbox/sandbox-test-kit';

let client: SandboxClient;
let server: LoopbackServer;
let forbidden: LoopbackServer;

beforeAll(async () => {
  forbidden = await startLoopbackServer((_req, res) => res.end('you should not be here'));
  server = await startLoopbackServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/to-localhost') res.writeHead(302, { location: `http://localhost:${forbidden.port}/stolen` }).end();
    else if (url === '/api/to-admin') res.writeHead(302, { location: '/admin' }).end();
    else if (url === '/api/see-other') res.writeHead(303, { location: '/api/landing' }).end();
    else res.end(JSON.stringify({ method: req.method, url, host: req.headers.host }));
  });
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client.close();
  await server.close();
  await forbidden.close();
});

const fetchWith = (allowedHosts: HostGrantEntry[], input: unknown) =>
  client.run(toolCall(builtinTools()['http.fetch'].source, input, { http: { allowedHosts } } satisfies CapabilityGrant, { timeoutMs: 5000 }));

describe('address ranges', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['172.32.0.1', undefined],
    ['8.8.8.8', undefined],
    ['2606:4700::1111', undefined],
    ['::ffff:8.8.8.8', undefined],
    ['not an address', undefined],
  ])('%s -> %s', (address, range) => {
    expect(privateRangeOf(address)).toBe(range);
  });
});

describe('a name that resolves to a private address', () => {
  it('localhost is refused although the grant names it, naming the address; the server is never contacted', async () => {
    const hits = server.hits.length;
    const response = await fetchWith([`localhost:${server.port}`], { url: `http://localhost:${server.port}/` });
    expect(codeOf(response)).toBe('ERR_NETWORK_DENIED');
    expect(response.ok ? '' : response.error.message).toMatch(/127\.0\.0\.1|::1/);
    expect(server.hits.length).toBe(hits);
  });

  it('is allowed when the entry says allowPrivate', async () => {
    const output = outputOf(await fetchWith([{ host: `localhost:${server.port}`, allowPrivate: true }], { url: `http://localhost:${server.port}/ok` })) as { body: string };
    expect(JSON.parse(output.body)).toMatchObject({ url: '/ok', host: `localhost:${server.port}` });
  });

  it('an IP literal entry is explicit on its own', async () => {
    expect(outputOf(await fetchWith([`127.0.0.1:${server.port}`], { url: `http://127.0.0.1:${server.port}/literal` }))).toMatchObject({ status: 200 });
  });

  it('a redirect to a granted name that resolves to loopback is refused', async () => {
    const response = await fetchWith([`127.0.0.1:${server.port}`, `localhost:${forbidden.port}`], { url: `http://127.0.0.1:${server.port}/to-localhost` });
    expect(codeOf(response)).toBe('ERR_NETWORK_DENIED');
    expect(forbidden.hits).toEqual([]);
  });

  it.each([
    [['10.0.0.5'], '10.0.0.5'],
    [['93.184.216.34', '192.168.0.7'], '192.168.0.7'],
    [['fe80::1'], 'fe80::1'],
    [['169.254.169.254'], '169.254.169.254'],
  ])('answers %j are refused, naming %s', async (addresses, named) => {
    const resolve: Resolver = async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    const http = createHttpCapability({ allowedHosts: ['internal.example'] }, { resolve });
    await expect(http.fetch('http://internal.example/')).rejects.toMatchObject({ code: 'ERR_NETWORK_DENIED', details: { address: named } });
  });

  it('the connection goes to the checked address (pinned), not to a second lookup', async () => {
    const asked: string[] = [];
    const resolve: Resolver = async (hostname) => {
      asked.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    // "pinned.invalid" does not exist in DNS: the request only works if the checked answer is used.
    const http = createHttpCapability({ allowedHosts: [{ host: `pinned.invalid:${server.port}`, allowPrivate: true }] }, { resolve });
    const response = await http.fetch(`http://pinned.invalid:${server.port}/pinned`);
    expect(JSON.parse(response.body)).toMatchObject({ url: '/pinned', host: `pinned.invalid:${server.port}` });
    expect(asked).toEqual(['pinned.invalid']);
  });

  it('a name that does not resolve is ERR_NETWORK_FAILED', async () => {
    const http = createHttpCapability({ allowedHosts: ['nowhere.invalid'] }, { resolve: async () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })) });
    await expect(http.fetch('http://nowhere.invalid/')).rejects.toMatchObject({ code: 'ERR_NETWORK_FAILED' });
  });
});

describe('methods and path prefixes', () => {
  it('a method outside the entry is refused before anything is sent', async () => {
    const entry = { host: `127.0.0.1:${server.port}`, methods: ['GET'] };
    const hits = server.hits.length;
    const response = await fetchWith([entry], { url: `http://127.0.0.1:${server.port}/x`, method: 'POST', body: 'data' });
    expect(codeOf(response)).toBe('ERR_NETWORK_DENIED');
    expect(response.ok ? '' : response.error.message).toContain('method POST');
    expect(server.hits.length).toBe(hits);
    expect(outputOf(await fetchWith([entry], { url: `http://127.0.0.1:${server.port}/x`, method: 'get' }))).toMatchObject({ status: 200 });
  });

  it('a path outside the prefixes is refused, also when reached by a redirect', async () => {
    const entry = { host: `127.0.0.1:${server.port}`, pathPrefixes: ['/api'] };
    const base = `http://127.0.0.1:${server.port}`;
    expect(outputOf(await fetchWith([entry], { url: `${base}/api/items?x=1` }))).toMatchObject({ status: 200 });
    expect(outputOf(await fetchWith([entry], { url: `${base}/api` }))).toMatchObject({ status: 200 });
    for (const path of ['/admin', '/apix', '/api/../admin', '/api/%2e%2e/admin', '/api/..%2Fadmin', '/API/items']) {
      expect(codeOf(await fetchWith([entry], { url: `${base}${path}` }))).toBe('ERR_NETWORK_DENIED');
    }
    expect(codeOf(await fetchWith([entry], { url: `${base}/api/to-admin` }))).toBe('ERR_NETWORK_DENIED');
    expect(server.hits.filter((h) => h.includes('admin') && !h.includes('to-admin'))).toEqual([]);
  });

  it('a redirect is re-checked with the method it turns into', async () => {
    const postOnly = { host: `127.0.0.1:${server.port}`, methods: ['POST'] };
    expect(codeOf(await fetchWith([postOnly], { url: `http://127.0.0.1:${server.port}/api/see-other`, method: 'POST' }))).toBe('ERR_NETWORK_DENIED');
  });

  it.each([
    [{ host: '127.0.0.1:8080', methods: ['GET'] }, 'http://127.0.0.1:8080/x', 'GET', true],
    [{ host: '127.0.0.1:8080', methods: ['GET'] }, 'http://127.0.0.1:8080/x', 'DELETE', false],
    [{ host: 'api.example.com', pathPrefixes: ['/v1/'] }, 'https://api.example.com/v1/users', undefined, true],
    [{ host: 'api.example.com', pathPrefixes: ['/v1/'] }, 'https://api.example.com/v1', undefined, false],
    [{ host: 'api.example.com', pathPrefixes: ['/v1'] }, 'https://api.example.com/v1', undefined, true],
    [{ host: 'api.example.com', pathPrefixes: ['/v1'] }, 'https://api.example.com/v10', undefined, false],
    [{ host: 'api.example.com', pathPrefixes: ['v1'] }, 'https://api.example.com/v1', undefined, false],
    ['api.example.com', 'https://api.example.com/anything', 'PATCH', true],
  ] as [HostGrantEntry, string, string | undefined, boolean][])('%j vs %s %s -> %s', (entry, url, method, expected) => {
    expect(isUrlAllowed(new URL(url), [entry], method)).toBe(expected);
  });

  it('several entries for one host combine', () => {
    const entries: HostGrantEntry[] = [
      { host: 'api.example.com', methods: ['GET'] },
      { host: 'api.example.com', methods: ['POST'], pathPrefixes: ['/v1/orders'] },
    ];
    expect(isUrlAllowed(new URL('https://api.example.com/v1/users'), entries, 'GET')).toBe(true);
    expect(isUrlAllowed(new URL('https://api.example.com/v1/orders/7'), entries, 'POST')).toBe(true);
    expect(isUrlAllowed(new URL('https://api.example.com/v1/users'), entries, 'POST')).toBe(false);
  });
});
