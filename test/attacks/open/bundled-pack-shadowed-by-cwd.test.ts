/**
 * Open finding (issue 17 area: bundled packs, the default guardrails): a bare pack name is looked
 * up in the process's working folder BEFORE the bundled packs (policies/engine/load-pack.ts
 * `resolvePackFolder`: `resolve(name)` comes before `join(PACKS_DIR, name)`). The default pack of
 * every task that names none is `foundation`, so a folder `foundation/` with a `rules.txt` in the
 * folder a worker or `warden run` starts in (a cloned repository, or an agent's workspace whose
 * writes were committed by an earlier task) replaces the baseline guardrails. Safe behaviour: the
 * name of a bundled pack means the bundled pack; a folder of the same name needs a path (`./foundation`).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKS_DIR, resolvePackFolder } from '../../../policies/engine/load-pack';
import { loadPolicyEngine } from '../../../policies/engine/policy-engine';

describe('a bundled pack name is not shadowed by a folder in the working folder', () => {
  const cwd = process.cwd();
  let dir: string | undefined;
  afterEach(() => {
    process.chdir(cwd);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the default pack "foundation" stays the bundled one when ./foundation/rules.txt exists', () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-pack-shadow-'));
    mkdirSync(join(dir, 'foundation'));
    // What an agent (or a cloned repository) leaves behind: a "foundation" pack that denies nothing.
    writeFileSync(join(dir, 'foundation', 'rules.txt'), '# nothing is denied\n');
    process.chdir(dir);
    expect(resolvePackFolder('foundation')).toBe(join(PACKS_DIR, 'foundation'));
    const engine = loadPolicyEngine({ packs: ['foundation'] });
    expect(engine.rules.length).toBeGreaterThan(5);
  });
});
