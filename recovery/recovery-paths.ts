/**
 * Where recovery state lives under the state folder, and the task key that names it.
 *
 * Invariant: a task key is a single safe file-name component, so no workflow id (which an
 * operator or a caller chooses) can make recovery state land outside its folder.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Ids that are already safe file names are used as they are; others are made safe and hashed. */
const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Separates a tree's workflow part from its run part; never part of a workflow key (`~` only precedes a 16-hex digest there). */
const RUN_SEPARATOR = '~run~';
/** The text between a task key's workflow part and its run part. */
export const RUN_SEPARATOR_TEXT = RUN_SEPARATOR;

function safePart(id: string, what: string): string {
  if (typeof id !== 'string' || id === '') throw new TypeError(`${what} must be a non-empty string`);
  if (SAFE_KEY.test(id)) return id;
  const readable = id.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 60);
  const digest = createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 16);
  return `${readable === '' ? 'task' : readable}~${digest}`;
}

/**
 * The file-system key of a task tree: its root workflow id and, for trees started since recovery
 * state is kept per run, the root's first run id (`<workflow key>~run~<run key>`), so two runs
 * under a reused workflow id never share an overlay, journal or snapshot. A safe id is its own
 * key; anything else becomes a readable part plus `~` and a hash of the id (`~` never occurs in a
 * safe id, so the forms cannot collide).
 */
export function taskKeyOf(rootWorkflowId: string, rootRunId?: string): string {
  const workflowKey = safePart(rootWorkflowId, 'a workflow id');
  return rootRunId === undefined ? workflowKey : `${workflowKey}${RUN_SEPARATOR}${safePart(rootRunId, 'a run id')}`;
}

/** The task keys of `rootWorkflowId`'s runs among `keys` (those with a run part), and its key from before runs were kept apart. */
export function runKeysAmong(rootWorkflowId: string, keys: Iterable<string>): { runs: string[]; legacy: string } {
  const legacy = taskKeyOf(rootWorkflowId);
  const prefix = `${legacy}${RUN_SEPARATOR}`;
  return { runs: [...keys].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('~run~')), legacy };
}

/** Throws TypeError when `taskKey` is not something `taskKeyOf` could have produced. */
export function assertTaskKey(taskKey: string): void {
  if (typeof taskKey !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._~-]{0,220}$/.test(taskKey)) {
    throw new TypeError(`not a task key: ${JSON.stringify(taskKey)} (use taskKeyOf(workflowId, runId))`);
  }
}

export interface OverlayPaths {
  /** `<stateDir>/overlays/<taskKey>`: removed as a whole on commit or discard. */
  dir: string;
  /** The copy-on-write upper folder: what goes into the fs grant's `overlay`. */
  upper: string;
  /** `overlay.json`: which workspace this overlay sits on. */
  manifest: string;
}

export function overlayPathsOf(stateDir: string, taskKey: string): OverlayPaths {
  assertTaskKey(taskKey);
  const dir = join(stateDir, 'overlays', taskKey);
  return { dir, upper: join(dir, 'upper'), manifest: join(dir, 'overlay.json') };
}

/** `<stateDir>/snapshots`: manifests and the content-addressed `objects/` folder. */
export function snapshotsDirOf(stateDir: string): string {
  return join(stateDir, 'snapshots');
}

/** `<stateDir>/snapshots/<taskKey>.json`: what the task's commit replaced. */
export function commitManifestPathOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(snapshotsDirOf(stateDir), `${taskKey}.json`);
}

/** `<stateDir>/snapshots/pre-task/<taskKey>.json`: the workspace as it was before the task (`snapshot: true`). */
export function preTaskManifestPathOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(snapshotsDirOf(stateDir), 'pre-task', `${taskKey}.json`);
}

/** `<stateDir>/journals/<taskKey>.sqlite`: the task tree's SQL undo journal (the sql grant's `journal`). */
export function journalPathOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(stateDir, 'journals', `${taskKey}.sqlite`);
}

/** `<stateDir>/compensations/<taskKey>.json`: compensations already run (so a retry does not run one twice). */
export function compensationLedgerPathOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(stateDir, 'compensations', `${taskKey}.json`);
}

/**
 * `<stateDir>/overlays/<taskKey>/undo/<digest of callId>`: what one call's overlay writes
 * replaced (recovery/overlay-undo.ts). Inside the overlay folder, so a commit or discard removes it.
 */
export function overlayUndoDirOf(stateDir: string, taskKey: string, callId: string): string {
  const digest = createHash('sha256').update(callId, 'utf8').digest('hex').slice(0, 32);
  return join(overlayPathsOf(stateDir, taskKey).dir, 'undo', digest);
}

/** `<stateDir>/held/<taskKey>`: files a commit held back because they run code on the host (host-code-files.ts). */
export function heldDirOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(stateDir, 'held', taskKey);
}

/**
 * `<stateDir>/call-starts/<taskKey>/<digest of callId>`: whether one call's tool started, or was
 * fenced off by its compensation as never started (recovery/call-starts.ts).
 */
export function callStartPathOf(stateDir: string, taskKey: string, callId: string): string {
  assertTaskKey(taskKey);
  const digest = createHash('sha256').update(callId, 'utf8').digest('hex').slice(0, 32);
  return join(stateDir, 'call-starts', taskKey, digest);
}

/**
 * `<stateDir>/call-leases/<taskKey>`: the attempt leases of a task tree's calls on this machine
 * (recovery/call-lease.ts), one flat folder per task so a call's first attempt creates one file in
 * a folder that usually exists already. Removed with the task's overlay when the task ends.
 */
export function callLeaseDirOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(stateDir, 'call-leases', taskKey);
}

/** The name stem of one call's lease files in `callLeaseDirOf` (a digest of the call id, 32 hex). */
export function callLeaseStemOf(callId: string): string {
  return createHash('sha256').update(callId, 'utf8').digest('hex').slice(0, 32);
}
