/**
 * Outbound HTTP for tools, deny by default.
 *
 * Invariants:
 * - A request (and every redirect hop) goes only to an http(s) URL whose host and port match an
 *   entry of the grant's `allowedHosts`, with a method and path that entry allows. Redirects are
 *   followed here, never by the HTTP client: each hop is re-checked, at most MAX_REDIRECTS.
 *   With `followRedirectsTo` (the WHATWG `host` of the URL the policy judged: host name, plus the
 *   port when it is not the scheme's default), a redirect to any other host or port is returned
 *   to the tool, not followed: policy rules judge every host and port a request reaches.
 * - A granted *name* that resolves to a loopback, link-local, private, shared or unspecified
 *   address (127/8, ::1, 169.254/16, fe80::/10, 10/8, 172.16/12, 192.168/16, 100.64/10,
 *   fc00::/7, 0/8, ::, and IPv4-mapped forms of these) is refused unless its entry says
 *   `allowPrivate: true`; an entry that is itself an IP literal (`127.0.0.1:8080`) is explicit
 *   and needs no flag. Every address the name resolves to is checked, and the connection is made
 *   to those checked addresses only (the lookup is pinned), so a second DNS answer cannot slip a
 *   private address in between check and connect (DNS rebinding).
 *
 * Matching rules: an entry `host:port` matches exactly that host and port (either scheme); an
 * entry `host` matches that host on the *default port of the URL's scheme only* (80 for http,
 * 443 for https). Hosts are compared after WHATWG URL canonicalisation (lower case, IPv4 forms
 * normalised, IPv6 in brackets: `[::1]:8080`). An object entry `{ host, methods, pathPrefixes }`
 * narrows the entry to those methods and to paths equal to or under one of the prefixes
 * (`/v1` matches `/v1` and `/v1/x`, not `/v1x`; encoded slashes are refused under a prefix rule).
 */
import * as dns from 'node:dns';
import { setMaxListeners } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { CapabilityError } from '../../errors';
import type { CapabilityGrant, HostGrantEntry } from '../sandbox-messages';
import { capabilityError } from './capability-error';
import { parseHostEntry as parseCanonicalHostEntry } from '../../permissions/host-entry';
import { redactText } from '../../secrets/redact-values';
import { secretOriginOf } from '../../secrets/secret-origin';

/** Largest response body returned to a tool, and largest request body accepted. */
export const MAX_HTTP_BODY_BYTES = 4 * 1024 * 1024;
/** Redirect hops followed before giving up. */
export const MAX_REDIRECTS = 5;
/** Requests one tool call may have in flight at once. */
export const MAX_CONCURRENT_REQUESTS = 16;

export type HttpGrant = NonNullable<CapabilityGrant['http']>;

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body decoded as UTF-8. */
  body: string;
}

export interface HttpCapability {
  /** `init` is `{ method?, headers?, body? }` as a tool passes it; everything is validated here. */
  fetch(url: unknown, init?: unknown): Promise<HttpResponse>;
}

export interface HttpCapabilityOptions {
  /** Aborts requests in flight when the tool call ends. */
  signal?: AbortSignal;
  /** Name resolution (tests substitute one); the default is the system resolver (`dns.lookup`). */
  resolve?: Resolver;
  /** Certificates trusted for https instead of the system's (PEM; tests with a local CA only). */
  ca?: string;
}

export interface HostRule {
  host: string;
  /** Undefined: the default port of the request's scheme. */
  port: number | undefined;
  /** Upper-case methods allowed; undefined: any. */
  methods?: ReadonlySet<string>;
  /** Path prefixes allowed; undefined: any path. */
  pathPrefixes?: readonly string[];
  /** A name resolving to a private address is allowed (an IP literal host never needs this). */
  allowPrivate?: boolean;
}

