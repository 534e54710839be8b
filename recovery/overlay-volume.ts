/**
 * The bound on what one task tree may add to the host's disk through its workspace overlay.
 *
 * A tree that runs programs or stdio MCP servers (`proc.run`, a `command` server) gets a file
 * system of its own for its overlay folder (`<state>/overlays/<task key>`: the upper layer, the
 * kernel overlay's work folders, undo records): a sparse ext4 image a little larger than
 * `limits.workspaceMb` MiB (makeFileSystem: the limit is usable in full, the file system's overhead,
 * Warden's reserve and a full margin come on top; `<state>/overlay-volumes/<task key>.ext4`)
 * loop-mounted there by the worker. Programs, servers
 * and `fs.write` all write into it and the kernel refuses (ENOSPC) the block past the bound while
 * the program runs: `fallocate`, many files, sparse files, hard links and copies alike, with no
 * race to win. The host disk holds at most the image's size (and one inode) per tree. A call that
 * ends within the full margin of the bound ran into it (assertWithinWorkspaceQuota) and fails.
 *
 * A tree without programs keeps a plain folder: only Warden writes there (`fs.write`), and the
 * fs capability measures the folder before each write (sandbox/capabilities/fs-capability.ts).
 *
 * Invariants:
 * - the image is the truth, the mount a cache: a worker that restarts (or another on the same
 *   state folder) mounts it again on first use; a mounted folder is never mounted twice;
 * - a plain overlay folder that a program call finds (made by a call of the tree that runs no
 *   program, or by a data-plane rebuild) is moved into a new volume before the program starts;
 * - the overlay folder is removed only after its volume is unmounted, and the image with it;
 * - a few MiB of each volume are reserved for Warden (owned by an id no sandboxed program has):
 *   the undo records and the kernel overlay's work folder still fit when a program filled the rest.
 *
 * Needs root (loop devices, mounting ext4) and `mkfs.ext4`/`tune2fs` (Debian package e2fsprogs).
 * Without them a program call over a workspace fails closed (ERR_WORKSPACE_QUOTA, naming what is
 * missing): nothing would bound its writes.
 */
import { walkBeneath } from './beneath';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { ToolError } from '../errors';
import { PROCESS_LIMIT_DEFAULTS } from '../tools/process-tools';
import { assertTaskKey, overlayPathsOf } from './recovery-paths';
import { assertWalkable, workspaceWalkError } from './overlay-layer';

/** Default bound on a task tree's overlay, MiB (`limits.workspaceMb`). */
export const DEFAULT_WORKSPACE_MB = PROCESS_LIMIT_DEFAULTS.workspaceMb;
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** Blocks only Warden may write (at most this, and at most 5% of the volume). */
const WARDEN_RESERVE_BYTES = 8 * 1024 * 1024;
const BLOCK_BYTES = 4096;
/** The journal, MiB: mkfs.ext4's smallest for 4 KiB blocks. */
const JOURNAL_MB = 4;
/**
 * Room for the volume's folders (the root, lost+found, the overlay's upper, work and undo folders)
 * and a large file's extent blocks: a workspace of exactly `limits.workspaceMb` MiB of files fits.
 */
export const METADATA_ALLOWANCE_BYTES = 256 * 1024;
/** Free inodes below which a volume counts as full (Warden's undo records need a few). */
const FULL_VOLUME_INODES = 64;
/** Owner of the reserve: an id no sandboxed program runs as (they run as the host's Warden user without capabilities). */
const RESERVE_OWNER = 65534;
/** Each mkfs, mount or copy gets this long (a loaded machine included); past it the call fails, nothing hangs. */
const COMMAND_TIMEOUT_MS = 120_000;

export interface OverlayVolumeState {
  /** `volume`: the overlay folder is its own bounded file system; `none`: a plain folder (or none yet). */
  enforcement: 'volume' | 'none';
  /** Bytes in use now (statfs). */
  usedBytes?: number;
  /** Bytes a program may still write (Warden's reserve left out). */
  availableBytes?: number;
  /** Inodes free now, and in use (statfs). */
  availableInodes?: number;
  usedInodes?: number;
}

interface TreeShape {
  tools: { builtin: readonly string[]; mcp?: Record<string, object> | undefined };
  subagents?: Record<string, TreeShape> | undefined;
  limits: { workspaceMb?: number | undefined };
}

