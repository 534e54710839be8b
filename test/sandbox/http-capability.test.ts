import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUrlAllowed, MAX_HTTP_BODY_BYTES } from '../../sandbox/capabilities/http-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf, outputOf, startLoopbackServer, toolCall, type LoopbackServer } from './sandbox-test-kit';

let client: SandboxClient;
/** The granted server. */
let allowed: LoopbackServer;
/** A second local server on a port that is never granted. */
let forbidden: LoopbackServer;
let grant: CapabilityGrant;

beforeAll(async () => {
  forbidden = await startLoopbackServer((_req, res) => res.end('you should not be here'));
  allowed = await startLoopbackServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/redirect-to-forbidden') {
      res.writeHead(302, { location: `http://127.0.0.1:${forbidden.port}/stolen` }).end();
    } else if (url === '/redirect-307-to-forbidden') {
      res.writeHead(307, { location: `http://127.0.0.1:${forbidden.port}/stolen` }).end();
    } else if (url === '/redirect-to-file') {
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    } else if (url === '/redirect-home') {
      res.writeHead(303, { location: '/echo?from=redirect' }).end();
    } else if (url === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (url === '/huge') {
      res.end('x'.repeat(MAX_HTTP_BODY_BYTES + 10));
    } else if (url === '/hang') {
      // never answers
    } else {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json', 'x-test': 'yes' });
        res.end(JSON.stringify({ method: req.method, url, body, auth: req.headers['authorization'] ?? null }));
      });
    }
  });
  client = await SandboxClient.start();
  grant = { http: { allowedHosts: [`127.0.0.1:${allowed.port}`] } };
});

afterAll(async () => {
  await client.close();
  await allowed.close();
  await forbidden.close();
});

const fetchTool = (input: unknown, capabilities: CapabilityGrant = grant, timeoutMs = 5000) =>
  client.run(toolCall(builtinTools()['http.fetch'].source, input, capabilities, { timeoutMs }));

describe('http.fetch to a granted host', () => {
  it('returns status, headers and body', async () => {
    const output = outputOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/echo` })) as { status: number; headers: Record<string, string>; body: string };
    expect(output.status).toBe(201);
    expect(output.headers['x-test']).toBe('yes');
    expect(JSON.parse(output.body)).toEqual({ method: 'GET', url: '/echo', body: '', auth: null });
  });

  it('sends method, headers and body', async () => {
    const input = { url: `http://127.0.0.1:${allowed.port}/submit`, method: 'post', headers: { Authorization: 'Bearer t' }, body: 'payload' };
    const output = outputOf(await fetchTool(input)) as { body: string };
    expect(JSON.parse(output.body)).toEqual({ method: 'POST', url: '/submit', body: 'payload', auth: 'Bearer t' });
  });

  it('follows a redirect that stays on the granted host', async () => {
    const output = outputOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/redirect-home`, method: 'POST', body: 'dropped' })) as { body: string };
    expect(JSON.parse(output.body)).toEqual({ method: 'GET', url: '/echo?from=redirect', body: '', auth: null });
  });

  it('is a promise inside the isolate that user code can await in parallel', async () => {
    const source = `
      const urls = [1, 2, 3].map((n) => input.base + '/n' + n);
      const responses = await Promise.all(urls.map((url) => warden.http.fetch(url)));
      return responses.map((r) => JSON.parse(r.body).url);`;
    const response = await client.run(toolCall(source, { base: `http://127.0.0.1:${allowed.port}` }, grant));
    expect(outputOf(response)).toEqual(['/n1', '/n2', '/n3']);
  });
});

