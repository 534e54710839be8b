/**
 * Finds Warden's own resources on this machine (see permissions/warden-resources.ts): the state
 * and cache folders, the key files and key sources, the custody witness, kernel file systems, the
 * Temporal endpoints this process is configured for, and a task's own controls (its task file and
 * policy packs). Used where a task enters (`warden run`, `warden mcp serve`, and every worker's
 * `beginTask` and sub-agent check) and, as a `ProtectedSet`, by each file, SQL and program call
 * (sandbox/capabilities/protected-guard.ts checks it on what is actually opened).
 */
import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { sharedDirOf } from '../dataplane/shared-storage';
import { PermissionDeniedError, type TaskFileIssue } from '../errors';
import { IDENTITY_DB_FILE } from '../identity/credential-stores';
import { defaultApproverKeyDir } from '../identity/approver-registry';
import { KEYS_DIR } from '../identity/keystore-location';
import { KEY_DIR as CUSTODY_KEY_DIR } from '../custody/ledger';
import { wardenResourceIssues, type ProtectedEndpoint, type RealTaskPaths, type WardenResources } from '../permissions/warden-resources';
import { createProtectedGuard, describeRefusal, KERNEL_FOLDERS, type ProtectedSet } from '../sandbox/capabilities/protected-guard';
import { witnessKindOf } from '../custody/checkpoint-witness';
import { readPackFile, resolvePackFolder } from '../policies/engine/load-pack';
import { DEFAULT_POLICY_PACKS } from '../task/task-schema';
import { parseSecretTemplate } from '../secrets/secret-template';
import { grantedEndpointIssues } from './protected-endpoints';
import type { Task } from '../task/task-schema';
import { defaultCacheDir } from '../temporal/temporal-cli';
import { EMBEDDED_TEMPORAL_HOST, loadEmbeddedPorts, loadTemporalConfig } from '../temporal/temporal-config';

/** The real path of `path`, or of its nearest existing ancestor joined with the rest (for paths not made yet). */
export function realPathOf(path: string): string {
  const absolute = resolve(path);
  try {
    return fs.realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(realPathOf(parent), basename(absolute));
  }
}

export interface WardenResourcesOptions {
  env?: NodeJS.ProcessEnv;
  stateDir: string;
  /** Further cache folders (e.g. a worker's workflow-bundle cache). */
  cacheDirs?: readonly string[];
}

function endpointOf(address: string, what: string): ProtectedEndpoint | undefined {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address.trim());
  return match === null ? undefined : { host: match[1]!, port: Number(match[2]), what };
}

/**
 * The Temporal endpoints of this configuration: the frontend (TEMPORAL_ADDRESS or the embedded
 * one), and for the embedded server its web UI and HTTP API; plus `WARDEN_PROTECTED_HOSTS`
 * (comma-separated `host:port`, e.g. an external cluster's UI and HTTP API).
 */
export function temporalEndpointsOf(env: NodeJS.ProcessEnv): ProtectedEndpoint[] {
  const endpoints: ProtectedEndpoint[] = [];
  try {
    const config = loadTemporalConfig(env);
    const frontend = endpointOf(config.address, 'the Temporal frontend');
    if (frontend !== undefined) endpoints.push(frontend);
    if (config.mode === 'embedded') {
      const { uiPort, httpPort } = loadEmbeddedPorts(env);
      endpoints.push({ host: EMBEDDED_TEMPORAL_HOST, port: uiPort, what: 'the Temporal web UI' });
      endpoints.push({ host: EMBEDDED_TEMPORAL_HOST, port: httpPort, what: "the Temporal frontend's HTTP API" });
    }
  } catch {
    // A configuration that does not load cannot start tasks either; nothing to protect here.
  }
  for (const entry of (env.WARDEN_PROTECTED_HOSTS ?? '').split(',')) {
    const endpoint = entry.trim() === '' ? undefined : endpointOf(entry, 'a host listed in WARDEN_PROTECTED_HOSTS');
    if (endpoint !== undefined) endpoints.push(endpoint);
  }
  return endpoints;
}

function filesIn(folder: string): string[] {
  try {
    return fs.readdirSync(folder).map((name) => join(folder, name));
  } catch {
    return [];
  }
}

/**
 * Key files and credential stores as they are now (keys rotate): the credential authority's keys,
 * the custody signing keys, the identity store (which holds grant tokens) and the Temporal mTLS
 * client key.
 */
export function wardenKeyFiles(stateDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const state = realPathOf(stateDir);
  const files = [
    ...filesIn(join(state, KEYS_DIR)),
    ...filesIn(join(state, CUSTODY_KEY_DIR)),
    ...[IDENTITY_DB_FILE, `${IDENTITY_DB_FILE}-wal`, `${IDENTITY_DB_FILE}-shm`].map((name) => join(state, name)),
  ];
  if (env.TEMPORAL_TLS_KEY) files.push(realPathOf(env.TEMPORAL_TLS_KEY));
  return files;
}