/** The task's workspace bound, MiB: `limits.workspaceMb` or the default. */
export function workspaceLimitMbOf(task: { limits: { workspaceMb?: number | undefined } }): number {
  return task.limits.workspaceMb ?? DEFAULT_WORKSPACE_MB;
}

/**
 * The size of the volume a task tree's overlay is made with when `task` (or a sub-agent it
 * declares) runs programs or stdio MCP servers; undefined otherwise (a plain folder, measured).
 */
export function workspaceVolumeMbOf(task: TreeShape): number | undefined {
  const runsPrograms = (node: TreeShape, depth: number): boolean =>
    node.tools.builtin.includes('proc.run') ||
    Object.values(node.tools.mcp ?? {}).some((server) => 'command' in server) ||
    (depth < 12 && Object.values(node.subagents ?? {}).some((child) => runsPrograms(child, depth + 1)));
  return runsPrograms(task, 0) ? workspaceLimitMbOf(task) : undefined;
}

/** `<stateDir>/overlay-volumes/<taskKey>.ext4`. */
export function overlayVolumeImageOf(stateDir: string, taskKey: string): string {
  assertTaskKey(taskKey);
  return join(stateDir, 'overlay-volumes', `${taskKey}.ext4`);
}

const pending = new Map<string, Promise<OverlayVolumeState['enforcement']>>();
let problem: string | null | undefined;