describe('http.fetch is denied by default', () => {
  it('a port that is not granted is ERR_NETWORK_DENIED and never contacted', async () => {
    const hitsBefore = forbidden.hits.length;
    const response = await fetchTool({ url: `http://127.0.0.1:${forbidden.port}/` });
    expect(codeOf(response)).toBe('ERR_NETWORK_DENIED');
    expect(response.ok ? '' : response.error.message).toContain(`127.0.0.1:${forbidden.port}`);
    expect(forbidden.hits.length).toBe(hitsBefore);
  });

  it('another name for the same machine is not granted', async () => {
    expect(codeOf(await fetchTool({ url: `http://localhost:${allowed.port}/` }))).toBe('ERR_NETWORK_DENIED');
  });

  it('a redirect to a port that is not granted is ERR_NETWORK_DENIED', async () => {
    for (const path of ['/redirect-to-forbidden', '/redirect-307-to-forbidden']) {
      const response = await fetchTool({ url: `http://127.0.0.1:${allowed.port}${path}` });
      expect(codeOf(response)).toBe('ERR_NETWORK_DENIED');
    }
    expect(forbidden.hits).toEqual([]);
  });

  it('a redirect to file: is ERR_NETWORK_DENIED', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/redirect-to-file` }))).toBe('ERR_NETWORK_DENIED');
  });

  it('too many redirects is ERR_NETWORK_FAILED', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/loop` }))).toBe('ERR_NETWORK_FAILED');
  });

  it.each(['file:///etc/passwd', 'ftp://127.0.0.1/', 'data:text/plain,hi', 'not a url'])('%j is ERR_NETWORK_DENIED', async (url) => {
    expect(codeOf(await fetchTool({ url }))).toBe('ERR_NETWORK_DENIED');
  });

  it('credentials in the URL are ERR_NETWORK_DENIED', async () => {
    expect(codeOf(await fetchTool({ url: `http://user:pw@127.0.0.1:${allowed.port}/` }))).toBe('ERR_NETWORK_DENIED');
  });

  it('an empty grant denies everything', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/` }, { http: { allowedHosts: [] } }))).toBe('ERR_NETWORK_DENIED');
  });

  it('a plain host entry does not grant other ports', async () => {
    const plain = { http: { allowedHosts: ['127.0.0.1'] } };
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/` }, plain))).toBe('ERR_NETWORK_DENIED');
  });

  it('without the capability there is no warden.http', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/` }, {}))).toBe('ERR_TOOL_THREW');
  });
});

describe('http.fetch failures', () => {
  it('a refused connection is ERR_NETWORK_FAILED', async () => {
    const closed = await startLoopbackServer((_req, res) => res.end());
    const port = closed.port;
    await closed.close();
    const response = await fetchTool({ url: `http://127.0.0.1:${port}/` }, { http: { allowedHosts: [`127.0.0.1:${port}`] } });
    expect(codeOf(response)).toBe('ERR_NETWORK_FAILED');
  });

  it('a body over the cap is ERR_NETWORK_FAILED', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/huge` }, grant, 10_000))).toBe('ERR_NETWORK_FAILED');
  });

  it('a server that never answers ends in ERR_SANDBOX_TIMEOUT', async () => {
    expect(codeOf(await fetchTool({ url: `http://127.0.0.1:${allowed.port}/hang` }, grant, 400))).toBe('ERR_SANDBOX_TIMEOUT');
  });

  it('more than 16 requests in flight from one call are refused', async () => {
    const source = `
      const attempts = Array.from({ length: 17 }, () => warden.http.fetch(input.url).then(() => 'answered', (e) => e.code));
      return await attempts[16];`;
    const response = await client.run(toolCall(source, { url: `http://127.0.0.1:${allowed.port}/hang` }, grant, { timeoutMs: 2000 }));
    expect(outputOf(response)).toBe('ERR_NETWORK_FAILED');
  });

  it('an infinite loop after an awaited fetch is ERR_SANDBOX_TIMEOUT', async () => {
    const source = 'await warden.http.fetch(input.url); while (true) {}';
    const response = await client.run(toolCall(source, { url: `http://127.0.0.1:${allowed.port}/echo` }, grant, { timeoutMs: 400 }));
    expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
  });
});

describe('host matching rules', () => {
  it.each([
    ['127.0.0.1:8080', 'http://127.0.0.1:8080/x', true],
    ['127.0.0.1:8080', 'https://127.0.0.1:8080/x', true],
    ['127.0.0.1:8080', 'http://127.0.0.1:8081/x', false],
    ['127.0.0.1:8080', 'http://127.0.0.1/x', false],
    ['api.example.com', 'https://api.example.com/v1', true],
    ['api.example.com', 'http://api.example.com/v1', true],
    ['api.example.com', 'https://api.example.com:443/v1', true],
    ['api.example.com', 'https://api.example.com:8443/v1', false],
    ['api.example.com', 'http://api.example.com:443/v1', false],
    ['api.example.com', 'https://API.Example.COM/v1', true],
    ['api.example.com', 'https://evil.api.example.com/', false],
    ['api.example.com', 'https://api.example.com.evil.net/', false],
    ['api.example.com:80', 'https://api.example.com/', false],
    ['[::1]:9000', 'http://[::1]:9000/', true],
    ['[::1]:9000', 'http://[::2]:9000/', false],
    ['127.0.0.1', 'http://127.1/', true],
    ['bad entry with spaces', 'http://bad/', false],
    ['example.com:99999', 'http://example.com:99999/', false],
  ])('%s vs %s -> %s', (entry, url, expected) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    expect(parsed !== undefined && isUrlAllowed(parsed, [entry])).toBe(expected);
  });
});