interface OutgoingRequest {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/**
 * The only headers a tool's request keeps when a redirect leaves its origin: content negotiation
 * and the body's description (the CORS-safelisted request headers of the Fetch standard, plus
 * user-agent). Everything else may be a credential under some name (x-api-key, x-auth-token,
 * private-token, ...), so an allow-list, not a deny-list, decides.
 */
export const CROSS_ORIGIN_SAFE_HEADERS: ReadonlySet<string> = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'user-agent']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `http.fetch` restricted to `grant.allowedHosts`. */
export function createHttpCapability(grant: HttpGrant, options: HttpCapabilityOptions = {}): HttpCapability {
  const rules = rulesOf(grant.allowedHosts);
  const outbound = outboundSecretsOf(grant);
  const resolve = options.resolve ?? resolveAll;
  // Each request in flight listens on the call's signal.
  if (options.signal !== undefined) setMaxListeners(MAX_CONCURRENT_REQUESTS + 8, options.signal);
  let inFlight = 0;
  return {
    async fetch(rawUrl, rawInit) {
      let url = parseUrl(rawUrl);
      let request = parseInit(rawInit);
      assertAllowed(url, request.method, rules);
      if (inFlight >= MAX_CONCURRENT_REQUESTS) {
        throw capabilityError('ERR_NETWORK_FAILED', `more than ${MAX_CONCURRENT_REQUESTS} requests in flight at once`);
      }
      inFlight += 1;
      try {
        let downgraded = false;
        for (let hop = 0; ; hop += 1) {
          const matched = assertAllowed(url, request.method, rules);
          const addresses = await checkedAddresses(url, matched, resolve);
          // Secrets join the request only here, after every check, and only for their own host.
          const response = await send(url, outbound.addTo(url, request, downgraded), addresses, options.signal, options.ca);
          const location = response.headers['location'];
          if (!REDIRECT_STATUSES.has(response.status) || location === undefined) {
            return outbound.removeFrom({ status: response.status, headers: response.headers, body: await readCappedText(response.body) });
          }
          const next = parseRedirect(location, url);
          if (grant.followRedirectsTo !== undefined && !grant.followRedirectsTo.includes(next.host)) {
            // The policy judged this call's host only: the hop elsewhere is the tool's next call.
            return { status: response.status, headers: response.headers, body: await readCappedText(response.body) };
          }
          response.body.destroy();
          if (hop >= MAX_REDIRECTS) throw capabilityError('ERR_NETWORK_FAILED', `more than ${MAX_REDIRECTS} redirects`);
          if (url.protocol === 'https:' && next.protocol === 'http:') downgraded = true;
          request = requestForRedirect(request, response.status, url, next);
          url = next;
        }
      } finally {
        inFlight -= 1;
      }
    },
  };
}

/**
 * The refusal `fetch` would throw for a request to `rawUrl` with `method` before it connects (the
 * URL, its scheme, and the grant's host, port, method and path), or undefined when the grant lets
 * it through to the address checks (which need DNS and are made when it connects). The same
 * checks `fetch` makes first: sandbox/capabilities/grant-refusal.ts asks them before any rule may
 * hold the request for a human who could only approve what this refuses.
 */
export function httpGrantRefusal(grant: HttpGrant, rawUrl: unknown, method: unknown): CapabilityError | undefined {
  try {
    const url = parseUrl(rawUrl);
    const request = parseInit(method === undefined ? undefined : { method });
    assertAllowed(url, request.method, rulesOf(grant.allowedHosts));
    return undefined;
  } catch (error) {
    if (error instanceof CapabilityError) return error;
    throw error;
  }
}