/** What keeps this process from making volumes (not root, no e2fsprogs, no loop devices), or undefined. */
export function overlayVolumeProblem(): string | undefined {
  if (problem === undefined) {
    const missing = ['mkfs.ext4', 'tune2fs', 'mount', 'umount'].filter((tool) => !['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) => fs.existsSync(join(dir, tool))));
    if (process.getuid?.() !== 0) problem = 'the worker is not root (mounting a loop device needs it)';
    else if (missing.length > 0) problem = `${missing.join(', ')} not installed (apt-get install -y e2fsprogs mount)`;
    else if (!fs.existsSync('/dev/loop-control')) problem = 'the kernel has no loop devices (/dev/loop-control)';
    else problem = null;
  }
  return problem ?? undefined;
}

/**
 * Makes sure the overlay folder of `taskKey` is a volume of `sizeMb` MiB (mounts an existing
 * image; creates one, moving a plain folder's contents into it). Returns `none` when volumes are
 * not supported here. Throws ToolError ERR_WORKSPACE_QUOTA when a plain folder's contents do not
 * fit, plain Errors when mkfs or mount fail.
 */
export function ensureOverlayVolume(stateDir: string, taskKey: string, sizeMb: number): Promise<OverlayVolumeState['enforcement']> {
  const dir = overlayPathsOf(stateDir, taskKey).dir;
  const running = pending.get(dir);
  if (running !== undefined) return running;
  const work = makeVolume(stateDir, taskKey, dir, sizeMb).finally(() => pending.delete(dir));
  pending.set(dir, work);
  return work;
}

async function makeVolume(stateDir: string, taskKey: string, dir: string, sizeMb: number | undefined): Promise<OverlayVolumeState['enforcement']> {
  if (isMountPoint(dir)) return 'volume';
  if (overlayVolumeProblem() !== undefined) return 'none';
  const image = overlayVolumeImageOf(stateDir, taskKey);
  const aside = movedAsideOf(stateDir, taskKey);
  if (!fs.existsSync(image)) {
    if (sizeMb === undefined) return 'none';
    fs.mkdirSync(dirname(image), { recursive: true, mode: 0o700 });
    const partial = `${image}.${process.pid}.tmp`;
    fs.writeFileSync(partial, '', { mode: 0o600 });
    try {
      await makeFileSystem(partial, sizeMb);
      // A plain folder (calls of the tree that ran no program) is copied in before the image gets
      // its name: an image under its name always holds everything the folder held.
      if (fs.existsSync(dir)) await copyIntoImage(dir, partial, sizeMb);
      fs.renameSync(partial, image);
    } finally {
      fs.rmSync(partial, { force: true });
    }
  }
  if (fs.existsSync(dir)) {
    // The plain folder (copied into the image) or the empty mount point of a volume unmounted by a reboot.
    fs.rmSync(aside, { recursive: true, force: true });
    fs.renameSync(dir, aside);
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  await run('mount', ['-o', 'loop,nosuid,nodev,discard', image, dir]);
  fs.chmodSync(dir, 0o700);
  fs.rmSync(aside, { recursive: true, force: true });
  return 'volume';
}

function movedAsideOf(stateDir: string, taskKey: string): string {
  return `${overlayVolumeImageOf(stateDir, taskKey).slice(0, -'.ext4'.length)}.moved`;
}

/**
 * Makes the ext4 file system of a volume for a `limitMb` MiB bound in the empty file `image`,
 * sized so that a program may write `limitMb` MiB plus the full margin (and the metadata
 * allowance) before the kernel refuses a block: the file system's own overhead (journal, inode
 * tables, bitmaps, ext4's 2% reserved clusters) and Warden's reserve come on top of the limit,
 * not out of it. mkfs reports its free blocks (`tune2fs -l`); a first guess that falls short is
 * grown by the shortfall and made again.
 */
async function makeFileSystem(image: string, limitMb: number): Promise<void> {
  const reserveBlocks = Math.ceil(Math.min(WARDEN_RESERVE_BYTES, (limitMb * 1024 * 1024) / 20) / BLOCK_BYTES);
  const wanted = limitMb * 1024 * 1024 + fullVolumeMarginBytes() + METADATA_ALLOWANCE_BYTES;
  let bytes = roundUpToMiB(wanted * 1.02 + reserveBlocks * BLOCK_BYTES + JOURNAL_MB * 1024 * 1024);
  for (let attempt = 0; ; attempt += 1) {
    fs.truncateSync(image, 0);
    fs.truncateSync(image, bytes);
    // 4 KiB blocks, no root reserve, the smallest journal (crash consistency of the undo records),
    // the root folder private; then a reserve only Warden may use (it is root, CAP_SYS_RESOURCE; a
    // sandboxed program has no capability on the host, and the reserve's owner is an id it never is).
    await run('mkfs.ext4', ['-q', '-F', '-b', String(BLOCK_BYTES), '-m', '0', '-J', `size=${JOURNAL_MB}`, '-E', 'root_owner=0:0,lazy_itable_init=1', image]);
    await run('tune2fs', ['-r', String(reserveBlocks), '-u', String(RESERVE_OWNER), '-g', String(RESERVE_OWNER), image]);
    const superblock = await run('tune2fs', ['-l', image]);
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(superblock)?.[1] ?? NaN);
    const blockCount = field('Block count');
    // What statfs will report as f_bavail once mounted: ext4 holds back 2% of the clusters (at most 4096) for itself.
    const available = (field('Free blocks') - reserveBlocks - Math.min(Math.floor(blockCount / 50), 4096)) * BLOCK_BYTES;
    if (!Number.isFinite(available)) throw new Error(`tune2fs -l ${image}: no block counts in its output`);
    if (available >= wanted) return;
    if (attempt >= 4) throw new Error(`mkfs.ext4 left ${available} bytes for a ${limitMb} MiB workspace after ${attempt + 1} tries`);
    bytes = roundUpToMiB(bytes + (wanted - available) * 1.1);
  }
}

function roundUpToMiB(bytes: number): number {
  return Math.ceil(bytes / 1024 / 1024) * 1024 * 1024;
}

/** Copies the plain overlay folder `dir` into the new image `partial`, mounted aside for the copy. */
async function copyIntoImage(dir: string, partial: string, sizeMb: number): Promise<void> {
  const mountPoint = `${partial}.mnt`;
  fs.mkdirSync(mountPoint, { recursive: true, mode: 0o700 });
  await run('mount', ['-o', 'loop,nosuid,nodev', partial, mountPoint]);
  try {
    await run('cp', ['-a', '--sparse=always', `${dir}/.`, `${mountPoint}/`]).catch((error: Error) => {
      if (/No space left/.test(error.message)) {
        throw new ToolError('ERR_WORKSPACE_QUOTA', `the task tree's workspace writes so far do not fit in its limit (limits.workspaceMb: ${sizeMb} MiB): raise limits.workspaceMb in the task file`, { details: { limitMb: sizeMb } });
      }
      throw error;
    });
  } finally {
    await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]));
    fs.rmSync(mountPoint, { recursive: true, force: true });
  }
}

/** Mounts the volume of `taskKey` again if it has one and it is not mounted (after a restart). */
export async function attachOverlayVolume(stateDir: string, taskKey: string): Promise<void> {
  const dir = overlayPathsOf(stateDir, taskKey).dir;
  if (isMountPoint(dir) || !fs.existsSync(overlayVolumeImageOf(stateDir, taskKey))) return;
  const running = pending.get(dir);
  if (running !== undefined) {
    await running;
    return;
  }
  const work = makeVolume(stateDir, taskKey, dir, undefined).finally(() => pending.delete(dir));
  pending.set(dir, work);
  await work;
}

