/**
 * Why a Temporal server could not be reached, in words an operator can act on. The SDK says only
 * "Failed to connect before the deadline", whatever happened: a name that does not resolve, a
 * port nothing listens on, a network with no route, a port that accepts TCP but never answers
 * gRPC (another service, or TLS on one side only), or packets dropped. After a failed connect, one
 * DNS lookup and one TCP connection to the same address tell these apart.
 *
 * The probe opens a TCP connection and closes it at once: it sends nothing, so it cannot carry
 * credentials or a request anywhere the SDK would not have connected to already.
 */
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import { hostAndPortOf } from './temporal-config';

/** What the probe found: `kind` for code, `text` (one clause, no final period) for the message. */
export interface ConnectFailureReason {
  kind: 'dns' | 'refused' | 'no-route' | 'no-grpc-answer' | 'no-answer' | 'proxied' | 'unknown';
  text: string;
}

/**
 * The proxy the Temporal client's connection (grpc-js 1.14, `http_proxy.js`) dials `host` through,
 * decided as grpc-js decides it, so the words match what happened: the first of `grpc_proxy`,
 * `https_proxy`, `http_proxy` that is set (lower case only), used only when it parses as an
 * `http:` URL; unless `host` matches an entry of `no_grpc_proxy` (else `no_proxy`), split on
 * commas as they are: an IPv4 CIDR containing it, or any suffix of it (no wildcard, no trimming).
 * Returns the variable's name and the proxy's `host:port` (port 80 by default), never its user
 * info (it may hold a password). The worker's native connection takes no proxy from the
 * environment: this is for the client's only.
 */
export function proxyOf(host: string, env: NodeJS.ProcessEnv = process.env): { variable: string; proxy: string } | undefined {
  const variable = (['grpc_proxy', 'https_proxy', 'http_proxy'] as const).find((name) => (env[name] ?? '') !== '');
  if (variable === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(env[variable]!);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:') return undefined;
  const exemptions = (env.no_grpc_proxy ?? '') !== '' ? env.no_grpc_proxy! : (env.no_proxy ?? '');
  if (exemptions !== '' && exemptions.split(',').some((entry) => inCidr(entry, host) || host.endsWith(entry))) return undefined;
  return { variable, proxy: `${url.hostname}:${url.port === '' ? '80' : url.port}` };
}

/** Whether `entry` is an IPv4 CIDR (`a.b.c.d/n`) that holds the IPv4 address `host`. */
function inCidr(entry: string, host: string): boolean {
  const [ip, bits, extra] = entry.split('/');
  const prefix = Number.parseInt(bits ?? '', 10);
  if (extra !== undefined || ip === undefined || isIP(ip) !== 4 || isIP(host) !== 4 || Number.isNaN(prefix) || prefix < 0 || prefix > 32) return false;
  const toInt = (address: string) => address.split('.').reduce((n, octet) => (n << 8) + Number.parseInt(octet, 10), 0);
  const mask = prefix === 0 ? 0 : -1 << (32 - prefix);
  return (toInt(ip) & mask) === (toInt(host) & mask);
}

/** How long the probe's TCP connection may take before the address counts as not answering (ms). */
export const PROBE_TIMEOUT_MS = 2_000;

type TcpOutcome = { connected: true } | { connected: false; code: string };

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (outcome: TcpOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    // Bounded: a probe is a diagnosis, never a wait of its own.
    const timer = setTimeout(() => done({ connected: false, code: 'ETIMEDOUT' }), Math.min(60_000, timeoutMs));
    socket.once('connect', () => done({ connected: true }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ connected: false, code: error.code ?? 'ERROR' }));
  });
}

/**
 * Why `address` (`host[:port]`, as TEMPORAL_ADDRESS) did not answer a Temporal connect: a DNS
 * lookup of its host, then a TCP connect to it (at most `timeoutMs`, default 2 s). Never throws.
 * `tls`: whether the connection used TLS, for the hint when the port is open but gave no gRPC answer.
 * `client` (default true): the failed connection was the client's, which grpc-js may route
 * through a proxy ({@link proxyOf}); false for the worker's native connection, which never is.
 */
export async function connectFailureReason(address: string, options: { tls?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv; client?: boolean } = {}): Promise<ConnectFailureReason> {
  const target = hostAndPortOf(address);
  if (target === undefined) return { kind: 'unknown', text: `${address} is not host:port` };
  // Through a proxy, a direct probe would test another path than the connection took (and go where the user routed nothing).
  const proxied = options.client === false ? undefined : proxyOf(target.host, options.env);
  if (proxied !== undefined) return { kind: 'proxied', text: `the connection goes through the proxy ${proxied.proxy} (${proxied.variable}): check that proxy, or exempt ${target.host} with no_grpc_proxy` };
  let ip: string;
  try {
    ip = (await lookup(target.host)).address;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    return { kind: 'dns', text: `the host name ${target.host} does not resolve (DNS: ${code})` };
  }
  const via = ip === target.host ? '' : ` (${ip})`;
  // An IPv6 host in brackets, as an address names it: ::1:9 reads as another address than [::1]:9.
  const where = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const outcome = await tcpConnect(ip, target.port, options.timeoutMs ?? PROBE_TIMEOUT_MS);
  if (outcome.connected) {
    const tlsHint = options.tls === true ? 'TLS is on (TEMPORAL_TLS_*) and the port may speak plain gRPC' : 'the port may want TLS (set TEMPORAL_TLS_* for a TLS frontend)';
    return { kind: 'no-grpc-answer', text: `${where}${via} accepts TCP connections but gave no gRPC answer: it may be another service, or ${tlsHint}` };
  }
  switch (outcome.code) {
    case 'ECONNREFUSED':
      return { kind: 'refused', text: `nothing listens on ${where}${via} (connection refused)` };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { kind: 'no-route', text: `no route to ${target.host}${via} (${outcome.code})` };
    case 'ETIMEDOUT':
      return { kind: 'no-answer', text: `${where}${via} did not answer within ${options.timeoutMs ?? PROBE_TIMEOUT_MS} ms (a host that is down, or a firewall dropping the packets)` };
    default:
      return { kind: 'unknown', text: `connecting to ${where}${via} failed (${outcome.code})` };
  }
}