/** Environment variables naming Warden's key files and key sources outside the state folder. */
const KEY_FILE_VARIABLES: readonly [string, string][] = [
  ['TEMPORAL_TLS_KEY', 'the Temporal client key (TEMPORAL_TLS_KEY)'],
  ['WARDEN_SIGNING_KEY_FILE', 'the fleet signing key (WARDEN_SIGNING_KEY_FILE)'],
  ['WARDEN_CUSTODY_TRUSTED_KEYS', 'the pinned custody keys (WARDEN_CUSTODY_TRUSTED_KEYS)'],
];

/** Warden's resources for this process's configuration. */
export function wardenResourcesOf(options: WardenResourcesOptions): WardenResources {
  const env = options.env ?? process.env;
  const folders = [
    { path: realPathOf(options.stateDir), what: "Warden's state folder" },
    { path: realPathOf(defaultCacheDir(env)), what: "Warden's cache folder" },
    ...(options.cacheDirs ?? []).map((dir) => ({ path: realPathOf(dir), what: "Warden's cache folder" })),
    { path: realPathOf(defaultApproverKeyDir(env)), what: "the approvers' key folder" },
    // Blobs, placements, journals and overlay copies of every task: no task may read another's.
    ...(env.WARDEN_SHARED_DIR?.trim() ? [{ path: realPathOf(sharedDirOf(env, options.stateDir)), what: "Warden's shared folder (WARDEN_SHARED_DIR)" }] : []),
    ...KERNEL_FOLDERS.map((path) => ({ path, what: 'a kernel file system' })),
  ];
  const files = [];
  for (const [name, what] of KEY_FILE_VARIABLES) if (env[name]?.trim()) files.push({ path: realPathOf(env[name]!.trim()), what });
  // The witness holds the keys and heads a verifier pins: no agent may rewrite it.
  const witness = env.WARDEN_CUSTODY_WITNESS?.trim();
  if (witness) {
    const entry = { path: realPathOf(witness), what: 'the custody witness (WARDEN_CUSTODY_WITNESS)' };
    if (witnessKindOf(witness) === 'folder') folders.push(entry);
    else files.push(entry);
  }
  return { folders, files, endpoints: temporalEndpointsOf(env) };
}

/**
 * The task's own controls: its task file (`source`, set by the loader) and the folders of every
 * policy pack it and its sub-agents are judged by (with the packs they `@extends`). A workspace may
 * hold them; no agent may change them.
 */
export function controlPathsOf(task: Task): string[] {
  const paths = new Set<string>();
  if (task.source !== undefined) paths.add(realPathOf(task.source));
  const visit = (pack: string, relativeTo: string | undefined, seen: Set<string>) => {
    let folder: string;
    try {
      folder = resolvePackFolder(pack, relativeTo);
    } catch {
      return; // a pack that does not exist fails the task elsewhere
    }
    if (seen.has(folder)) return;
    seen.add(folder);
    paths.add(folder);
    try {
      for (const parent of readPackFile(folder).extends) visit(parent, dirname(folder), seen);
    } catch {
      // unreadable: the policy check says so
    }
  };
  const seen = new Set<string>();
  for (const pack of task.policyPacks ?? DEFAULT_POLICY_PACKS) visit(pack, undefined, seen);
  for (const sub of Object.values(task.subagents)) for (const pack of sub.policyPacks ?? []) visit(pack, undefined, seen);
  return [...paths];
}

/**
 * What a tool call of `task` may never open (`files`, `folders`) or change (`readOnly`), as the
 * capabilities and the OS sandbox take it: `resources`, the key files as they are now, and the
 * task's own controls.
 */
export function protectedSetOf(resources: WardenResources, keyFiles: readonly string[], task?: Task): { folders: string[]; files: string[]; readOnly: string[] } {
  return {
    folders: resources.folders.map((f) => f.path),
    files: [...new Set([...keyFiles, ...resources.files.map((f) => f.path)])],
    readOnly: task === undefined ? [] : controlPathsOf(task),
  };
}

/** The task's workspace and databases as real paths. */
export function realTaskPathsOf(task: Task): RealTaskPaths {
  return {
    ...(task.resources.workspace === undefined ? {} : { workspace: realPathOf(task.resources.workspace) }),
    databases: Object.fromEntries(Object.entries(task.resources.databases).map(([name, path]) => [name, realPathOf(path)])),
  };
}

/** `resources` with the approvers' key files as they are registered now. */
export function withApproverKeyFiles(resources: WardenResources, keyFiles: readonly string[]): WardenResources {
  return { ...resources, files: [...resources.files, ...keyFiles.map((file) => ({ path: realPathOf(file), what: 'an approver key file' }))] };
}