/**
 * Unmounts the volume of `taskKey` (if mounted) and deletes its image; call before the overlay
 * folder is removed. A program of the tree still running keeps the file system busy: it is then
 * detached lazily (gone from the state folder now, freed when the program ends).
 */
export async function releaseOverlayVolume(stateDir: string, taskKey: string): Promise<void> {
  const dir = overlayPathsOf(stateDir, taskKey).dir;
  if (isMountPoint(dir)) await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  fs.rmSync(overlayVolumeImageOf(stateDir, taskKey), { force: true });
  fs.rmSync(movedAsideOf(stateDir, taskKey), { recursive: true, force: true });
  // The owner record the worker's sweep reads (recovery/volume-sweep.ts).
  fs.rmSync(`${overlayVolumeImageOf(stateDir, taskKey).slice(0, -'.ext4'.length)}.owner.json`, { force: true });
}

/** How the overlay of `taskKey` is bounded now, with its use (statfs). */
export function overlayVolumeState(stateDir: string, taskKey: string): OverlayVolumeState {
  return volumeStateOfFolder(overlayPathsOf(stateDir, taskKey).dir);
}

/** The same for an overlay folder (or the upper folder inside it) given by path. */
export function volumeStateOfFolder(folder: string): OverlayVolumeState {
  const dir = isMountPoint(folder) ? folder : dirname(folder);
  if (!isMountPoint(dir)) return { enforcement: 'none' };
  const stat = fs.statfsSync(dir);
  return { enforcement: 'volume', usedBytes: (stat.blocks - stat.bfree) * stat.bsize, availableBytes: stat.bavail * stat.bsize, availableInodes: stat.ffree, usedInodes: stat.files - stat.ffree };
}

function isMountPoint(dir: string): boolean {
  try {
    return fs.statSync(dir).dev !== fs.statSync(dirname(dir)).dev;
  } catch {
    return false;
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { PATH: SYSTEM_PATH }, timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error === null) resolve(String(stdout));
      else reject(new Error(`${command} ${args.join(' ')} failed: ${(String(stderr) || error.message).trim()}`));
    });
  });
}


/** ToolError ERR_WORKSPACE_QUOTA for `who`, naming the limit and where to raise it. */
export function workspaceQuotaError(who: string, limitMb: number, what: string, details: Record<string, unknown> = {}): ToolError {
  return new ToolError('ERR_WORKSPACE_QUOTA', `${who}: ${what} (limits.workspaceMb: ${limitMb} MiB; raise limits.workspaceMb in the task file for more)`, { details: { limitMb, ...details } });
}

/**
 * Before a program or stdio MCP server runs over the overlay of `taskKey`: the folder is a volume
 * of the tree's bound (made now if needed). Throws ToolError ERR_WORKSPACE_QUOTA when this worker
 * cannot make volumes (nothing would bound the program's writes) or when what the tree wrote so
 * far does not fit.
 */
export async function assertOverlayBounded(stateDir: string, taskKey: string, task: { limits: { workspaceMb?: number | undefined } }, who: string): Promise<void> {
  const limitMb = workspaceLimitMbOf(task);
  if ((await ensureOverlayVolume(stateDir, taskKey, limitMb)) === 'volume') return;
  throw workspaceQuotaError(who, limitMb, `this worker cannot bound what a program writes to the workspace, so none runs over it: ${overlayVolumeProblem() ?? 'the overlay is not a volume'} (run the worker as root with e2fsprogs and loop devices; see the README, "Workspace quota")`);
}

let margin: number | undefined;

/**
 * Free bytes (for a program: Warden's reserve left out) below which a volume counts as full, so a
 * call that ends with less has run into the bound. The kernel may refuse a whole write while
 * nearly a page-cache folio is free (ext4 allocates a buffered write a folio at a time, up to
 * the transparent huge page size: a `dd bs=1M` stops with 0.9 MiB free), so the margin is twice
 * that size, at least 4 MiB. The volume is made that much larger than the limit, so the limit
 * itself stays usable. Bytes.
 */
