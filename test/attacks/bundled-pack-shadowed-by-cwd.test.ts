/**
 * Attack (issue 17 area: bundled packs, the default guardrails): a bare pack name was looked up
 * beside the task file and in the process's working folder BEFORE the bundled packs
 * (policies/engine/load-pack.ts `resolvePackFolder`). The default pack of every task that names
 * none is `foundation`, so a folder `foundation/` with a `rules.txt` where a worker or `warden run`
 * starts (a cloned repository, or an agent's workspace whose writes an earlier task committed)
 * replaced the baseline guardrails with whatever it held. Now the name of a bundled pack always
 * means the bundled pack; a folder of that name is named by a path (`./foundation`).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundledPackNames } from '../../policies/engine/prevalidated-policies';
import { PACKS_DIR, readPacks, resolvePackFolder } from '../../policies/engine/load-pack';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { resolveTaskPaths } from '../../task/load-task-file';
import { TaskSchema } from '../../task/task-schema';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

describe('a bundled pack name is not shadowed by a folder of the same name', () => {
  const cwd = process.cwd();
  let dir: string | undefined;
  afterEach(() => {
    process.chdir(cwd);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A folder holding a pack named `name` that denies nothing (what an agent or a cloned repository leaves behind). */
  function decoy(name: string): string {
    dir = mkdtempSync(join(tmpdir(), 'warden-pack-shadow-'));
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'rules.txt'), '# nothing is denied\n');
    return dir;
  }

  const bundled = bundledPackNames(PACKS_DIR);
  it('the bundled packs are found (foundation, the default, among them)', () => {
    expect(bundled).toContain('foundation');
  });

  it.each(bundled)('"%s" in the working folder does not replace the bundled pack', (name) => {
    process.chdir(decoy(name));
    expect(resolvePackFolder(name)).toBe(join(PACKS_DIR, name));
    expect(loadPolicyEngine({ packs: [name] }).rules.length).toBeGreaterThan(0);
  });

  it.each(bundled)('"%s" beside the task file does not replace the bundled pack', (name) => {
    const at = decoy(name);
    expect(resolvePackFolder(name, at)).toBe(join(PACKS_DIR, name));
  });

  it('a user pack extending "foundation" gets the bundled one, not a sibling folder named so', () => {
    const at = decoy('foundation');
    mkdirSync(join(at, 'mine'));
    writeFileSync(join(at, 'mine', 'rules.txt'), '@extends foundation\ndeny tool rm\n');
    const sentences = readPacks([join(at, 'mine')]);
    expect(sentences.map((s) => s.sentence)).toContain('deny destructive tools');
  });

  it('a folder of that name is still reachable by a path', () => {
    const at = decoy('foundation');
    process.chdir(at);
    expect(resolvePackFolder('./foundation')).toBe(join(at, 'foundation'));
    expect(resolvePackFolder('foundation/')).not.toBe(join(PACKS_DIR, 'foundation'));
  });

  it('a name no bundled pack has is still looked up beside the task file and in the working folder', () => {
    const at = decoy('mypack');
    expect(resolvePackFolder('mypack', at)).toBe(join(at, 'mypack'));
    process.chdir(at);
    expect(resolvePackFolder('mypack')).toBe(join(at, 'mypack'));
  });

  it('a bare name no bundled pack has is pinned to the folder found when the task file is read, so a worker in another working folder loads the same pack', () => {
    const at = decoy('mypack');
    // The worker's working folder holds its own "mypack" (another pack of that name).
    const elsewhere = mkdtempSync(join(tmpdir(), 'warden-pack-worker-cwd-'));
    mkdirSync(join(elsewhere, 'mypack'));
    writeFileSync(join(elsewhere, 'mypack', 'rules.txt'), '# the worker folder\'s pack\n');
    try {
      // The README's first task, with packs of its own and its sub-agent's.
      const hello = parseYaml(readFileSync(join(__dirname, '../../examples/hello.yaml'), 'utf8')) as Record<string, any>;
      const withPacks = (packs: string[]) => TaskSchema.parse({ ...hello, policyPacks: packs, subagents: { reviewer: { ...hello.subagents.reviewer, policyPacks: ['mypack'] } } });
      const task = resolveTaskPaths(withPacks(['mypack', 'foundation']), at);
      expect(task.policyPacks).toEqual([join(at, 'mypack'), 'foundation']);
      expect(task.subagents.reviewer?.policyPacks).toEqual([join(at, 'mypack')]);
      process.chdir(elsewhere);
      expect(resolvePackFolder(task.policyPacks![0]!)).toBe(join(at, 'mypack'));
      // A name found nowhere stays as written: the task check names where it looked.
      expect(resolveTaskPaths(withPacks(['nosuchpack']), at).policyPacks).toEqual(['nosuchpack']);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