/** Databases that are one of `keyFiles` under another name (a hard link): same device and inode. */
function databasesLinkedTo(task: Task, keyFiles: readonly string[]): { path: string; message: string }[] {
  const inodes = new Set<string>();
  for (const file of keyFiles) {
    try {
      const stat = fs.statSync(file);
      inodes.add(`${stat.dev}:${stat.ino}`);
    } catch {
      // a key file that does not exist has no other name either
    }
  }
  const issues: { path: string; message: string }[] = [];
  for (const [name, path] of Object.entries(task.resources.databases)) {
    try {
      const stat = fs.statSync(path);
      if (inodes.has(`${stat.dev}:${stat.ino}`)) issues.push({ path: `resources.databases.${name}`, message: `${path} is one of Warden's key files or credential stores under another name` });
    } catch {
      // a database that does not exist yet is no other file
    }
  }
  return issues;
}

/**
 * The same checks on what the paths are now, by device and inode (protected-guard.ts): a
 * workspace that is, lies in or contains a protected folder or file (also through a bind mount,
 * or a hard link of a key file as a database), or sits on a kernel file system (/proc/self).
 */
function openedResourceIssues(task: Task, set: ProtectedSet): TaskFileIssue[] {
  const guard = createProtectedGuard(set);
  const issues: TaskFileIssue[] = [];
  if (task.resources.workspace !== undefined) {
    const refusal = guard.refusalOfFolder(realPathOf(task.resources.workspace));
    if (refusal !== undefined) issues.push({ path: 'resources.workspace', message: describeRefusal(task.resources.workspace, refusal) });
  }
  for (const [name, path] of Object.entries(task.resources.databases)) {
    // A database is written by sql.exec: the task's controls are refused too.
    const refusal = guard.refusalOfPath(path, 'write');
    if (refusal !== undefined) issues.push({ path: `resources.databases.${name}`, message: describeRefusal(path, refusal) });
  }
  issues.push(...secretFileIssues(task, guard));
  return issues;
}

/**
 * `${file:...}` secret references that name Warden's own files (a key file, anything in the state
 * folder, the approvers' keys, the witness, a kernel file system), by path and through links: the
 * worker would read them and send them to the task's host. Checked again when each call reads them
 * (secrets/resolve-outbound-secrets.ts), on the file actually opened.
 */
function secretFileIssues(task: Task, guard: ReturnType<typeof createProtectedGuard>): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  for (const [host, headers] of Object.entries(task.resources.secrets)) {
    for (const [name, template] of Object.entries(headers)) {
      const parsed = parseSecretTemplate(template);
      if ('error' in parsed) continue;
      for (const part of parsed.parts) {
        if (typeof part === 'string' || part.kind !== 'file') continue;
        const refusal = guard.refusalOfPath(resolve(part.path), 'read');
        if (refusal !== undefined) issues.push({ path: `resources.secrets.${host}.${name}`, message: `the secret file ${describeRefusal(part.path, refusal)}; a secret reference may not read Warden's own files` });
      }
    }
  }
  return issues;
}

/**
 * Every way `task` would hand Warden's own resources to an agent, as task-file issues (field and
 * why): its paths by name and by identity, and its granted hosts after the http capability's
 * canonicalisation and name resolution. `keyFiles`: the key files and credential stores as they
 * are now. One finding per field.
 */
export async function taskResourceIssues(task: Task, resources: WardenResources, keyFiles: readonly string[] = []): Promise<TaskFileIssue[]> {
  const byName = wardenResourceIssues({ ...task, grants: { ...task.grants, hosts: [] }, subagents: {} }, realTaskPathsOf(task), resources);
  const byIdentity = [...openedResourceIssues(task, protectedSetOf(resources, keyFiles)), ...databasesLinkedTo(task, [...keyFiles, ...resources.files.map((f) => f.path)])];
  const fields = new Set(byName.map((i) => i.path));
  const endpoints = [
    ...(await grantedEndpointIssues(task.grants.hosts, '', resources.endpoints)),
    ...(await Promise.all(Object.entries(task.subagents).map(([name, sub]) => grantedEndpointIssues(sub.grants.hosts, `subagents.${name}.`, resources.endpoints)))).flat(),
  ];
  return [...byName, ...byIdentity.filter((i) => !fields.has(i.path) && (fields.add(i.path), true)), ...endpoints];
}

/**
 * Refuses (PermissionDeniedError `ERR_RESOURCE_PROTECTED`, not retryable) a task that would hand
 * any of `resources` to an agent; `details.issues` lists each field and why (taskResourceIssues).
 */
export async function assertTaskSparesWardenResources(task: Task, resources: WardenResources, keyFiles: readonly string[] = []): Promise<void> {
  const issues = await taskResourceIssues(task, resources, keyFiles);
  if (issues.length === 0) return;
  throw new PermissionDeniedError('ERR_RESOURCE_PROTECTED', `the task would hand Warden's own resources to an agent: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
    details: { issues },
  });
}
