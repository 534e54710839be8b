/**
 * Finds Warden's own resources on this machine (see permissions/warden-resources.ts): the state
 * and cache folders, the key files, the Temporal endpoints this process is configured for. Used
 * where a task enters (`warden run`, and every worker's `beginTask`) and by each file tool call.
 */
import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { sharedDirOf } from '../dataplane/shared-storage';
import { PermissionDeniedError } from '../errors';
import { IDENTITY_DB_FILE } from '../identity/credential-stores';
import { defaultApproverKeyDir } from '../identity/approver-registry';
import { KEYS_DIR } from '../identity/keystore';
import { KEY_DIR as CUSTODY_KEY_DIR } from '../custody/ledger';
import { wardenResourceIssues, type ProtectedEndpoint, type RealTaskPaths, type WardenResources } from '../permissions/warden-resources';
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
  ];
  const files = [];
  if (env.TEMPORAL_TLS_KEY) files.push({ path: realPathOf(env.TEMPORAL_TLS_KEY), what: 'the Temporal client key (TEMPORAL_TLS_KEY)' });
  return { folders, files, endpoints: temporalEndpointsOf(env) };
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
 * Refuses (PermissionDeniedError `ERR_RESOURCE_PROTECTED`, not retryable) a task that would hand
 * any of `resources` to an agent; `details.issues` lists each field and why. `keyFiles` (the
 * key files and credential stores as they are now) are also refused as databases under another
 * name.
 */
export function assertTaskSparesWardenResources(task: Task, resources: WardenResources, keyFiles: readonly string[] = []): void {
  const issues = [...wardenResourceIssues(task, realTaskPathsOf(task), resources), ...databasesLinkedTo(task, [...keyFiles, ...resources.files.map((f) => f.path)])];
  if (issues.length === 0) return;
  throw new PermissionDeniedError('ERR_RESOURCE_PROTECTED', `the task would hand Warden's own resources to an agent: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
    details: { issues },
  });
}
