/**
 * Outbound HTTP for tools, deny by default.
 *
 * Invariant: a request (and every redirect hop) goes only to an http(s) URL whose host and port
 * match an entry of the grant's `allowedHosts`. Redirects are never followed by `fetch` itself
 * (`redirect: 'manual'`): each hop is re-checked here, at most MAX_REDIRECTS of them.
 *
 * Matching rules: an entry `host:port` matches exactly that host and port (either scheme); an
 * entry `host` matches that host on the *default port of the URL's scheme only* (80 for http,
 * 443 for https). Hosts are compared after WHATWG URL canonicalisation (lower case, IPv4 forms
 * normalised, IPv6 in brackets: `[::1]:8080`). Names are not pinned to addresses: a granted name
 * whose DNS answer changes reaches wherever it points (see sandbox/README.md).
 */
import { CapabilityError } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { capabilityError } from './capability-error';

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
}

interface HostRule {
  host: string;
  /** Undefined: the default port of the request's scheme. */
  port: number | undefined;
}

interface OutgoingRequest {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `http.fetch` restricted to `grant.allowedHosts`. */
export function createHttpCapability(grant: HttpGrant, options: HttpCapabilityOptions = {}): HttpCapability {
  const rules = grant.allowedHosts.map(parseHostEntry).filter((r): r is HostRule => r !== undefined);
  let inFlight = 0;
  return {
    async fetch(rawUrl, rawInit) {
      let url = parseUrl(rawUrl);
      let request = parseInit(rawInit);
      assertAllowed(url, rules);
      if (inFlight >= MAX_CONCURRENT_REQUESTS) {
        throw capabilityError('ERR_NETWORK_FAILED', `more than ${MAX_CONCURRENT_REQUESTS} requests in flight at once`);
      }
      inFlight += 1;
      try {
        for (let hop = 0; ; hop += 1) {
          assertAllowed(url, rules);
          const response = await send(url, request, options.signal);
          const location = response.headers.get('location');
          if (!REDIRECT_STATUSES.has(response.status) || location === null) {
            return { status: response.status, headers: headersOf(response.headers), body: await readCappedText(response) };
          }
          await response.body?.cancel().catch(() => undefined);
          if (hop >= MAX_REDIRECTS) throw capabilityError('ERR_NETWORK_FAILED', `more than ${MAX_REDIRECTS} redirects`);
          const next = parseRedirect(location, url);
          request = requestForRedirect(request, response.status, url, next);
          url = next;
        }
      } finally {
        inFlight -= 1;
      }
    },
  };
}

/** `host` or `host:port` (IPv6 as `[addr]` or `[addr]:port`); undefined for a malformed entry, which then matches nothing. */
export function parseHostEntry(entry: string): HostRule | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:/?#@[\]\s]+)(?::(\d{1,5}))?$/.exec(entry.trim());
  if (match === null || match[1] === undefined) return undefined;
  let host: string;
  try {
    host = new URL(`http://${match[1]}/`).hostname;
  } catch {
    return undefined;
  }
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host, port };
}

/** Whether `url` may be fetched under `allowedHosts` (exported for tests and callers that pre-check). */
export function isUrlAllowed(url: URL, allowedHosts: readonly string[]): boolean {
  const rules = allowedHosts.map(parseHostEntry).filter((r): r is HostRule => r !== undefined);
  return matchesRules(url, rules);
}

function defaultPortOf(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

function matchesRules(url: URL, rules: readonly HostRule[]): boolean {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const defaultPort = defaultPortOf(url.protocol);
  const port = url.port === '' ? defaultPort : Number(url.port);
  return rules.some((rule) => rule.host === url.hostname && (rule.port === undefined ? port === defaultPort : rule.port === port));
}

function assertAllowed(url: URL, rules: readonly HostRule[]): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw capabilityError('ERR_NETWORK_DENIED', `only http and https are allowed, not ${url.protocol.replace(/:$/, '')}`, {
      scheme: url.protocol,
    });
  }
  if (url.username !== '' || url.password !== '') {
    throw capabilityError('ERR_NETWORK_DENIED', 'credentials in URLs are not allowed', { host: url.host });
  }
  if (!matchesRules(url, rules)) {
    const port = url.port === '' ? defaultPortOf(url.protocol) : Number(url.port);
    throw capabilityError('ERR_NETWORK_DENIED', `host ${url.hostname}:${port} is not granted`, { host: url.hostname, port });
  }
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

/** The request for the next hop, as browsers do it: 303 (and 301/302 after POST) become GET without body; credentials stay on their origin. */
function requestForRedirect(request: OutgoingRequest, status: number, from: URL, to: URL): OutgoingRequest {
  const headers = { ...request.headers };
  let { method, body } = request;
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    method = 'GET';
    body = undefined;
    delete headers['content-type'];
    delete headers['content-length'];
  }
  if (from.origin !== to.origin) for (const name of CREDENTIAL_HEADERS) delete headers[name];
  return { method, headers, body };
}

async function send(url: URL, request: OutgoingRequest, signal: AbortSignal | undefined): Promise<Response> {
  try {
    return await fetch(url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      redirect: 'manual',
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (error) {
    if (signal?.aborted) throw capabilityError('ERR_NETWORK_FAILED', 'the request was aborted because the tool call ended');
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const code = typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : undefined;
    const detail = code ?? (cause instanceof Error ? cause.message : 'unknown error');
    throw capabilityError('ERR_NETWORK_FAILED', `request to ${url.host} failed: ${detail}`, { host: url.hostname });
  }
}

function headersOf(headers: Headers): Record<string, string> {
  const result: Record<string, string> = {};
  headers.forEach((value, name) => {
    result[name] = Object.hasOwn(result, name) ? `${result[name]}, ${value}` : value;
  });
  return result;
}

async function readCappedText(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > MAX_HTTP_BODY_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw capabilityError('ERR_NETWORK_FAILED', `response body is larger than ${MAX_HTTP_BODY_BYTES} bytes`);
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    if (error instanceof CapabilityError) throw error;
    throw capabilityError('ERR_NETWORK_FAILED', 'reading the response body failed');
  }
  return text + decoder.decode();
}
