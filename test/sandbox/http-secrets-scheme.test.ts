/**
 * Regression for newcomer-15's finding "secrets are bound to a host, not to https": a secret for
 * `api.example.com` went to `http://api.example.com` in cleartext, and came back on an
 * https -> http redirect to the same host.
 *
 * The kind (secrets/secret-origin.ts): a secret travels over https only, unless its key names a
 * plain-http origin (`http://host:port`); after a redirect from https to http, no secret is added
 * for the rest of the chain. Real loopback HTTP and HTTPS servers (a throwaway local CA).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpCapability } from '../../sandbox/capabilities/http-capability';

const TOKEN = 'tok-scheme-5e4d3c2b1a09';
let dir: string;
let cert: string;
let plain: Server;
let secure: Server;
let httpPort: number;
let httpsPort: number;
const received: { scheme: string; path: string; headers: IncomingHttpHeaders }[] = [];

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-secret-scheme-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  plain = createHttpServer((req, res) => {
    received.push({ scheme: 'http', path: req.url ?? '', headers: req.headers });
    res.end('plain');
  });
  httpPort = await listen(plain);
  secure = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    received.push({ scheme: 'https', path: req.url ?? '', headers: req.headers });
    if (req.url === '/downgrade') res.writeHead(302, { location: `http://127.0.0.1:${httpPort}/after-downgrade` }).end();
    else res.end('secure');
  });
  httpsPort = await listen(secure);
});
afterAll(() => {
  plain?.close();
  secure?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Fetches `url` with a secret under `key`; which schemes and paths received the token. */
async function fetchWith(key: (ports: { http: number; https: number }) => string, url: (ports: { http: number; https: number }) => string): Promise<string[]> {
  const ports = { http: httpPort, https: httpsPort };
  const before = received.length;
  const http = createHttpCapability(
    { allowedHosts: [`127.0.0.1:${httpPort}`, `127.0.0.1:${httpsPort}`], secrets: [{ host: key(ports), headers: { authorization: `Bearer ${TOKEN}` } }], redact: [TOKEN] },
    { ca: cert },
  );
  await http.fetch(url(ports));
  return received.slice(before).filter((r) => String(r.headers.authorization ?? '').includes(TOKEN)).map((r) => `${r.scheme} ${r.path}`);
}

type Ports = { http: number; https: number };
describe('which scheme a secret travels over', () => {
  it.each<[string, (p: Ports) => string, (p: Ports) => string, string[]]>([
    ['host:port over http: not sent (cleartext)', (p) => `127.0.0.1:${p.http}`, (p) => `http://127.0.0.1:${p.http}/a`, []],
    ['https://host:port over http: not sent', (p) => `https://127.0.0.1:${p.http}`, (p) => `http://127.0.0.1:${p.http}/b`, []],
    ['http://host:port over http: sent (bound explicitly)', (p) => `http://127.0.0.1:${p.http}`, (p) => `http://127.0.0.1:${p.http}/c`, ['http /c']],
    ['host:port over https: sent', (p) => `127.0.0.1:${p.https}`, (p) => `https://127.0.0.1:${p.https}/d`, ['https /d']],
    ['https://host:port/ over https: sent', (p) => `https://127.0.0.1:${p.https}/`, (p) => `https://127.0.0.1:${p.https}/e`, ['https /e']],
    ['http://host:port over https: not sent (another origin)', (p) => `http://127.0.0.1:${p.https}`, (p) => `https://127.0.0.1:${p.https}/f`, []],
  ])('%s', async (_what, key, url, expected) => {
    expect(await fetchWith(key, url)).toEqual(expected);
  });

  it('after an https -> http redirect, no secret is added, even one bound to that http origin', async () => {
    const ports = { http: httpPort, https: httpsPort };
    const before = received.length;
    const http = createHttpCapability(
      {
        allowedHosts: [`127.0.0.1:${httpPort}`, `127.0.0.1:${httpsPort}`],
        secrets: [
          { host: `127.0.0.1:${ports.https}`, headers: { authorization: `Bearer ${TOKEN}` } },
          { host: `http://127.0.0.1:${ports.http}`, headers: { 'x-api-key': TOKEN } },
        ],
        redact: [TOKEN],
      },
      { ca: cert },
    );
    const response = await http.fetch(`https://127.0.0.1:${httpsPort}/downgrade`);
    expect(response.body).toBe('plain');
    const hops = received.slice(before);
    expect(hops.map((h) => `${h.scheme} ${h.path}`)).toEqual(['https /downgrade', 'http /after-downgrade']);
    expect(String(hops[0]!.headers.authorization)).toContain(TOKEN);
    expect(JSON.stringify(hops[1]!.headers)).not.toContain(TOKEN);
  });
});
