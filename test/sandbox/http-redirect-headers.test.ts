/**
 * On a redirect to another origin only safe headers travel: a credential under any name
 * (x-api-key, x-auth-token, ...) stays with the origin the tool sent it to, even when the next
 * origin is granted too. Same-origin redirects keep every header.
 */
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CROSS_ORIGIN_SAFE_HEADERS } from '../../sandbox/capabilities/http-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { outputOf, startLoopbackServer, toolCall, type LoopbackServer } from './sandbox-test-kit';

let client: SandboxClient;
/** Origin A: redirects. */
let a: LoopbackServer;
/** Origin B: granted too, echoes the headers it received. */
let b: LoopbackServer;
let grant: CapabilityGrant;

/** Headers Warden itself sets on every request. */
const MANAGED = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'user-agent']);

function echo(headers: IncomingHttpHeaders, res: import('node:http').ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers, body }));
}

beforeAll(async () => {
  b = await startLoopbackServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      if (req.url?.startsWith('/back-to-a')) res.writeHead(302, { location: `http://127.0.0.1:${a.port}/echo` }).end();
      else echo(req.headers, res, body);
    });
  });
  a = await startLoopbackServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const status = Number(url.searchParams.get('status') ?? '302');
      if (url.pathname === '/to-b') res.writeHead(status, { location: `http://127.0.0.1:${b.port}/echo` }).end();
      else if (url.pathname === '/to-b-and-back') res.writeHead(status, { location: `http://127.0.0.1:${b.port}/back-to-a` }).end();
      else if (url.pathname === '/same') res.writeHead(status, { location: '/echo' }).end();
      else echo(req.headers, res, body);
    });
  });
  client = await SandboxClient.start();
  grant = { http: { allowedHosts: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] } };
});

afterAll(async () => {
  await client.close();
  await a.close();
  await b.close();
});

/** The headers the last server received, minus those Warden sets itself. */
async function arrivingHeaders(path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Record<string, string>> {
  const input = { url: `http://127.0.0.1:${a.port}${path}`, method, headers, ...(body === undefined ? {} : { body }) };
  const output = outputOf(await client.run(toolCall(builtinTools()['http.fetch'].source, input, grant, { timeoutMs: 5000 }))) as { status: number; body: string };
  expect(output.status).toBe(200);
  const received = (JSON.parse(output.body) as { headers: Record<string, string> }).headers;
  return Object.fromEntries(Object.entries(received).filter(([name]) => !MANAGED.has(name)));
}

const CREDENTIALS = {
  authorization: 'Bearer secret-1',
  cookie: 'session=secret-2',
  'proxy-authorization': 'Basic secret-3',
  'x-api-key': 'secret-4',
  'x-auth-token': 'secret-5',
  'api-key': 'secret-6',
  'private-token': 'secret-7',
  'x-amz-security-token': 'secret-8',
  'x-custom': 'secret-9',
};
const SAFE = { accept: 'application/json', 'accept-language': 'de', 'content-language': 'en' };

describe('cross-origin redirects', () => {
  it.each([301, 302, 303, 307, 308])('a %i to another granted origin carries only safe headers', async (status) => {
    const arriving = await arrivingHeaders(`/to-b?status=${status}`, { ...CREDENTIALS, ...SAFE });
    expect(arriving).toEqual(SAFE);
  });

  it('a 307 keeps its body and content-type, not its credentials', async () => {
    const arriving = await arrivingHeaders('/to-b?status=307', { ...CREDENTIALS, 'content-type': 'text/plain' }, 'POST', 'payload');
    expect(arriving).toEqual({ 'content-type': 'text/plain' });
  });

  it('headers dropped on the way out do not come back when the chain returns to the first origin', async () => {
    const arriving = await arrivingHeaders('/to-b-and-back?status=302', { ...CREDENTIALS, ...SAFE });
    expect(arriving).toEqual(SAFE);
  });

  it('same-origin redirects keep every header', async () => {
    const arriving = await arrivingHeaders('/same?status=307', { ...CREDENTIALS, ...SAFE });
    expect(arriving).toEqual({ ...CREDENTIALS, ...SAFE });
  });

  it('whatever a header is called, only safe ones cross origins (property)', async () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((n) => !MANAGED.has(n));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(name, { minLength: 1, maxLength: 6 }), async (names) => {
        const sent = Object.fromEntries(names.map((n, i) => [n, `value-${i}`]));
        const arriving = await arrivingHeaders('/to-b?status=302', sent);
        for (const arrived of Object.keys(arriving)) expect(CROSS_ORIGIN_SAFE_HEADERS.has(arrived)).toBe(true);
        for (const n of names) if (CROSS_ORIGIN_SAFE_HEADERS.has(n)) expect(arriving[n]).toBe(sent[n]);
      }),
      { numRuns: 40 },
    );
  });
});
