/**
 * What workers of one deployment must share, and the checks that it is there.
 *
 * A task's data plane (its overlay's working copy, its grants, its sandbox host) lives on one
 * worker; what must survive that worker lives in the shared folder, `WARDEN_SHARED_DIR`:
 * blobs (claim checks, tasks, transcripts, archived steps, overlay copies), task placements,
 * SQL undo journals, snapshots and the compensation ledger. The task's own resources (its
 * `workspace` folder and `databases` files) must also be on storage every worker sees at the same
 * path. Unset, the shared folder is the state folder: right for one machine, and for several
 * workers on one machine that use the same state folder.
 *
 * A worker cannot prove that another machine sees the same folder; it checks what it can: at
 * start, that the shared folder exists (it is never created when named explicitly: a missing
 * mount must not turn into an empty local folder), is a folder and is writable, and it registers
 * itself there; at a task's start, that the task's resources exist here and do not lie inside this
 * worker's private state folder; when it takes a task over, that the previous worker's records
 * are visible (see activities/place-task.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { ConfigError, DataPlaneError } from '../errors';
import { showName, TASK_QUEUE_NAME_MAX, taskQueueNameProblem, WORKER_ID_MAX, workerIdProblem } from './worker-naming';
import { cutText } from '../cut-text';

export const SHARED_DIR_ENV = 'WARDEN_SHARED_DIR';
export const WORKER_ID_ENV = 'WARDEN_WORKER_ID';

/** `WARDEN_SHARED_DIR` (resolved against `cwd`), else the state folder. */
export function sharedDirOf(env: NodeJS.ProcessEnv, stateDir: string, cwd: string = process.cwd()): string {
  const named = env[SHARED_DIR_ENV]?.trim();
  return named ? resolve(cwd, named) : stateDir;
}

/**
 * This worker's name in shared records and in its data-plane task queue: `WARDEN_WORKER_ID`, else
 * the host name (cut to 100 characters, other characters than `[A-Za-z0-9._-]` as '_') and a digest
 * of the state folder (stable across restarts of the same worker, so a restarted worker picks up
 * the tasks it held). An explicit id is returned as given: `checkWorkerId` judges it.
 */
export function workerIdOf(stateDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env[WORKER_ID_ENV]?.trim();
  if (explicit !== undefined && explicit !== '') return explicit;
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'host';
  return `${host}-${createHash('sha256').update(stateDir).digest('hex').slice(0, 8)}`;
}

/**
 * The worker id of `stateDir` / `env`, checked against the naming rules (dataplane/worker-naming.ts).
 * @throws ConfigError ERR_CONFIG_INVALID naming WARDEN_WORKER_ID and what is wrong
 */
export function checkWorkerId(stateDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const id = workerIdOf(stateDir, env);
  const problem = workerIdProblem(id);
  if (problem !== undefined) {
    const named = (env[WORKER_ID_ENV]?.trim() ?? '') !== '';
    throw new ConfigError('ERR_CONFIG_INVALID', `${named ? WORKER_ID_ENV : 'the default worker id (host name and state-folder digest)'} ${showName(id)} ${problem}; set ${WORKER_ID_ENV} to 1..${WORKER_ID_MAX} of [A-Za-z0-9._-]`, {
      details: { workerId: cutText(id, 200), variable: WORKER_ID_ENV },
    });
  }
  return id;
}

/**
 * A task queue name a user gave (`--task-queue`, `WARDEN_TASK_QUEUE`, the client API), checked
 * against the naming rules; `source` names where it came from in the error.
 * @throws ConfigError ERR_CONFIG_INVALID
 */
