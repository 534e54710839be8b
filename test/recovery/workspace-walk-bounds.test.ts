/**
 * Every walk of a workspace overlay (the quota's size sum, the upper layer's listing that undo,
 * commits and the data plane's copy read, and `walkFiles`) has the same bounds: a tree deeper than
 * WORKSPACE_DEPTH_MAX folders or longer than WORKSPACE_PATH_MAX_BYTES (a program can nest folders
 * past PATH_MAX with relative paths) fails ERR_WORKSPACE_QUOTA naming the workspace-relative path,
 * never a raw ENAMETOOLONG naming the state folder, and is never skipped.
 * Attack: test/attacks/workspace-files-past-path-max.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WardenError } from '../../errors';
import { readUpperLayer, WORKSPACE_DEPTH_MAX, WORKSPACE_PATH_MAX_BYTES } from '../../recovery/overlay-layer';
import { apparentBytesOf } from '../../recovery/overlay-volume';
import { walkFiles } from '../../recovery/walk-files';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

const made: string[] = [];
afterAll(() => {
  // GNU rm walks by directory descriptors: it removes trees past PATH_MAX.
  for (const folder of made) execFileSync('rm', ['-rf', folder]);
});

/** A folder chain of `levels` folders named `name`, made with relative paths, a 1 MiB sparse file at the bottom. */
function chain(levels: number, name: string): string {
  const root = makeTempDir('walk-bounds');
  made.push(root);
  execFileSync('sh', ['-c', `i=0; while [ $i -lt ${levels} ]; do mkdir ${name} && cd -P ${name} || exit 3; i=$((i+1)); done; truncate -s 1M bottom`], { cwd: root });
  return root;
}

const walks: { name: string; walk: (root: string) => unknown }[] = [
  { name: 'apparentBytesOf', walk: apparentBytesOf },
  { name: 'readUpperLayer', walk: readUpperLayer },
  { name: 'walkFiles', walk: walkFiles },
];

const refused = [
  { tree: `${WORKSPACE_DEPTH_MAX + 1} folders of one letter (too deep)`, levels: WORKSPACE_DEPTH_MAX + 1, name: 'a' },
  { tree: '9 folders of 250 letters (too long)', levels: 9, name: 'b'.repeat(250) },
  { tree: '20 folders of 250 letters (past PATH_MAX with the folder in front)', levels: 20, name: 'c'.repeat(250) },
];

describe('walks of a workspace overlay', () => {
  for (const { name, walk } of walks) {
    for (const { tree, levels, name: folder } of refused) {
      it(`${name} refuses ${tree} with ERR_WORKSPACE_QUOTA naming no host folder`, async () => {
        const root = chain(levels, folder);
        let thrown: unknown;
        try {
          await walk(root);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(WardenError);
        expect((thrown as WardenError).code).toBe('ERR_WORKSPACE_QUOTA');
        expect((thrown as WardenError).message).toContain(`${WORKSPACE_PATH_MAX_BYTES} bytes`);
        expect((thrown as WardenError).message).not.toContain(root);
        expect(JSON.stringify((thrown as WardenError).details)).not.toContain(root);
      });
    }

    it(`${name} reads a tree of exactly ${WORKSPACE_DEPTH_MAX} folders`, async () => {
      const root = chain(WORKSPACE_DEPTH_MAX, 'd');
      const result = await walk(root);
      if (name === 'apparentBytesOf') expect(result).toBe(1024 * 1024);
      else if (name === 'walkFiles') expect(result).toEqual([`${Array.from({ length: WORKSPACE_DEPTH_MAX }, () => 'd').join('/')}/bottom`]);
      else expect((result as { files: string[] }).files).toEqual([`${Array.from({ length: WORKSPACE_DEPTH_MAX }, () => 'd').join('/')}/bottom`]);
    });
  }

  it('counts a missing folder as empty', async () => {
    const missing = path.join(makeTempDir('walk-bounds-missing'), 'upper');
    expect(apparentBytesOf(missing)).toBe(0);
    expect(readUpperLayer(missing).files).toEqual([]);
    expect(await walkFiles(missing)).toEqual([]);
    expect(fs.existsSync(missing)).toBe(false);
  });
});