/** Resolves a host name to every address it has (the system resolver, like any client). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

async function resolveAll(hostname: string): Promise<{ address: string; family: number }[]> {
  return dns.promises.lookup(hostname, { all: true, verbatim: true });
}

function rulesOf(entries: readonly HostGrantEntry[]): HostRule[] {
  return entries.map(parseHostGrant).filter((r): r is HostRule => r !== undefined);
}

/** A grant entry (string or object) as a rule; undefined for a malformed entry, which then matches nothing. */
export function parseHostGrant(entry: HostGrantEntry): HostRule | undefined {
  if (typeof entry === 'string') return parseHostEntry(entry);
  const rule = parseHostEntry(entry.host);
  if (rule === undefined) return undefined;
  if (entry.pathPrefixes !== undefined && entry.pathPrefixes.some((p) => !p.startsWith('/'))) return undefined;
  return {
    ...rule,
    ...(entry.methods === undefined ? {} : { methods: new Set(entry.methods.map((m) => m.toUpperCase())) }),
    ...(entry.pathPrefixes === undefined ? {} : { pathPrefixes: [...entry.pathPrefixes] }),
    ...(entry.allowPrivate === true ? { allowPrivate: true } : {}),
  };
}

/** `host` or `host:port`, canonicalised as a URL would be (permissions/host-entry.ts, shared with Warden's own endpoint checks). */
export function parseHostEntry(entry: string): HostRule | undefined {
  return parseCanonicalHostEntry(entry);
}

/**
 * Whether `url` may be fetched under `allowedHosts` by host, port, path and (when given) method.
 * Address checks need DNS and happen only when fetching (exported for tests and callers that pre-check).
 */
export function isUrlAllowed(url: URL, allowedHosts: readonly HostGrantEntry[], method?: string): boolean {
  return matchingRules(url, method, rulesOf(allowedHosts)).allowed.length > 0;
}

/**
 * The checks `fetch` makes before it connects, for Warden's other way out (the OS sandbox's
 * egress proxy), so both apply the same host rules: scheme, host and port, method and path, and
 * the private-address check on every DNS answer. Returns the checked addresses to connect to
 * (pinned); throws ERR_NETWORK_DENIED or ERR_NETWORK_FAILED as `fetch` does. `opaque`: the
 * method and path cannot be seen (an HTTPS tunnel), so only entries that narrow neither allow it.
 */
export async function authorizeEgress(
  url: URL,
  method: string | undefined,
  allowedHosts: readonly HostGrantEntry[],
  options: { opaque?: boolean; resolve?: Resolver } = {},
): Promise<{ address: string; family: number }[]> {
  const rules = rulesOf(allowedHosts).filter((rule) => options.opaque !== true || (rule.methods === undefined && rule.pathPrefixes === undefined));
  const matched = assertAllowed(url, method ?? 'GET', rules);
  return checkedAddresses(url, matched, options.resolve ?? resolveAll);
}

function defaultPortOf(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

function portOf(url: URL): number {
  return url.port === '' ? defaultPortOf(url.protocol) : Number(url.port);
}

function pathAllowed(pathname: string, prefixes: readonly string[] | undefined): boolean {
  if (prefixes === undefined) return true;
  // A server may decode %2F / %5C before routing, which would defeat any prefix.
  if (/%2f|%5c/i.test(pathname)) return false;
  return prefixes.some((prefix) => (prefix.endsWith('/') ? pathname.startsWith(prefix) : pathname === prefix || pathname.startsWith(`${prefix}/`)));
}

/** Rules matching the URL's host and port (`hostRules`), and those also allowing its method and path (`allowed`). */
function matchingRules(url: URL, method: string | undefined, rules: readonly HostRule[]): { hostRules: HostRule[]; allowed: HostRule[] } {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { hostRules: [], allowed: [] };
  const defaultPort = defaultPortOf(url.protocol);
  const port = portOf(url);
  const hostRules = rules.filter((rule) => rule.host === url.hostname && (rule.port === undefined ? port === defaultPort : rule.port === port));
  const allowed = hostRules.filter(
    (rule) => (method === undefined || rule.methods === undefined || rule.methods.has(method.toUpperCase())) && pathAllowed(url.pathname, rule.pathPrefixes),
  );
  return { hostRules, allowed };
}

/** Refuses what the grant does not allow; returns the rules that allow the request. */
function assertAllowed(url: URL, method: string, rules: readonly HostRule[]): HostRule[] {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw capabilityError('ERR_NETWORK_DENIED', `only http and https are allowed, not ${url.protocol.replace(/:$/, '')}`, {
      scheme: url.protocol,
    });
  }
  if (url.username !== '' || url.password !== '') {
    throw capabilityError('ERR_NETWORK_DENIED', 'credentials in URLs are not allowed', { host: url.host });
  }
  const { hostRules, allowed } = matchingRules(url, method, rules);
  const port = portOf(url);
  if (hostRules.length === 0) {
    throw capabilityError('ERR_NETWORK_DENIED', `host ${url.hostname}:${port} is not granted`, { host: url.hostname, port });
  }
  if (allowed.length === 0) {
    const methodOk = hostRules.some((r) => r.methods === undefined || r.methods.has(method));
    throw capabilityError(
      'ERR_NETWORK_DENIED',
      methodOk ? `path ${url.pathname} on ${url.hostname}:${port} is not granted` : `method ${method} on ${url.hostname}:${port} is not granted`,
      { host: url.hostname, port, method, path: url.pathname },
    );
  }
  return allowed;
}

