/**
 * The only way out of an OS sandbox: an HTTP proxy on a Unix socket that is bound into the
 * sandbox (whose own network namespace has nothing but loopback). It applies exactly the host
 * rules of `http.fetch` (`authorizeEgress`): granted host and port, method and path where they
 * can be seen, and no name resolving to a private or loopback address unless granted as such.
 *
 * Invariants:
 * - Every connection it opens goes to an address `authorizeEgress` returned for that request
 *   (DNS is resolved and checked here, never inside the sandbox, and the connection is pinned).
 * - `CONNECT` (HTTPS) tunnels are opaque: they are allowed only by entries that narrow neither
 *   methods nor paths. Plain HTTP requests are checked with their method and path, one by one
 *   (a keep-alive connection cannot carry a second request to another host unchecked).
 * - Every decision is recorded (`decisions`, per destination: egress-tally.ts) so a run can report
 *   everything it tried to reach, with the host contacted, how often, and the bytes sent to it (a
 *   request's body; everything sent into a tunnel). No destination is ever dropped: past the
 *   tally's cap, a new destination is held before it connects (fail closed) and counted.
 * - A granted destination is also put to the caller's `gate` (the monitor's egress watch) before
 *   the connection is opened: what it holds never connects, so nothing reaches that host.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { CapabilityError } from '../../errors';
import { authorizeEgress, type Resolver } from '../capabilities/http-capability';
import type { HostGrantEntry } from '../sandbox-messages';
import { EgressTally } from './egress-tally';

/** One request the sandbox made through the proxy. */
export interface EgressDecision {
  method: string;
  /** `host:port` for tunnels, the URL for plain requests. */
  target: string;
  allowed: boolean;
  /** `host[:port]` as WHATWG URL's `host` reads it (the scheme's default port left out), when the target parsed. */
  host?: string;
  /** Bytes sent towards the host: a plain request's body, or everything the program sent into a tunnel (TLS included). */
  bytesOut?: number;
  /** The request announced a body (`content-length` above 0 or a `transfer-encoding`): a write whatever its method. */
  sendsBody?: boolean;
  /** How many requests this decision stands for (a tally's destination; 1 when absent). */
  requests?: number;
  /** Who refused it when it was not the grant (`monitor`: the egress gate held it before it connected). */
  heldBy?: string;
  /** The refusal's code and message when not allowed. */
  error?: { code: string; message: string };
}

/** A destination as the egress gate is asked about it, before anything connects. */
export interface EgressQuestion {
  /** `host[:port]` (WHATWG `host`). */
  host: string;
  /** The request's method; `CONNECT` for a tunnel (whose requests cannot be seen). */
  method: string;
  /** The request sends a body (a write whatever its method). */
  sendsBody?: boolean;
}

/**
 * Asked for every granted destination before the proxy connects: undefined lets it through, a
 * reason holds it (the program gets a 403 naming it). Synchronous: the answer must be known
 * before the call starts (the monitor's egress watch, monitoring/egress-watch.ts).
 */
export type EgressGate = (question: EgressQuestion) => { heldBy: string; reason: string } | undefined;

export interface EgressProxy {
  readonly socketPath: string;
  readonly decisions: readonly EgressDecision[];
  close(): Promise<void>;
}

export interface EgressProxyOptions {
  socketPath: string;
  allowedHosts: readonly HostGrantEntry[];
  /** Name resolution (the system resolver by default). */
  resolve?: Resolver;
  /** Most distinct destinations kept (egress-tally.ts; past it, new destinations are held). */
  maxDestinations?: number;
  /**
   * False: the proxy keeps no tally (`decisions` stays empty) and holds nothing for the cap: a
   * long-lived server's requests are tallied per call by the caller (`onDecision`), who must cap
   * them in `gate`.
   */
  tally?: boolean;
  /** Asked before each granted connection (see EgressGate). */
  gate?: EgressGate;
  /** Told of each decision as it is made (the object is live: `bytesOut` grows while the request streams, see `onBytes`). */
  onDecision?: (decision: EgressDecision) => void;
  /** Told of bytes a request told of before sent afterwards (its body or tunnel streaming). */
  onBytes?: (decision: EgressDecision, bytes: number) => void;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Most connections a proxy holds open at once (a granted one holds a second socket upstream).
 * Past it, Node closes a new connection as it arrives: one program opening 8,000 at once held
 * 8,060 files open in the worker, against a limit of 20,000 for everything the worker does (attack s22 atk3).
 */
export const MAX_EGRESS_CONNECTIONS = 256;

/** Starts the proxy listening on `options.socketPath` (mode 0600 is the caller's business via its folder). */
export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const tally = options.tally === false ? undefined : new EgressTally(options.maxDestinations);
  const note = (decision: EgressDecision) => {
    tally?.add(decision);
    options.onDecision?.(decision);
  };
  const grow = (decision: EgressDecision, bytes: number) => {
    decision.bytesOut = (decision.bytesOut ?? 0) + bytes;
    tally?.grow(decision, bytes);
    options.onBytes?.(decision, bytes);
  };
  /** The gate, then the tally's cap: a new destination past it is held (never dropped unseen). */
  const hold = (question: EgressQuestion): { heldBy: string; reason: string } | undefined =>
    options.gate?.(question) ??
    (tally === undefined || tally.admits(question.host, question.method, question.sendsBody === true)
      ? undefined
      : { heldBy: 'monitor', reason: `held: the call reached more than ${tally.max} destinations, so a new one cannot be scored` });
  const sockets = new Set<Duplex>();
  const server = http.createServer({ requestTimeout: 120_000 }, (request, response) => {
    void forward(request, response);
  });

