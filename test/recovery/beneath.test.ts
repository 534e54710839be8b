/**
 * The class behind two attack findings (test/attacks/mcp-undo-*.test.ts): Warden reading or
 * writing, by path, below a folder that a sandboxed process changes at the same time. Here a real
 * process swaps folders of the tree with links to a host folder without end (renameat2
 * RENAME_EXCHANGE, so each name is always there, now a folder, now the link) while every operation
 * of recovery/beneath.ts, and every recovery function that reads the overlay's upper folder
 * through it, runs again and again. None may read, write, remove or list anything of the host
 * folder; what they do instead is answer from inside the tree or refuse.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BeneathError, lstatBeneath, readFileBeneath, removeBeneath, walkBeneath, writeFileAtomicBeneath } from '../../recovery/beneath';
import { readUpperLayer } from '../../recovery/overlay-layer';
import { apparentBytesOf } from '../../recovery/overlay-volume';
import { captureUpper, listUpper, recordUpperChanges, removeAddedPaths, undoOverlayCall } from '../../recovery/overlay-undo';
import { overlayPathsOf, overlayUndoDirOf } from '../../recovery/recovery-paths';

const PAIRS = 8;
const ROUNDS = 150;

let base: string;
let root: string;
let host: string;
let racer: ChildProcess | undefined;

/** The host folder as it is: every name under it and every file's bytes. */
function hostState(): Record<string, string> {
  const state: Record<string, string> = {};
  const visit = (folder: string, rel: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      if (statSync(path).isDirectory()) {
        state[`${key}/`] = '';
        visit(path, key);
      } else state[key] = readFileSync(path, 'utf8');
    }
  };
  visit(host, '');
  return state;
}

/** The tree: `d<i>/` folders holding `f` ("inside") and `sub/g`, each beside `l<i>`, a link to the host folder. */
function plant(treeRoot: string): void {
  for (let i = 0; i < PAIRS; i += 1) {
    mkdirSync(join(treeRoot, `d${i}`, 'sub'), { recursive: true });
    writeFileSync(join(treeRoot, `d${i}`, 'f'), 'inside');
    writeFileSync(join(treeRoot, `d${i}`, 'sub', 'g'), 'inside');
    symlinkSync(host, join(treeRoot, `l${i}`));
  }
}

/** Swaps every d<i> with l<i> under `treeRoot` until killed. */
function startRacer(treeRoot: string): ChildProcess {
  const loop = `chdir($ARGV[0]) or die; while (1) { for my $i (0..${PAIRS - 1}) { syscall(316, -100, "d$i", -100, "l$i", 2); } }`;
  return spawn('perl', ['-e', loop, treeRoot], { stdio: 'ignore' });
}

/** What {@link hammer} saw: each answer, and each refusal's code and message. */
interface HammerOutcome {
  seen: unknown[];
  refused: { code: string; message: string }[];
}

/**
 * Runs `op` on every pair's path, ROUNDS times over: what it answered (`seen`) and the refusals
 * (`refused`); any other error, an escape, is thrown.
 */
async function hammer(op: (i: number) => unknown | Promise<unknown>): Promise<HammerOutcome> {
  const seen: HammerOutcome['seen'] = [];
  const refused: HammerOutcome['refused'] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let i = 0; i < PAIRS; i += 1) {
      try {
        seen.push(await op(i));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // A refusal (a link met), or a name the swap made missing for a moment: never an escape.
        if (!(error instanceof BeneathError) && !['ENOENT', 'ENOTDIR', 'ERR_UNDO_FAILED', 'ERR_PATH_OUTSIDE_WORKSPACE', 'EISDIR', 'ELOOP', 'EINVAL', 'ENOTEMPTY'].includes(code ?? '')) throw error;
        refused.push({ code: code ?? (error as Error).name, message: (error as Error).message });
      }
    }
  }
  return { seen, refused };
}

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'warden-beneath-'));
  root = join(base, 'upper');
  host = join(base, 'host');
  mkdirSync(root);
  mkdirSync(join(host, 'sub'), { recursive: true });
  writeFileSync(join(host, 'f'), 'secret');
  writeFileSync(join(host, 'sub', 'g'), 'secret');
  // Large, so a size summed through a link shows.
  writeFileSync(join(host, 'hostonly'), 'secret'.repeat(100_000));
  plant(root);
  racer = startRacer(root);
});

afterEach(async () => {
  if (racer !== undefined && racer.exitCode === null) {
    const ended = new Promise((resolve) => racer!.once('exit', resolve));
    racer.kill('SIGKILL');
    await ended;
  }
  rmSync(base, { recursive: true, force: true });
});

