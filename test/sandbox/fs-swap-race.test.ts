/**
 * A folder on the way to a file swapped for a symbolic link by another process while a call runs
 * must not make the call escape the workspace (O_NOFOLLOW alone covers only the last component).
 * The swap is made at the exact moment between resolving and opening (a test seam), for every
 * operation, direct and through an overlay; then a real process races swaps against many reads.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CapabilityError } from '../../errors';
import { createFsCapability, type FsCapability, type FsGrant } from '../../sandbox/capabilities/fs-capability';
import { makeTempDir } from './sandbox-test-kit';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

let workspace: string;
let outside: string;
let upper: string;

beforeEach(() => {
  workspace = makeTempDir('swap-ws');
  outside = makeTempDir('swap-outside');
  upper = makeTempDir('swap-upper');
  dirs.push(workspace, outside, upper);
  fs.mkdirSync(path.join(workspace, 'mid', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(workspace, 'mid', 'secret.txt'), 'inside');
  fs.writeFileSync(path.join(workspace, 'mid', 'deeper', 'secret.txt'), 'inside');
  fs.mkdirSync(path.join(outside, 'deeper'));
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'OUTSIDE');
  fs.writeFileSync(path.join(outside, 'deeper', 'secret.txt'), 'OUTSIDE');
  fs.writeFileSync(path.join(outside, 'victim.txt'), 'keep me');
});

/** Replaces `<workspace>/mid` with a link to the outside folder. */
function swapMidForLink(): void {
  fs.renameSync(path.join(workspace, 'mid'), path.join(workspace, 'mid-was'));
  fs.symlinkSync(outside, path.join(workspace, 'mid'));
}

function capabilityWithSwap(overlay: boolean): FsCapability {
  const grant: FsGrant = { root: workspace, read: true, write: true, list: true, ...(overlay ? { overlay: upper } : {}) };
  let swapped = false;
  return createFsCapability(grant, {
    afterResolve() {
      if (swapped) return;
      swapped = true;
      swapMidForLink();
    },
  });
}

function codeOf(operation: () => unknown): string {
  try {
    const result = operation();
    return `returned ${JSON.stringify(result)}`;
  } catch (error) {
    if (error instanceof CapabilityError) return error.code;
    throw error;
  }
}

const operations: { name: string; run: (fsCap: FsCapability) => unknown }[] = [
  { name: 'read mid/secret.txt', run: (c) => c.read('mid/secret.txt') },
  { name: 'read mid/deeper/secret.txt', run: (c) => c.read('mid/deeper/secret.txt') },
  { name: 'write mid/victim.txt', run: (c) => c.write('mid/victim.txt', 'overwritten') },
  { name: 'write mid/deeper/planted.txt', run: (c) => c.write('mid/deeper/planted.txt', 'planted') },
  { name: 'list mid', run: (c) => c.list('mid') },
  { name: 'list mid/deeper', run: (c) => c.list('mid/deeper') },
];

describe('a middle folder swapped for a link between resolving and opening', () => {
  for (const overlay of [false, true]) {
    it.each(operations)(`${overlay ? 'overlay' : 'direct'}: $name is refused and touches nothing outside`, ({ run }) => {
      const code = codeOf(() => run(capabilityWithSwap(overlay)));
      expect(code).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
      expect(fs.readFileSync(path.join(outside, 'victim.txt'), 'utf8')).toBe('keep me');
      expect(fs.existsSync(path.join(outside, 'deeper', 'planted.txt'))).toBe(false);
      expect(fs.readdirSync(outside).sort()).toEqual(['deeper', 'secret.txt', 'victim.txt']);
    });
  }

  it('without a swap the same calls work (the refusal is about the swap)', () => {
    const fsCap = createFsCapability({ root: workspace, read: true, write: true, list: true });
    expect(fsCap.read('mid/deeper/secret.txt')).toBe('inside');
    expect(fsCap.write('mid/deeper/new.txt', 'x')).toEqual({ path: 'mid/deeper/new.txt', bytes: 1 });
    expect(fsCap.list('mid').map((e) => e.name)).toEqual(['deeper', 'secret.txt']);
  });
});

describe('another process swapping folders while reads run', () => {
  it('no read ever returns a byte from outside the workspace', async () => {
    // The racer flips <workspace>/race between a real folder and a link to the outside, forever.
    fs.mkdirSync(path.join(workspace, 'race'));
    fs.writeFileSync(path.join(workspace, 'race', 'secret.txt'), 'inside');
    const script = `
      const fs = require('node:fs');
      const [ws, out] = process.argv.slice(1);
      const real = ws + '/race-real', link = ws + '/race-link', race = ws + '/race';
      fs.renameSync(race, real);
      fs.symlinkSync(out, link);
      process.stdout.write('ready\\n');
      for (;;) {
        fs.renameSync(link, race);
        fs.renameSync(race, link);
        fs.renameSync(real, race);
        fs.renameSync(race, real);
      }`;
    const racer = spawn(process.execPath, ['-e', script, workspace, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(racer.stdout, 'data');
      const fsCap = createFsCapability({ root: workspace, read: true, write: false, list: true });
      const seen = new Map<string, number>();
      // At least 3000 reads, and on until the race was really seen (the folder both as itself and not).
      for (let i = 0; i < 3000 || (seen.size < 2 && i < 500_000); i++) {
        let outcome: string;
        try {
          outcome = fsCap.read('race/secret.txt');
        } catch (error) {
          outcome = error instanceof CapabilityError ? error.code : String(error);
        }
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
      }
      expect(seen.get('OUTSIDE') ?? 0, JSON.stringify([...seen])).toBe(0);
      // Sanity: the racer really raced (the folder was seen both as itself and as the link).
      expect(seen.size, JSON.stringify([...seen])).toBeGreaterThan(1);
    } finally {
      racer.kill('SIGKILL');
    }
  });
});