export function fullVolumeMarginBytes(): number {
  if (margin === undefined) {
    let folio = 2 * 1024 * 1024;
    try {
      folio = Math.max(folio, Number(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8').trim()) || 0);
    } catch {
      // no transparent huge pages: 2 MiB stands
    }
    margin = Math.max(4 * 1024 * 1024, 2 * folio);
  }
  return margin;
}

/**
 * Bytes Warden may still write to a volume (statfs `stat`) under a limit of `limitBytes` before
 * a write (fs.write): what keeps the volume out of the full margin and its use within the limit;
 * 0 at or past either. Stricter than the rule after a call (no metadata allowance), so a write
 * Warden lets through never fails the next call's check.
 */
export function volumeRoomBytes(stat: { bsize: number; blocks: number; bfree: number; bavail: number }, limitBytes: number): number {
  const used = (stat.blocks - stat.bfree) * stat.bsize;
  return Math.max(0, Math.min(stat.bavail * stat.bsize - fullVolumeMarginBytes(), limitBytes - used));
}

/**
 * After a program or MCP call of `task` over the overlay of `taskKey`: throws ToolError
 * ERR_WORKSPACE_QUOTA when the call ran into the tree's bound: the volume ends within
 * fullVolumeMarginBytes() of full (the kernel refused a write, whatever the writer's block size,
 * or it wrote past the limit into the margin) or out of inodes; or the tree now takes more than
 * `task`'s own limit (a sub-agent's smaller one) plus METADATA_ALLOWANCE_BYTES. The failed call's
 * writes are undone like those of any failed call (its undo records), so nothing truncated is
 * committed.
 */
export function assertWithinWorkspaceQuota(stateDir: string, taskKey: string, task: { limits: { workspaceMb?: number | undefined } }, who: string): void {
  const state = overlayVolumeState(stateDir, taskKey);
  if (state.enforcement !== 'volume' || state.availableBytes === undefined || state.usedBytes === undefined) return;
  const limitMb = workspaceLimitMbOf(task);
  const usedMb = Math.ceil(state.usedBytes / 1024 / 1024);
  if (state.availableBytes < fullVolumeMarginBytes()) {
    throw workspaceQuotaError(who, limitMb, `the task tree's workspace is full (it holds ${usedMb} MiB): the call wrote up to or past the limit`, { usedBytes: state.usedBytes });
  }
  if (state.availableInodes !== undefined && state.availableInodes < FULL_VOLUME_INODES) {
    throw workspaceQuotaError(who, limitMb, `the task tree's workspace has no room for more files (it holds ${state.usedInodes ?? 0} files and folders)`, { usedBytes: state.usedBytes });
  }
  if (state.usedBytes > limitMb * 1024 * 1024 + METADATA_ALLOWANCE_BYTES) {
    throw workspaceQuotaError(who, limitMb, `the task tree's workspace holds ${usedMb} MiB, more than this task's limit`, { usedBytes: state.usedBytes });
  }
  assertWorkspaceFilesWithin(stateDir, taskKey, task, who);
}

/**
 * Throws ToolError ERR_WORKSPACE_QUOTA when the files in the overlay of `taskKey` are longer in
 * all than `task`'s limit. Sparse files and hard links take no blocks of the volume, but a
 * commit, the snapshot store and the data plane's copy write each out whole: their sizes count.
 * Checked before anything reads the files after a call (dataplane/overlay-copy.ts hashes them).
 */
export function assertWorkspaceFilesWithin(stateDir: string, taskKey: string, task: { limits: { workspaceMb?: number | undefined } }, who: string): void {
  const limitMb = workspaceLimitMbOf(task);
  const apparent = apparentBytesOf(overlayPathsOf(stateDir, taskKey).upper);
  if (apparent > limitMb * 1024 * 1024) {
    throw workspaceQuotaError(who, limitMb, `the task tree's workspace files are ${Math.ceil(apparent / 1024 / 1024)} MiB long (sparse files and hard links count at their size), more than the limit`, { apparentBytes: apparent });
  }
}

/**
 * The sizes of the regular files under `folder`, summed (symbolic links not followed; a missing
 * folder is 0). Throws ToolError ERR_WORKSPACE_QUOTA for a tree deeper or longer than Warden walks
 * or a folder it cannot read (recovery/overlay-layer.ts, assertWalkable): nothing is skipped.
 */
export function apparentBytesOf(folder: string): number {
  let total = 0;
  // Never through a link: a sandboxed process may swap one in while this walks (beneath.ts).
  walkBeneath(
    folder,
    ({ stat }) => {
      if (stat.isFile()) total += stat.size;
    },
    assertWalkable,
    (relative, error) => {
      throw workspaceWalkError(relative, error);
    },
  );
  return total;
}