describe('operations below a folder a process swaps links into', () => {
  // Not vacuous: the reads went on while the swaps ran. A one-file read lands between swaps often
  // enough to show the tree's own bytes. captureUpper reads all 16 files of the tree in one call
  // and refuses the whole call when a link stands on the way to any of them or in its place; on a
  // loaded machine every one of its 1,200 calls may meet a swap, so its proof is a read of the tree
  // or such a refusal.
  const readOfTree = ({ seen }: HammerOutcome) => seen.some((v) => String(v).includes('inside'));
  const linkRefused = ({ refused }: HammerOutcome) =>
    refused.some((r) => r.code === 'ERR_LINK_IN_PATH' || (r.code === 'ERR_UNDO_FAILED' && r.message.includes('changed into a link')));
  it.each([
    ['readFileBeneath of a file', (i: number) => readFileBeneath(root, `d${i}/f`).then((b) => b.toString('utf8')), readOfTree],
    ['readFileBeneath two folders down', (i: number) => readFileBeneath(root, `d${i}/sub/g`).then((b) => b.toString('utf8')), readOfTree],
    [
      'captureUpper',
      async () => [...(await captureUpper(root)).files.values()].map((b) => b.toString('utf8')).join(','),
      (outcome: HammerOutcome) => readOfTree(outcome) || linkRefused(outcome),
    ],
  ])('%s never reads the host folder', async (_name, op, raced) => {
    const outcome = await hammer(op);
    expect(outcome.seen.some((v) => String(v).includes('secret'))).toBe(false);
    expect(raced(outcome)).toBe(true);
  });

  it.each([
    ['writeFileAtomicBeneath', (i: number) => writeFileAtomicBeneath(root, `d${i}/f`, Buffer.from('PAYLOAD'))],
    ['writeFileAtomicBeneath two folders down', (i: number) => writeFileAtomicBeneath(root, `d${i}/sub/g`, Buffer.from('PAYLOAD'))],
    ['writeFileAtomicBeneath of a new folder', (i: number) => writeFileAtomicBeneath(root, `d${i}/new/h`, Buffer.from('PAYLOAD'))],
    ['removeBeneath of a file', (i: number) => removeBeneath(root, `d${i}/f`, { recursive: false })],
    ['removeBeneath of a folder', (i: number) => removeBeneath(root, `d${i}/sub`)],
    ['lstatBeneath', (i: number) => lstatBeneath(root, `d${i}/f`)],
    ['removeAddedPaths', () => removeAddedPaths(root, new Set([...Array(PAIRS).keys()].flatMap((i) => [`d${i}`, `l${i}`])))],
  ])('%s never changes the host folder', async (_name, op) => {
    const before = hostState();
    await hammer(op);
    expect(hostState()).toEqual(before);
  });

  it.each([
    ['walkBeneath', () => {
      const paths: string[] = [];
      walkBeneath(root, ({ path }) => void paths.push(path));
      return paths;
    }],
    ['readUpperLayer', () => readUpperLayer(root).files],
    ['listUpper', () => [...listUpper(root)]],
    // Sizes summed: the tree holds 8 + 8 + a few new bytes per pair; a link would add the host's 600 kB.
    ['apparentBytesOf', () => (apparentBytesOf(root) > 100_000 ? ['hostonly'] : ['d0/f'])],
  ])('%s lists nothing of the host folder', async (_name, op) => {
    const seen = (await hammer(op)).seen as string[][];
    // A swap moves the tree's folders between the names d<i> and l<i>; only through a link would
    // the host's own file (`hostonly`, which no folder of the tree holds) be listed.
    expect(seen.flat().filter((p) => p.endsWith('hostonly'))).toEqual([]);
    expect(seen.flat().some((p) => /^d\d+\/f$/.test(p))).toBe(true);
  });

  it("recordUpperChanges and undoOverlayCall restore the tree's file and never the host's", async () => {
    const stateDir = join(base, 'state');
    const taskKey = 'task';
    const { upper } = overlayPathsOf(stateDir, taskKey);
    mkdirSync(upper, { recursive: true });
    // Stop the racer on the first tree; race the overlay's own upper folder instead.
    racer?.kill('SIGKILL');
    plant(upper);
    racer = startRacer(upper);
    const before = hostState();
    await hammer(async (i) => {
      const callId = `call-${i}`;
      const undoDir = overlayUndoDirOf(stateDir, taskKey, callId);
      const captured = { files: new Map([[`d${i}/f`, Buffer.from('inside')]]), deleted: new Set<string>(), stamped: new Map() };
      await recordUpperChanges(upper, undoDir, captured);
      // The record says what d<i>/f held ("inside"), whatever the swap showed; the undo writes it back below upper only.
      const recorded = readdirSync(undoDir).filter((n) => n.endsWith('.json')).map((n) => JSON.parse(readFileSync(join(undoDir, n), 'utf8')));
      expect(recorded.every((r) => r.content === undefined || Buffer.from(r.content, 'base64').toString('utf8') === 'inside')).toBe(true);
      return undoOverlayCall({ stateDir, taskKey, callId });
    });
    expect(hostState()).toEqual(before);
  });
});
