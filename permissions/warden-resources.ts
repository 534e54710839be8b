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
import type { Grants, Task } from '../task/task-schema';

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

/** Lower-case host without brackets or trailing dot. */
function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** Every spelling that reaches this machine: loopback names and addresses, the unspecified address. */
function isThisMachine(host: string): boolean {
  const h = normalizeHost(host);
  if (LOOPBACK_NAMES.has(h) || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '::' || h === '0:0:0:0:0:0:0:1' || h === '0:0:0:0:0:0:0:0') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  if (/^127(\.\d{1,3}){0,3}$/.test(v4) || /^0+(\.0+){0,3}$/.test(v4)) return true;
  // 2130706433 is 127.0.0.1 written as one number (URLs accept it).
  if (/^\d+$/.test(v4) && Number(v4) >>> 24 === 127) return true;
  return false;
}

function sameHost(a: string, b: string): boolean {
  const x = normalizeHost(a);
  const y = normalizeHost(b);
  return x === y || (isThisMachine(x) && isThisMachine(y));
}

/** `host`, `host:port`, `[v6]:port`; a plain host covers the default ports of http and https. */
function parseHostEntry(entry: string): { host: string; ports: number[] } | undefined {
  const trimmed = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed !== null) return { host: bracketed[1]!, ports: bracketed[2] === undefined ? [80, 443] : [Number(bracketed[2])] };
  const colons = trimmed.split(':').length - 1;
  if (colons === 1) {
    const [host, port] = trimmed.split(':') as [string, string];
    return /^\d+$/.test(port) ? { host, ports: [Number(port)] } : undefined;
  }
  return { host: trimmed, ports: [80, 443] };
}

function grantedEndpointIssues(grants: Grants, at: string, endpoints: readonly ProtectedEndpoint[]): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  grants.hosts.forEach((entry, i) => {
    const parsed = parseHostEntry(entry);
    if (parsed === undefined) return;
    const hit = endpoints.find((e) => parsed.ports.includes(e.port) && sameHost(parsed.host, e.host));
    if (hit !== undefined) {
      issues.push({
        path: `${at}grants.hosts.${i}`,
        message: `grants "${entry}", which is ${hit.what} (${hit.host}:${hit.port}); an agent that reaches it could act on Warden's own workflows`,
      });
    }
  });
  return issues;
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
  issues.push(...grantedEndpointIssues(task.grants, '', resources.endpoints));
  for (const [name, sub] of Object.entries(task.subagents)) issues.push(...grantedEndpointIssues(sub.grants, `subagents.${name}.`, resources.endpoints));
  return issues;
}