  async function forward(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(request.url ?? '');
    } catch {
      refuse(response, method, request.url ?? '', new CapabilityError('ERR_NETWORK_DENIED', 'a proxy request needs an absolute http:// URL'));
      return;
    }
    let addresses: { address: string; family: number }[];
    try {
      if (url.protocol !== 'http:') throw new CapabilityError('ERR_NETWORK_DENIED', `only http:// requests or CONNECT tunnels go through the proxy, not ${url.protocol}`);
      addresses = await authorizeEgress(url, method, options.allowedHosts, resolverOption(options.resolve));
    } catch (error) {
      refuse(response, method, url.href, error, url.host);
      return;
    }
    const sendsBody = sendsBodyOf(request.headers);
    const held = hold({ host: url.host, method: method.toUpperCase(), ...(sendsBody ? { sendsBody } : {}) });
    if (held !== undefined) {
      refuse(response, method, url.href, new CapabilityError('ERR_NETWORK_DENIED', held.reason), url.host, held.heldBy, sendsBody);
      return;
    }
    const decision: EgressDecision = { method, target: url.href, allowed: true, host: url.host, bytesOut: 0, ...(sendsBody ? { sendsBody } : {}) };
    note(decision);
    request.on('data', (chunk: Buffer) => grow(decision, chunk.length));
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(request.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    headers['host'] = url.host;
    const first = addresses[0]!;
    const outgoing = http.request(
      {
        host: first.address,
        family: first.family,
        port: url.port === '' ? 80 : Number(url.port),
        method,
        path: `${url.pathname}${url.search}`,
        headers,
        agent: false,
      },
      (incoming) => {
        const back: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(incoming.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) back[name] = value;
        response.writeHead(incoming.statusCode ?? 502, back);
        incoming.pipe(response);
      },
    );
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`warden egress: ERR_NETWORK_FAILED: request to ${url.host} failed: ${error.code ?? error.message}\n`);
    });
    request.pipe(outgoing);
  }

  function refuse(response: http.ServerResponse, method: string, target: string, error: unknown, host?: string, heldBy?: string, sendsBody = false): void {
    const code = error instanceof CapabilityError ? error.code : 'ERR_NETWORK_FAILED';
    const message = error instanceof Error ? error.message : String(error);
    note({ method, target, allowed: false, ...(host === undefined ? {} : { host }), ...(heldBy === undefined ? {} : { heldBy }), ...(sendsBody ? { sendsBody } : {}), error: { code, message } });
    response.writeHead(code === 'ERR_NETWORK_DENIED' ? 403 : 502, { 'content-type': 'text/plain', connection: 'close' });
    response.end(`warden egress: ${code}: ${message}\n`);
  }

  server.on('connect', (request: http.IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    void tunnel(request, client, head);
  });

  async function tunnel(request: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = request.url ?? '';
    let url: URL | undefined;
    let addresses: { address: string; family: number }[];
    try {
      url = new URL(`https://${target}`);
      if (url.port === '' && !/:443$/.test(target)) throw new CapabilityError('ERR_NETWORK_DENIED', `CONNECT needs host:port, got ${JSON.stringify(target)}`);
      addresses = await authorizeEgress(url, undefined, options.allowedHosts, { opaque: true, ...resolverOption(options.resolve) });
    } catch (error) {
      const code = error instanceof CapabilityError ? error.code : 'ERR_NETWORK_FAILED';
      const message = `${error instanceof Error ? error.message : String(error)} (an HTTPS tunnel is allowed only by a host entry without methods or paths)`;
      note({ method: 'CONNECT', target, allowed: false, ...(url === undefined ? {} : { host: url.host }), error: { code, message } });
      client.end(`HTTP/1.1 ${code === 'ERR_NETWORK_DENIED' ? '403 Forbidden' : '502 Bad Gateway'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nwarden egress: ${code}: ${message}\n`);
      return;
    }
    const held = hold({ host: url.host, method: 'CONNECT' });
    if (held !== undefined) {
      note({ method: 'CONNECT', target, allowed: false, host: url.host, heldBy: held.heldBy, error: { code: 'ERR_NETWORK_DENIED', message: held.reason } });
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nwarden egress: ERR_NETWORK_DENIED: ${held.reason}\n`);
      return;
    }
    const decision: EgressDecision = { method: 'CONNECT', target, allowed: true, host: url.host, bytesOut: head.length };
    note(decision);
    const first = addresses[0]!;
    const upstream = net.connect({ host: first.address, family: first.family, port: url.port === '' ? 443 : Number(url.port) });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.on('data', (chunk: Buffer) => grow(decision, chunk.length));
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (client.writable && upstream.connecting) client.end(`HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nwarden egress: ERR_NETWORK_FAILED: ${error.code ?? error.message}\n`);
      else client.destroy();
    });
    client.on('close', () => upstream.destroy());
  }

  server.maxConnections = MAX_EGRESS_CONNECTIONS;
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath: options.socketPath,
    get decisions() {
      return tally?.decisions ?? [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Whether a request announces a body (RFC 9112 §6.3: a `transfer-encoding`, or a `content-length` above 0). */
function sendsBodyOf(headers: http.IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && !/^0*$/.test(String(length).trim());
}

function resolverOption(resolve: Resolver | undefined): { resolve?: Resolver } {
  return resolve === undefined ? {} : { resolve };
}
