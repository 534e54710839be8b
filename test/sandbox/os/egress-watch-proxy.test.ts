/**
 * The OS sandbox's egress proxy as the monitor's way to see and stop what a program does on the
 * network: it asks the egress gate before each granted connection (a held destination never
 * connects: the host receives nothing), measures the bytes each request sends (a plain request's
 * body, everything sent into a tunnel), and its decisions become `http.fetch` step effects that
 * keep only the origin (no path or query: a program may put what it read into a URL).
 */
import * as http from 'node:http';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { egressHoldReason, type EgressWatch } from '../../../monitoring/egress-watch';
import { egressEffectsOf, MAX_EGRESS_EFFECTS } from '../../../sandbox/os/egress-effects';
import { startEgressProxy, type EgressDecision, type EgressGate, type EgressProxy } from '../../../sandbox/os/egress-proxy';
import { startLoopbackServer, type LoopbackServer } from '../../support/monitor-kit';
import { makeTempDir } from '../sandbox-test-kit';

let known: LoopbackServer;
let fresh: LoopbackServer;
let proxy: EgressProxy | undefined;

beforeAll(async () => {
  known = await startLoopbackServer('{"status":"green"}');
  fresh = await startLoopbackServer();
});
afterAll(async () => Promise.all([known.close(), fresh.close()]));
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  known.received.length = 0;
  fresh.received.length = 0;
});

function watchGate(watch: EgressWatch): EgressGate {
  return ({ host, method }) => {
    const reason = egressHoldReason(watch, host, method);
    return reason === undefined ? undefined : { heldBy: 'monitor', reason };
  };
}

async function start(gate: EgressGate | undefined, seen: EgressDecision[] = []): Promise<EgressProxy> {
  proxy = await startEgressProxy({
    socketPath: path.join(makeTempDir('egress-watch'), 'egress.sock'),
    allowedHosts: [known.host, fresh.host],
    ...(gate === undefined ? {} : { gate }),
    onDecision: (d) => seen.push(d),
  });
  return proxy;
}

/** A plain request through the proxy: status and body. */
function viaProxy(p: EgressProxy, method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: p.socketPath, method, path: url }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A request sent through a CONNECT tunnel: the tunnel's status, and the upstream answer when it opened. */
function viaTunnel(p: EgressProxy, host: string, raw: string): Promise<{ status: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: p.socketPath, method: 'CONNECT', path: host });
    req.on('connect', (res, socket: Socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, answer: '' });
        return;
      }
      let answer = '';
      socket.on('data', (c: Buffer) => {
        answer += c.toString();
        if (answer.includes('\r\n\r\n') && /\}$/.test(answer)) socket.end();
      });
      socket.on('close', () => resolve({ status: 200, answer }));
      socket.write(raw);
    });
    req.on('error', reject);
    req.end();
  });
}

const SECRET = 'PAYMENTS_API_KEY=pk_live_5e1f0c9a7b3d';

