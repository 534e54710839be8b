/**
 * Warden's own resources, which no task may hand to an agent: the state folder (credential
 * authority keys, credential stores, custody ledger and key, overlays, journals), the cache
 * folders, key files kept elsewhere (the Temporal mTLS client key), and the control plane's
 * network endpoints (the Temporal frontend's gRPC and HTTP API, its web UI).
 *
 * Invariant: a task whose workspace contains or lies inside one of these folders, whose database
 * is one of these files or lies inside these folders, or which grants one of these endpoints, is
 * refused before anything runs. Pure: paths are compared as given, so callers pass real paths.
 */
import type { TaskFileIssue } from '../errors';
import type { Task } from '../task/task-schema';
import { parseHostEntry, portsOf, unbracketedHost } from './host-entry';

export interface ProtectedPath {
  /** Absolute real path. */
  path: string;
  /** What it is, for messages ("Warden's state folder"). */
  what: string;
}

export interface ProtectedEndpoint {
  host: string;
  port: number;
  what: string;
}

export interface WardenResources {
  /** Folders nothing of which may be served: the state folder, caches. */
  folders: ProtectedPath[];
  /** Files that may not be served, also when they live outside the folders (key files). */
  files: ProtectedPath[];
  endpoints: ProtectedEndpoint[];
}

/** The task's paths as the file system sees them, after following links (the caller resolves them). */
export interface RealTaskPaths {
  workspace?: string;
  databases: Record<string, string>;
}

/** True when `candidate` is `folder` or lies under it (both absolute, `/`-separated, no trailing slash). */
export function isPathInside(folder: string, candidate: string): boolean {
  if (candidate === folder) return true;
  const prefix = folder.endsWith('/') ? folder : `${folder}/`;
  return candidate.startsWith(prefix);
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);

/**
 * Whether a canonical host (as `parseHostEntry` gives it: every IPv4 spelling already dotted
 * decimal, IPv6 compressed) reaches this machine without any name lookup: loopback names, 127/8,
 * 0/8 (the unspecified address connects to this machine), ::1, ::, and their IPv4-mapped forms.
 */
export function isLoopbackHost(canonicalHost: string): boolean {
  const h = unbracketedHost(canonicalHost).toLowerCase().replace(/\.+$/, '');
  if (LOOPBACK_NAMES.has(h) || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '::') return true;
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  const v4 = mapped === null ? (h.startsWith('::ffff:') ? h.slice(7) : h) : `${parseInt(mapped[1]!, 16) >> 8}.0.0.0`;
  const first = /^(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(v4)?.[1];
  return first === '127' || first === '0';
}

/** True when the two canonical hosts are the same host, or both reach this machine. */
export function sameEndpointHost(a: string, b: string): boolean {
  return a === b || (isLoopbackHost(a) && isLoopbackHost(b));
}

/** A protected endpoint's host, canonicalised like a granted one. */
export function canonicalEndpointHost(endpoint: ProtectedEndpoint): string {
  return parseHostEntry(endpoint.host.includes(':') && !endpoint.host.startsWith('[') ? `[${endpoint.host}]` : endpoint.host)?.host ?? endpoint.host.toLowerCase();
}

/**
 * Granted hosts that reach a protected endpoint, compared after the http capability's own
 * canonicalisation (`0x7f.1`, `0177.1`, `2130706433` are 127.0.0.1). Name resolution is the
 * worker's addition (worker/protected-endpoints.ts).
 */
export function grantedEndpointIssues(hosts: readonly string[], at: string, endpoints: readonly ProtectedEndpoint[]): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  hosts.forEach((entry, i) => {
    const parsed = parseHostEntry(entry);
    if (parsed === undefined) return;
    const hit = endpoints.find((e) => portsOf(parsed).includes(e.port) && sameEndpointHost(parsed.host, canonicalEndpointHost(e)));
    if (hit !== undefined) issues.push(endpointIssue(`${at}grants.hosts.${i}`, entry, hit));
  });
  return issues;
}

export function endpointIssue(path: string, entry: string, hit: ProtectedEndpoint, via?: string): TaskFileIssue {
  return {
    path,
    message: `grants "${entry}", which ${via === undefined ? 'is' : `reaches (${via})`} ${hit.what} (${hit.host}:${hit.port}); an agent that reaches it could act on Warden's own workflows`,
  };
}

/**
 * Every way `task` would hand Warden's own resources to an agent, as task-file issues (field path
 * and message). `real` holds the task's workspace and database paths resolved by the caller.
 */
export function wardenResourceIssues(task: Task, real: RealTaskPaths, resources: WardenResources): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  if (real.workspace !== undefined) {
    const workspace = real.workspace;
    for (const folder of resources.folders) {
      if (isPathInside(workspace, folder.path)) {
        issues.push({ path: 'resources.workspace', message: `${workspace} contains ${folder.what} (${folder.path}); move the workspace or the folder (WARDEN_STATE_DIR, WARDEN_CACHE_DIR)` });
      } else if (isPathInside(folder.path, workspace)) {
        issues.push({ path: 'resources.workspace', message: `${workspace} is inside ${folder.what} (${folder.path})` });
      }
    }
    for (const file of resources.files) {
      if (isPathInside(workspace, file.path)) issues.push({ path: 'resources.workspace', message: `${workspace} contains ${file.what} (${file.path})` });
    }
  }
  for (const [name, database] of Object.entries(real.databases)) {
    const folder = resources.folders.find((f) => isPathInside(f.path, database));
    const file = resources.files.find((f) => f.path === database);
    const hit = folder ?? file;
    if (hit !== undefined) issues.push({ path: `resources.databases.${name}`, message: `${database} is ${folder === undefined ? '' : 'inside '}${hit.what} (${hit.path})` });
  }
  issues.push(...grantedEndpointIssues(task.grants.hosts, '', resources.endpoints));
  for (const [name, sub] of Object.entries(task.subagents)) issues.push(...grantedEndpointIssues(sub.grants.hosts, `subagents.${name}.`, resources.endpoints));
  return issues;
}
