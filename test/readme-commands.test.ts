/**
 * The README's commands work as written for a newcomer. `npx warden` resolves the checkout's bin
 * only in the checkout (or a project that installed the package); anywhere else npx asks the public
 * registry for a package named `warden`, which is not this project (a newcomer ran
 * `npx warden run counter.yaml` from another folder and got a registry 404; a squatted package
 * could have run instead). So: no client configuration launches `npx warden` (its working folder is
 * the client's choice), and every section that runs `npx warden` on a file the reader writes
 * (not one of the bundled examples) also says how to run it from elsewhere (`bin/warden.js`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROLLBACK_USAGE } from '../cli/commands/rollback';
import { TASK_STATUSES } from '../task/task-run';

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

/** `## ` sections: [heading, body]. */
function sections(markdown: string): [string, string][] {
  return markdown.split(/^## /m).slice(1).map((part) => [part.slice(0, part.indexOf('\n')), part] as [string, string]);
}

describe('README commands', () => {
  it('says where `npx warden` works and what to run elsewhere', () => {
    expect(README).toContain('**Where `warden` commands run.**');
    expect(README).toMatch(/node \/path\/to\/warden\/bin\/warden\.js run/);
  });

  it('no client configuration starts `npx warden` (it would run in the client\'s folder)', () => {
    const launches = [...README.matchAll(/"command":\s*"npx",\s*"args":\s*\[\s*"warden"|command:\s*npx,\s*args:\s*\[\s*"?warden/g)].map((m) => m[0]);
    expect(launches).toEqual([]);
  });

  it('every section running `npx warden` on a file of the reader\'s own also gives the bin path', () => {
    const own = /npx warden (?:run|mcp serve|worker|attest verify|receipt verify)[^\n`]*?\s((?!examples\/)[\w./-]+\.(?:ya?ml|json))\b/g;
    const missing: string[] = [];
    let checked = 0;
    for (const [heading, body] of sections(README)) {
      const files = [...body.matchAll(own)].map((m) => m[1]);
      if (files.length === 0) continue;
      checked += 1;
      if (!body.includes('bin/warden.js')) missing.push(`## ${heading}: npx warden … ${files.join(', ')}`);
    }
    expect(checked).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });

  it('lists every status `warden list --status` takes, and the flags of `warden rollback` (newcomer s22)', () => {
    const list = /npx warden list \[--status ([a-z_|]+)\]/.exec(README)?.[1]?.split('|');
    expect(list?.sort()).toEqual([...TASK_STATUSES].sort());
    const rollback = /npx warden rollback <workflowId>([^#\n]*)/.exec(README)?.[1] ?? '';
    for (const flag of ['--run', '--force']) {
      expect(ROLLBACK_USAGE).toContain(flag);
      expect(rollback).toContain(flag);
    }
  });
});
