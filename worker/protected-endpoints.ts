/**
 * Whether a task's granted hosts reach one of Warden's own endpoints (the Temporal frontend, its
 * HTTP API, its web UI), decided on addresses as the http capability would connect to them.
 *
 * Invariant: a granted entry is read by the http capability's own parser (permissions/host-entry.ts,
 * so every IPv4 spelling is its dotted-decimal address), names are resolved as the capability
 * resolves them, and an address of this machine (loopback, unspecified, or any address of its
 * interfaces) reaches every endpoint listening on this machine. Text is never compared.
 */
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { TaskFileIssue } from '../errors';
import { parseHostEntry, portsOf, unbracketedHost } from '../permissions/host-entry';
import { canonicalEndpointHost, endpointIssue, grantedEndpointIssues as byCanonicalHost, isLoopbackHost, type ProtectedEndpoint } from '../permissions/warden-resources';

/** How long one name lookup may take before the entry is judged on its text alone. */
const LOOKUP_TIMEOUT_MS = 3000;

export type AddressResolver = (host: string) => Promise<string[]>;

async function systemResolve(host: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const answers = await Promise.race([
      dns.promises.lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), LOOKUP_TIMEOUT_MS))),
    ]);
    return answers.map((a) => a.address);
  } catch {
    // A name that does not resolve cannot be connected to either.
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/** `::ffff:a.b.c.d` as `a.b.c.d`; other addresses lower-cased. */
function normalAddress(address: string): string {
  const a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped?.[1] ?? a;
}

/** Addresses of this machine's interfaces. */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const info of list ?? []) out.add(normalAddress(info.address.split('%')[0]!));
  return out;
}

async function addressesOf(canonicalHost: string, resolve: AddressResolver): Promise<string[]> {
  const host = unbracketedHost(canonicalHost);
  if (isIP(host) !== 0) return [normalAddress(host)];
  if (isLoopbackHost(host)) return ['127.0.0.1'];
  return (await resolve(host)).map(normalAddress);
}

/**
 * Issues for `hosts` (a task's `grants.hosts`, field prefix `at`) that reach one of `endpoints`:
 * by canonical host first, then by the addresses both resolve to.
 */
export async function grantedEndpointIssues(
  hosts: readonly string[],
  at: string,
  endpoints: readonly ProtectedEndpoint[],
  options: { resolve?: AddressResolver; localAddresses?: ReadonlySet<string> } = {},
): Promise<TaskFileIssue[]> {
  if (endpoints.length === 0) return [];
  const resolve = options.resolve ?? systemResolve;
  const local = options.localAddresses ?? localAddresses();
  const onThisMachine = (address: string) => isLoopbackHost(address.includes(':') ? `[${address}]` : address) || local.has(address);
  const issues = byCanonicalHost(hosts, at, endpoints);
  const decided = new Set(issues.map((i) => i.path));
  const endpointAddresses = await Promise.all(endpoints.map(async (e) => ({ endpoint: e, addresses: await addressesOf(canonicalEndpointHost(e), resolve) })));
  for (const [i, entry] of hosts.entries()) {
    const path = `${at}grants.hosts.${i}`;
    if (decided.has(path)) continue;
    const parsed = parseHostEntry(entry);
    if (parsed === undefined) continue;
    const addresses = await addressesOf(parsed.host, resolve);
    for (const { endpoint, addresses: targets } of endpointAddresses) {
      if (!portsOf(parsed).includes(endpoint.port)) continue;
      const via = addresses.find((a) => targets.includes(a) || (onThisMachine(a) && targets.some(onThisMachine)));
      if (via !== undefined) {
        issues.push(endpointIssue(path, entry, endpoint, `address ${via}`));
        break;
      }
    }
  }
  return issues;
}
