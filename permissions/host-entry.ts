/**
 * One reading of a granted host entry (`host`, `host:port`, `[v6]:port`), shared by the http
 * capability (which connects to it) and every check that compares it with Warden's own endpoints,
 * so a check can never see another host than the one a request reaches.
 *
 * The host is canonicalised as WHATWG URL does for an http URL: lower case, IPv4 in any form
 * (`0x7f.1`, `0177.1`, `2130706433`, `127.1`) as dotted decimal, IPv6 compressed in brackets.
 * Pure: no Node APIs.
 */

export interface HostEntry {
  /** Canonical host as `URL.hostname` gives it (IPv6 in brackets). */
  host: string;
  /** Undefined: the default port of the request's scheme (80 for http, 443 for https). */
  port: number | undefined;
}

/** `host` or `host:port` (IPv6 as `[addr]` or `[addr]:port`); undefined for a malformed entry, which then matches nothing. */
export function parseHostEntry(entry: string): HostEntry | undefined {
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

/** The ports a parsed entry reaches: its own, or both default ports when it names none. */
export function portsOf(entry: HostEntry): number[] {
  return entry.port === undefined ? [80, 443] : [entry.port];
}

/** The canonical host without IPv6 brackets. */
export function unbracketedHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