describe('the egress gate, asked before the proxy connects', () => {
  const watch = (hold: EgressWatch['hold']): EgressWatch => ({ knownHosts: [], hold, agent: 'clerk' });

  it.each([
    ['a POST to an unknown host, watch holds writes', 'writes', 'POST', true],
    ['a GET to an unknown host, watch holds writes', 'writes', 'GET', false],
    ['a GET to an unknown host, watch holds all', 'all', 'GET', true],
    ['a POST to an unknown host, watch holds nothing', 'none', 'POST', false],
  ] as const)('%s: held %s', async (_what, hold, method, held) => {
    const p = await start(watchGate({ ...watch(hold), knownHosts: [known.host] }));
    const answer = await viaProxy(p, method, `${fresh.url}/collect`, method === 'POST' ? SECRET : undefined);
    if (held) {
      expect(answer.status).toBe(403);
      expect(answer.body).toContain('held by the monitor');
      expect(answer.body).toContain(fresh.host);
      expect(fresh.received).toEqual([]);
      expect(p.decisions).toEqual([expect.objectContaining({ allowed: false, heldBy: 'monitor', host: fresh.host, error: expect.objectContaining({ code: 'ERR_NETWORK_DENIED' }) })]);
    } else {
      expect(answer.status).toBe(200);
      expect(fresh.received).toHaveLength(1);
      expect(p.decisions).toEqual([expect.objectContaining({ allowed: true, host: fresh.host, bytesOut: method === 'POST' ? SECRET.length : 0 })]);
    }
  });

  it('lets a known host through whatever the watch holds, and measures the body sent', async () => {
    const p = await start(watchGate({ ...watch('all'), knownHosts: [known.host] }));
    const body = 'x'.repeat(5000);
    expect((await viaProxy(p, 'POST', `${known.url}/upload?part=1`, body)).status).toBe(200);
    expect(known.received.map((r) => r.body.length)).toEqual([5000]);
    expect(p.decisions).toEqual([expect.objectContaining({ allowed: true, host: known.host, bytesOut: 5000 })]);
  });

  it('holds an opaque tunnel to an unknown host as a write (nothing of it reaches the host)', async () => {
    const p = await start(watchGate(watch('writes')));
    const raw = `POST /collect HTTP/1.1\r\nhost: ${fresh.host}\r\ncontent-length: ${SECRET.length}\r\nconnection: close\r\n\r\n${SECRET}`;
    expect((await viaTunnel(p, fresh.host, raw)).status).toBe(403);
    expect(fresh.received).toEqual([]);
    expect(p.decisions).toEqual([expect.objectContaining({ method: 'CONNECT', allowed: false, heldBy: 'monitor', host: fresh.host })]);
  });

  it('counts every byte sent into an allowed tunnel, and reports decisions as they are made', async () => {
    const seen: EgressDecision[] = [];
    const p = await start(undefined, seen);
    const raw = `POST /collect HTTP/1.1\r\nhost: ${fresh.host}\r\ncontent-length: ${SECRET.length}\r\nconnection: close\r\n\r\n${SECRET}`;
    const tunnel = await viaTunnel(p, fresh.host, raw);
    expect(tunnel.answer).toContain('200 OK');
    expect(fresh.received.map((r) => r.body)).toEqual([SECRET]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'CONNECT', allowed: true, host: fresh.host, bytesOut: Buffer.byteLength(raw) });
  });

  it('asks nothing about a host the grant refuses (refused by the grant, not held)', async () => {
    let asked = 0;
    const p = await start(() => {
      asked += 1;
      return undefined;
    });
    expect((await viaProxy(p, 'GET', 'http://127.0.0.1:9/x')).status).toBe(403);
    expect(asked).toBe(0);
    expect(p.decisions[0]).toMatchObject({ allowed: false, host: '127.0.0.1:9' });
    expect(p.decisions[0]!.heldBy).toBeUndefined();
  });
});

describe('egress decisions as step effects', () => {
  const decision = (d: Partial<EgressDecision> & { host: string }): EgressDecision => ({ method: 'GET', target: `http://${d.host}/`, allowed: true, ...d });

  it('keeps the origin only, grouped by origin, method and decision, with counts and bytes', () => {
    const effects = egressEffectsOf([
      decision({ method: 'POST', target: 'http://127.0.0.1:8080/collect?k=pk_live_secret', host: '127.0.0.1:8080', bytesOut: 10 }),
      decision({ method: 'POST', target: 'http://127.0.0.1:8080/collect?k=other', host: '127.0.0.1:8080', bytesOut: 5 }),
      decision({ method: 'CONNECT', target: 'api.example.com:443', host: 'api.example.com', bytesOut: 700 }),
      decision({ method: 'POST', target: 'http://evil.example/', host: 'evil.example', allowed: false, heldBy: 'monitor' }),
    ]);
    expect(effects).toEqual([
      { tool: 'http.fetch', effect: { urls: [{ url: 'http://127.0.0.1:8080', host: '127.0.0.1', method: 'POST' }], bytes: 15, requests: 2, via: 'egress-proxy' }, decision: 'allow', rules: [] },
      { tool: 'http.fetch', effect: { urls: [{ url: 'https://api.example.com', host: 'api.example.com', method: 'CONNECT' }], bytes: 700, requests: 1, via: 'egress-proxy' }, decision: 'allow', rules: [] },
      { tool: 'http.fetch', effect: { urls: [{ url: 'http://evil.example', host: 'evil.example', method: 'POST' }], bytes: 0, requests: 1, via: 'egress-proxy' }, decision: 'deny', rules: ['monitor:new-host'] },
    ]);
    expect(JSON.stringify(effects)).not.toContain('pk_live');
  });

  it(`reports at most ${MAX_EGRESS_EFFECTS} destinations, allowed ones first (refused noise cannot push a real contact out)`, () => {
    const noise = Array.from({ length: 100 }, (_, i) => decision({ host: `nope-${i}.example`, allowed: false }));
    const effects = egressEffectsOf([...noise, decision({ method: 'POST', host: 'exfil.example', bytesOut: 40 })]);
    expect(effects).toHaveLength(MAX_EGRESS_EFFECTS);
    expect(effects[0]).toMatchObject({ decision: 'allow', effect: { urls: [{ host: 'exfil.example' }] } });
  });
});
