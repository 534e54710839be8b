/**
 * Regression (was an attack by newcomer 15; fixed in secrets/secret-origin.ts and the http
 * capability; the scheme table is test/sandbox/http-secrets-scheme.test.ts). A secret used to be bound to a host, not to a scheme. For an entry without a
 * port (`api.example.com`, the README's own example) the HTTP capability adds the secret to any
 * request whose port is the default port of *its* scheme, so an agent that writes `http://`
 * instead of `https://` sends the API key in cleartext on port 80 (to any on-path observer); the
 * same per-hop rule puts it back on an https -> http redirect (the downgrade curl and requests
 * refuse to carry Authorization across). Expected: a secret for a host travels only over https,
 * unless the task names a plain-http endpoint explicitly (an entry with a port, or a loopback
 * service).
 *
 * Real Temporal, a real plain-HTTP receiver on port 80 of a loopback address (needs root to bind
 * port 80, as CI runs; an IP literal stands for the host name so no resolver is needed).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const TOKEN = 'tok-cleartext-9a8b7c6d5e4f3a2b1c0d';
/** A loopback address of its own, so port 80 is free whatever else runs on 127.0.0.1. */
const HOST = '127.15.80.1';
const isRoot = process.getuid?.() === 0;

let env: WardenTestEnv;
let plain: Server;
const received: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  if (!isRoot) return;
  plain = createServer((req, res) => {
    received.push(req.headers);
    res.end('hello over plain http');
  });
  await new Promise<void>((resolve, reject) => {
    plain.once('error', reject);
    plain.listen(80, HOST, resolve);
  });
  env = await startWardenTestEnv({ ...process.env, TICKETS_TOKEN: TOKEN });
});

afterAll(async () => {
  await env?.close();
  plain?.close();
});

describe('a secret for a host entry without a port', () => {
  it.skipIf(!isRoot)('is not sent over plain http when the agent picks http://', async () => {
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: `Read the ticket list at http://${HOST}/tickets`,
      agent: { name: 'ticketeer', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${HOST}/tickets` } }, { final: 'read' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [HOST] },
      limits: { onDeny: 'continue' },
      resources: { hosts: [HOST], secrets: { [HOST]: { authorization: 'Bearer ${env:TICKETS_TOKEN}' } } },
    });
    expect(received.length, `the request was not made (${JSON.stringify(result.steps[0]?.error)})`).toBeGreaterThan(0);
    const cleartext = received.filter((headers) => String(headers.authorization ?? '').includes(TOKEN));
    expect(cleartext.length, 'the API key crossed the network in cleartext (http on port 80)').toBe(0);
  }, 120_000);
});