/** Address ranges a name may only reach with `allowPrivate` (label -> CIDRs). */
const PRIVATE_RANGES: readonly [string, readonly [string, number, 'ipv4' | 'ipv6'][]][] = [
  ['unspecified', [['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']]],
  ['loopback', [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']]],
  ['link-local', [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']]],
  ['private', [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']]],
  ['shared (carrier-grade NAT)', [['100.64.0.0', 10, 'ipv4']]],
];
const PRIVATE_LISTS = PRIVATE_RANGES.map(([label, cidrs]) => {
  const list = new BlockList();
  for (const [network, prefix, type] of cidrs) list.addSubnet(network, prefix, type);
  return [label, list] as const;
});

/** The kind of non-public range `address` is in (IPv4-mapped IPv6 checked as IPv4), or undefined. */
export function privateRangeOf(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  let candidate = address;
  let type: 'ipv4' | 'ipv6' = family === 4 ? 'ipv4' : 'ipv6';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) {
    candidate = mapped[1];
    type = 'ipv4';
  } else if (type === 'ipv6') {
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
    if (hex?.[1] !== undefined && hex[2] !== undefined) {
      const high = parseInt(hex[1], 16);
      const low = parseInt(hex[2], 16);
      candidate = `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
      type = 'ipv4';
    }
  }
  for (const [label, list] of PRIVATE_LISTS) if (list.check(candidate, type)) return label;
  return undefined;
}

function unbracketed(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * The addresses the request may connect to. An IP literal host is its own address (it matched an
 * IP literal entry, which is explicit). A name is resolved and every answer checked.
 */
async function checkedAddresses(url: URL, matched: readonly HostRule[], resolve: Resolver): Promise<{ address: string; family: number }[]> {
  const host = unbracketed(url.hostname);
  const literal = isIP(host);
  if (literal !== 0) return [{ address: host, family: literal }];
  let answers: { address: string; family: number }[];
  try {
    answers = await resolve(host);
  } catch (error) {
    const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown error';
    throw capabilityError('ERR_NETWORK_FAILED', `cannot resolve ${host}: ${code}`, { host });
  }
  if (answers.length === 0) throw capabilityError('ERR_NETWORK_FAILED', `cannot resolve ${host}: no addresses`, { host });
  if (!matched.some((rule) => rule.allowPrivate === true)) {
    for (const { address } of answers) {
      const range = privateRangeOf(address);
      if (range !== undefined) {
        throw capabilityError(
          'ERR_NETWORK_DENIED',
          `host ${host} resolves to ${address}, a ${range} address; grant it as an IP literal or with allowPrivate to reach it`,
          { host, address, range },
        );
      }
    }
  }
  return answers;
}

function parseUrl(raw: unknown): URL {
  if (typeof raw !== 'string') throw capabilityError('ERR_NETWORK_DENIED', 'http.fetch: url must be a string');
  try {
    return new URL(raw);
  } catch {
    throw capabilityError('ERR_NETWORK_DENIED', 'http.fetch: url is not an absolute URL');
  }
}

function parseRedirect(location: string, base: URL): URL {
  try {
    return new URL(location, base);
  } catch {
    throw capabilityError('ERR_NETWORK_FAILED', 'redirect to an invalid URL');
  }
}

function parseInit(raw: unknown): OutgoingRequest {
  if (raw === undefined || raw === null) return { method: 'GET', headers: {}, body: undefined };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw capabilityError('ERR_NETWORK_FAILED', 'http.fetch: options must be an object');
  const init = raw as Record<string, unknown>;
  const method = init['method'] ?? 'GET';
  if (typeof method !== 'string' || !TOKEN.test(method)) throw capabilityError('ERR_NETWORK_FAILED', 'http.fetch: method must be an HTTP method name');
  const headers: Record<string, string> = {};
  const rawHeaders = init['headers'] ?? {};
  if (typeof rawHeaders !== 'object' || rawHeaders === null || Array.isArray(rawHeaders)) {
    throw capabilityError('ERR_NETWORK_FAILED', 'http.fetch: headers must be an object of strings');
  }
  for (const [name, value] of Object.entries(rawHeaders)) {
    if (!TOKEN.test(name) || typeof value !== 'string') throw capabilityError('ERR_NETWORK_FAILED', `http.fetch: invalid header ${JSON.stringify(name)}`);
    headers[name.toLowerCase()] = value;
  }
  const body = init['body'];
  if (body !== undefined && body !== null && typeof body !== 'string') throw capabilityError('ERR_NETWORK_FAILED', 'http.fetch: body must be a string');
  if (typeof body === 'string' && Buffer.byteLength(body) > MAX_HTTP_BODY_BYTES) {
    throw capabilityError('ERR_NETWORK_FAILED', `http.fetch: body is larger than ${MAX_HTTP_BODY_BYTES} bytes`);
  }
  return { method: method.toUpperCase(), headers, body: typeof body === 'string' ? body : undefined };
}

/** The request for the next hop, as browsers do it: 303 (and 301/302 after POST) become GET without body; only safe headers leave their origin. */
function requestForRedirect(request: OutgoingRequest, status: number, from: URL, to: URL): OutgoingRequest {
  const headers = { ...request.headers };
  let { method, body } = request;
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    method = 'GET';
    body = undefined;
    delete headers['content-type'];
    delete headers['content-length'];
  }
  if (from.origin !== to.origin) {
    for (const name of Object.keys(headers)) if (!CROSS_ORIGIN_SAFE_HEADERS.has(name)) delete headers[name];
  }
  return { method, headers, body };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: http.IncomingMessage;
}

/** Headers the HTTP client sets itself from the URL and body; a tool cannot override them. */
const MANAGED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

/**
 * One request over a fresh connection to one of `addresses` (the lookup is pinned to them; TLS
 * still verifies the certificate against the URL's host name).
 */
function send(url: URL, request: OutgoingRequest, addresses: readonly { address: string; family: number }[], signal: AbortSignal | undefined, ca?: string): Promise<RawResponse> {
  if (signal?.aborted) return Promise.reject(capabilityError('ERR_NETWORK_FAILED', 'the request was aborted because the tool call ended'));
  const pinned: LookupFunction = (_hostname, options, callback) => {
    const all = typeof options === 'object' && options !== null && (options as dns.LookupOptions).all === true;
    const family = typeof options === 'object' && options !== null ? (options as dns.LookupOptions).family : undefined;
    const usable = addresses.filter((a) => family === undefined || family === 0 || a.family === family);
    const choices = usable.length > 0 ? usable : addresses;
    if (all) (callback as unknown as (e: null, list: { address: string; family: number }[]) => void)(null, [...choices]);
    else callback(null, choices[0]!.address, choices[0]!.family);
  };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (!MANAGED_HEADERS.has(name)) headers[name] = value;
  if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
  headers['user-agent'] ??= 'warden-http';
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<RawResponse>((resolve, reject) => {
    const outgoing = client.request(
      {
        protocol: url.protocol,
        hostname: unbracketed(url.hostname),
        port: portOf(url),
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers,
        lookup: pinned,
        agent: false,
        ...(ca === undefined || url.protocol !== 'https:' ? {} : { ca }),
        ...(signal === undefined ? {} : { signal }),
      },
      (incoming) => resolve({ status: incoming.statusCode ?? 0, headers: headersOf(incoming.rawHeaders), body: incoming }),
    );
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      if (signal?.aborted) {
        reject(capabilityError('ERR_NETWORK_FAILED', 'the request was aborted because the tool call ended'));
        return;
      }
      const detail = typeof error.code === 'string' ? error.code : error.message;
      reject(capabilityError('ERR_NETWORK_FAILED', `request to ${url.host} failed: ${detail}`, { host: url.hostname }));
    });
    outgoing.end(request.body);
  });
}

/** Lower-case names; repeated headers joined with ", ". */
function headersOf(raw: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    // defineProperty: a header named "__proto__" must stay a header.
    const merged = Object.hasOwn(result, name) ? `${result[name]}, ${value}` : value;
    Object.defineProperty(result, name, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return result;
}

async function readCappedText(body: http.IncomingMessage): Promise<string> {
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > MAX_HTTP_BODY_BYTES) {
        body.destroy();
        throw capabilityError('ERR_NETWORK_FAILED', `response body is larger than ${MAX_HTTP_BODY_BYTES} bytes`);
      }
      text += decoder.decode(chunk, { stream: true });
    }
  } catch (error) {
    if (error instanceof CapabilityError) throw error;
    throw capabilityError('ERR_NETWORK_FAILED', 'reading the response body failed');
  }
  return text + decoder.decode();
}

/**
 * The task's outbound secrets in the host process: headers added to a request for the host they
 * belong to (per hop, so a redirect elsewhere never carries them), and their values removed from
 * every response before the tool sees it (servers that echo headers).
 */
function outboundSecretsOf(grant: HttpGrant): { addTo(url: URL, request: OutgoingRequest, downgraded: boolean): OutgoingRequest; removeFrom(response: HttpResponse): HttpResponse } {
  const entries = (grant.secrets ?? []).flatMap((s) => {
    const origin = secretOriginOf(s.host);
    const rule = parseHostEntry(origin.host);
    return rule === undefined ? [] : [{ rule, protocol: `${origin.scheme}:`, headers: s.headers }];
  });
  const values = grant.redact ?? [];
  return {
    addTo(url, request, downgraded) {
      // Never in cleartext unless the task bound the secret to an http origin, and never again
      // once a redirect went from https to http (what curl does with Authorization).
      if (downgraded) return request;
      const port = portOf(url);
      const mine = entries.filter(({ rule, protocol }) => protocol === url.protocol && rule.host === url.hostname && (rule.port ?? defaultPortOf(protocol)) === port);
      if (mine.length === 0) return request;
      const headers = { ...request.headers };
      for (const { headers: secretHeaders } of mine) for (const [name, value] of Object.entries(secretHeaders)) headers[name.toLowerCase()] = value;
      return { ...request, headers };
    },
    removeFrom(response) {
      if (values.length === 0) return response;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        Object.defineProperty(headers, redactText(name, values), { value: redactText(value, values), enumerable: true, writable: true, configurable: true });
      }
      return { status: response.status, headers, body: redactText(response.body, values) };
    },
  };
}