export function checkTaskQueueName(name: string, source: string): string {
  const problem = taskQueueNameProblem(name);
  if (problem !== undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${source} ${showName(name)} ${problem} (a task queue name is 1..${TASK_QUEUE_NAME_MAX} printable ASCII characters without '@' or spaces)`, {
      details: { taskQueue: cutText(name, 200), source },
    });
  }
  return name;
}

/** The task queue only worker `workerId` polls, next to the shared queue `taskQueue`. */
export function dataPlaneQueueOf(taskQueue: string, workerId: string): string {
  return `${taskQueue}@${workerId}`;
}

export interface SharedStorageInfo {
  sharedDir: string;
  /** True when WARDEN_SHARED_DIR names it (multi-machine mode). */
  explicit: boolean;
  /** Id of the deployment that first used this folder (`warden-shared.json`). */
  deploymentId: string;
}

const MARKER = 'warden-shared.json';

/**
 * Checks the shared folder at worker start and registers the worker in it.
 * @throws DataPlaneError ERR_SHARED_STORAGE naming the folder and what is wrong
 */
export async function checkSharedStorage(options: { sharedDir: string; explicit: boolean; workerId: string; stateDir: string }): Promise<SharedStorageInfo> {
  const { sharedDir, explicit } = options;
  const fail = (what: string, cause?: unknown): never => {
    throw new DataPlaneError('ERR_SHARED_STORAGE', `the shared folder ${sharedDir}${explicit ? ` (${SHARED_DIR_ENV})` : ''} ${what}`, {
      details: { sharedDir },
      ...(cause === undefined ? {} : { cause }),
    });
  };
  if (!explicit) await fsp.mkdir(sharedDir, { recursive: true, mode: 0o700 });
  const stat = await fsp.stat(sharedDir).catch((cause: unknown) => fail('does not exist: mount the volume every worker shares there, or unset the variable on a single machine', cause));
  if (!stat.isDirectory()) fail('is not a folder');
  if (explicit) {
    const state = resolve(options.stateDir);
    if (state === sharedDir || sharedDir.startsWith(`${state}${sep}`)) {
      fail(`lies inside this worker's own state folder ${state}; other workers cannot share it`);
    }
  }
  const probe = join(sharedDir, `.probe-${randomUUID()}`);
  try {
    await fsp.writeFile(probe, options.workerId, { flag: 'wx', mode: 0o600 });
    if ((await fsp.readFile(probe, 'utf8')) !== options.workerId) fail('does not read back what was written');
  } catch (cause) {
    if (cause instanceof DataPlaneError) throw cause;
    fail(`is not writable: ${(cause as Error).message}`, cause);
  } finally {
    await fsp.rm(probe, { force: true });
  }
  const deploymentId = await ensureMarker(join(sharedDir, MARKER));
  await fsp.mkdir(join(sharedDir, 'workers'), { recursive: true, mode: 0o700 });
  await fsp.writeFile(
    join(sharedDir, 'workers', `${options.workerId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`),
    `${JSON.stringify({ workerId: options.workerId, host: hostname(), pid: process.pid, startedAt: new Date().toISOString() }, null, 2)}\n`,
    { mode: 0o600 },
  );
  return { sharedDir, explicit, deploymentId };
}

/** The deployment id in the marker file, creating the file (once, race-free) if it is missing. */
async function ensureMarker(file: string): Promise<string> {
  const fresh = { version: 1, deploymentId: randomUUID(), createdAt: new Date().toISOString() };
  try {
    const handle = await fsp.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(fresh, null, 2)}\n`);
    } finally {
      await handle.close();
    }
    return fresh.deploymentId;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  for (let attempt = 0; attempt < 20; attempt += 1) {
    try {
      const parsed = JSON.parse(await fsp.readFile(file, 'utf8')) as { deploymentId?: unknown };
      if (typeof parsed.deploymentId === 'string') return parsed.deploymentId;
    } catch {
      // written by another worker right now
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new DataPlaneError('ERR_SHARED_STORAGE', `${file} is not a Warden shared-folder marker`, { details: { file } });
}

/**
 * Checks a task's resources on the worker about to hold its data plane: the workspace is a
 * folder here, every database file's folder exists, and (with a shared folder) none lies inside
 * this worker's private state folder, where no other worker could see it.
 * @throws DataPlaneError ERR_SHARED_STORAGE naming the resource
 */
export async function checkTaskResources(options: {
  workspace: string | undefined;
  databases: Record<string, string>;
  stateDir: string;
  explicitShared: boolean;
}): Promise<void> {
  const state = await fsp.realpath(options.stateDir).catch(() => resolve(options.stateDir));
  const check = async (what: string, path: string, folder: boolean) => {
    const real = await fsp.realpath(path).catch(() => undefined);
    if (real === undefined) {
      throw new DataPlaneError('ERR_SHARED_STORAGE', `${what} ${path} does not exist on this worker${options.explicitShared ? ' (it must be on storage every worker mounts at the same path)' : ''}`, {
        details: { resource: what, path },
      });
    }
    if (folder && !(await fsp.stat(real)).isDirectory()) throw new DataPlaneError('ERR_SHARED_STORAGE', `${what} ${path} is not a folder`, { details: { resource: what, path } });
    if (options.explicitShared && (real === state || real.startsWith(`${state}${sep}`))) {
      throw new DataPlaneError('ERR_SHARED_STORAGE', `${what} ${path} lies inside this worker's private state folder; other workers cannot reach it`, { details: { resource: what, path } });
    }
  };
  if (options.workspace !== undefined) await check('workspace', options.workspace, true);
  for (const [name, file] of Object.entries(options.databases)) await check(`database "${name}" folder`, join(file, '..'), true);
}
