/**
 * The parts of packages no `warden` command uses on its usual path load when first used, not with
 * their package (cli/deferred-modules.ts; issue 17: `warden run`'s start-up): zod's locales. They
 * still work once used, a locale that cannot load says so at its first use, and the Temporal
 * SDK's bundler is not deferred (its stand-in was withdrawn: an ES import dropped its load error).
 *
 * Each case runs in a fresh Node process (through tsx, as bin/warden.js runs the sources) and
 * reads `require.cache`.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

/** Runs `script` (CommonJS, `root` bound to the repository, `loaded(re)` testing require.cache) in a fresh process; its stdout parsed as JSON. */
function inFreshProcess(script: string): unknown {
  const out = execFileSync(
    process.execPath,
    [
      '--require',
      'tsx/cjs',
      '-e',
      `const root = ${JSON.stringify(REPO_ROOT)}; const loaded = (re) => Object.keys(require.cache).some((f) => re.test(f.slice(root.length + 1)));` +
        `(async () => { ${script} })().catch((e) => { console.error(e); process.exit(1); });`,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 5 * 60_000 },
  );
  return JSON.parse(out);
}

const ZOD_LOCALE = String(/^node_modules\/zod\/v4\/locales\/fr\.cjs$/);
const ZOD_LOCALES_INDEX = "require('node:path').join(require('node:path').dirname(require.resolve('zod/v4/core')), '..', 'locales', 'index.cjs')";

describe('modules deferred until used', () => {
  it("loading zod leaves its locales out; they load when used, and zod's own messages are English", () => {
    const seen = inFreshProcess(
      `const deferred = require(root + '/cli/deferred-modules.ts').deferUnusedModules();` +
        `const { z } = require('zod');` +
        `const before = loaded(${ZOD_LOCALE});` +
        `const message = z.object({ n: z.number() }).safeParse({ n: 'x' }).error.issues[0].message;` +
        `const used = { fr: typeof z.locales.fr, esModule: require('zod/v4/core').locales.__esModule, same: require('zod/v4/core').locales.fr === z.locales.fr };` +
        `process.stdout.write(JSON.stringify({ deferred: deferred.length, before, message, used, after: loaded(${ZOD_LOCALE}), again: require(root + '/cli/deferred-modules.ts').deferUnusedModules().length }));`,
    );
    expect(seen).toEqual({
      deferred: 1,
      before: false,
      message: 'Invalid input: expected number, received string',
      used: { fr: 'function', esModule: true, same: true },
      after: true,
      // Loaded now: nothing is deferred a second time.
      again: 0,
    });
  });

  it('a deferred module that cannot load throws its own error at its first use, and again at the next', () => {
    const seen = inFreshProcess(
      `const { deferUnusedModules } = require(root + '/cli/deferred-modules.ts');` +
        `const file = require('node:path').join(require('node:os').tmpdir(), 'warden-deferred-' + process.pid + '.js');` +
        `require('node:fs').writeFileSync(file, "throw new Error('broken module');");` +
        `deferUnusedModules([{ name: 'broken', resolve: () => file }]);` +
        `const mod = require(file); const errors = [];` +
        `for (let i = 0; i < 2; i += 1) { try { void mod.anything; errors.push('no error'); } catch (e) { errors.push(e.message); } }` +
        `require('node:fs').rmSync(file);` +
        `process.stdout.write(JSON.stringify(errors));`,
    );
    expect(seen).toEqual(['broken module', 'broken module']);
  });

  it("the Temporal SDK's bundler is not deferred (an ES import would drop its load error)", () => {
    const seen = inFreshProcess(
      `const { DEFERRED_MODULES } = require(root + '/cli/deferred-modules.ts');` +
        `process.stdout.write(JSON.stringify(DEFERRED_MODULES.map((m) => m.resolve()).filter((f) => f !== undefined && f.includes('@temporalio'))));`,
    );
    expect(seen).toEqual([]);
  });

  it('a module already loaded is left as it is', () => {
    const seen = inFreshProcess(
      `require('zod'); const { deferUnusedModules } = require(root + '/cli/deferred-modules.ts');` +
        `process.stdout.write(JSON.stringify({ deferred: deferUnusedModules(), locales: require.cache[${ZOD_LOCALES_INDEX}].loaded }));`,
    );
    expect(seen).toEqual({ deferred: [], locales: true });
  });
});
