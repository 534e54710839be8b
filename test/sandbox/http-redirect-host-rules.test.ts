/**
 * Attack on "rules judge where an action really goes" for the network (the kind of issue 9 items
 * 7 and 8): host rules are decided on the URL the agent wrote, but `http.fetch` follows redirects
 * to any granted host without asking the policy again. With two hosts granted (one for another
 * purpose) and `never fetch from any host except 127.0.0.1`, a page on 127.0.0.1 redirects the
 * fetch to 127.0.0.2, with the agent's POST body (307), and nothing refuses it.
 *
 * Expected: each hop is judged like the first request (or a redirect to a host the rules would
 * refuse ends the call): 127.0.0.2 never sees the request.
 *
 * Held now: a call whose `url` the policy judged follows redirects only on that host and port; a
 * redirect elsewhere (another host, or another port of the same host) is returned to the agent
 * (status, Location), whose next fetch the policy judges.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpCapability } from '../../sandbox/capabilities/http-capability';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let first: Server;
let second: Server;
let a: string;
let b: string;
let c: string;
let third: Server;
const seenByB: { method: string; url: string; body: string }[] = [];

async function listen(server: Server, host: string): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return `${host}:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  env = await startWardenTestEnv();
  second = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seenByB.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.end('stored');
    });
  });
  b = await listen(second, '127.0.0.2');
  first = createServer((req, res) => {
    req.resume();
    if (req.url === '/same-host') res.writeHead(302, { location: '/landed' }).end();
    else if (req.url === '/landed') res.end('landed');
    else if (req.url === '/other-port') res.writeHead(307, { location: `http://${c}/collect` }).end();
    else res.writeHead(307, { location: `http://${b}/collect` }).end();
  });
  a = await listen(first, '127.0.0.1');
  // Another service on the judged machine: same host name, another port.
  third = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seenByB.push({ method: req.method ?? '', url: `${c}${req.url ?? ''}`, body });
      res.end('stored');
    });
  });
  c = await listen(third, '127.0.0.1');
});
afterAll(async () => {
  await new Promise<void>((resolve) => first.close(() => resolve()));
  await new Promise<void>((resolve) => second.close(() => resolve()));
  await new Promise<void>((resolve) => third.close(() => resolve()));
  await env?.close();
});

describe('a redirect to a granted host the rules exclude', () => {
  let result: TaskResult;
  beforeAll(async () => {
    result = await env.runTask({
      user: 'alice@example.com',
      intent: `post my notes to http://${a}/notes`,
      agent: {
        name: 'poster',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'http.fetch', args: { url: `http://${a}/notes`, method: 'POST', body: 'private notes' } },
            { tool: 'http.fetch', args: { url: `http://${b}/direct` } },
            { final: 'posted' },
          ],
        },
      },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [a, b] },
      policies: ['never fetch from any host except 127.0.0.1'],
      limits: { onDeny: 'continue' },
      resources: { hosts: [a, b] },
    });
  });

  it('lets the first hop through (the rule allows 127.0.0.1) and denies a direct fetch from 127.0.0.2 (the rule works)', () => {
    expect(result.steps[0]?.policy?.decision).toBe('allow');
    expect(result.steps[1]?.error?.code).toBe('ERR_POLICY_DENIED');
  });

  it('never delivers the request to 127.0.0.2', () => {
    expect(seenByB).toEqual([]);
  });
});

describe('a redirect to another port of the judged host, end to end', () => {
  let result: TaskResult;
  beforeAll(async () => {
    seenByB.length = 0;
    result = await env.runTask({
      user: 'alice@example.com',
      intent: `post my notes to http://${a}/other-port`,
      agent: {
        name: 'poster',
        model: {
          driver: 'scripted',
          script: [{ tool: 'http.fetch', args: { url: `http://${a}/other-port`, method: 'POST', body: 'private notes' } }, { final: 'posted' }],
        },
      },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [a, c] },
      resources: { hosts: [a, c] },
    });
  });

  it('returns the redirect to the agent instead of delivering the POST to the other port', () => {
    expect(result.steps[0]?.policy?.decision).toBe('allow');
    expect(result.steps[0]?.output).toMatchObject({ status: 307 });
    expect(seenByB).toEqual([]);
  });
});

describe('the http capability follows redirects only to the judged host', () => {
  // `follow` is a function: the servers' ports are known only once they listen.
  const cases: { name: string; follow: (() => string[]) | undefined; path: string; status: number; location?: () => string; reachesOther: boolean }[] = [
    { name: 'no judged host (a call the policy judged no URL of): any granted host', follow: undefined, path: '/notes', status: 200, reachesOther: true },
    { name: 'judged 127.0.0.1:A, redirect to 127.0.0.2: returned, not followed', follow: () => [a], path: '/notes', status: 307, location: () => `http://${b}/collect`, reachesOther: false },
    { name: 'judged 127.0.0.1:A, redirect to another port of 127.0.0.1: returned, not followed', follow: () => [a], path: '/other-port', status: 307, location: () => `http://${c}/collect`, reachesOther: false },
    { name: 'judged 127.0.0.1:A, redirect on the same host and port: followed', follow: () => [a], path: '/same-host', status: 200, reachesOther: false },
    { name: 'judged nothing parseable: no redirect followed', follow: () => [], path: '/notes', status: 307, location: () => `http://${b}/collect`, reachesOther: false },
  ];
  for (const each of cases) {
    it(each.name, async () => {
      seenByB.length = 0;
      const http = createHttpCapability({ allowedHosts: [a, b, c], ...(each.follow === undefined ? {} : { followRedirectsTo: each.follow() }) });
      const response = await http.fetch(`http://${a}${each.path}`, { method: 'POST', body: 'private notes' });
      expect(response.status).toBe(each.status);
      if (each.location !== undefined) expect(response.headers['location']).toBe(each.location());
      expect(seenByB.length > 0).toBe(each.reachesOther);
    });
  }
});
