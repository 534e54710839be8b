/**
 * The parts of packages no `warden` command uses on its usual path load when first used, not with
 * their package (cli/deferred-modules.ts; issue 17: `warden run`'s start-up): the Temporal SDK's
 * workflow bundler (memfs, unionfs, webpack) and zod's locales. Each still works once used, and
 * the worker's connection (which loads the SDK) does not load the bundler either.
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

const BUNDLER_PARTS = String(/^node_modules\/(memfs|unionfs|webpack)\//);
const ZOD_LOCALE = String(/^node_modules\/zod\/v4\/locales\/fr\.cjs$/);

describe('modules deferred until used', () => {
  it('loading the Temporal worker SDK and zod leaves the bundler and the locales out, and each loads when used', () => {
    const seen = inFreshProcess(
      `const deferred = require(root + '/cli/deferred-modules.ts').deferUnusedModules();` +
        `const sdk = require('@temporalio/worker'); const { z } = require('zod');` +
        `const before = { bundler: loaded(${BUNDLER_PARTS}), locale: loaded(${ZOD_LOCALE}) };` +
        // zod still works, in English, with its locales table not loaded.
        `const message = z.object({ n: z.number() }).safeParse({ n: 'x' }).error.issues[0].message;` +
        `const used = { bundle: typeof sdk.bundleWorkflowCode, fr: typeof z.locales.fr, esModule: require('zod/v4/core').locales.__esModule };` +
        `process.stdout.write(JSON.stringify({ deferred: deferred.length, before, message, used, after: { bundler: loaded(${BUNDLER_PARTS}), locale: loaded(${ZOD_LOCALE}) }, again: require(root + '/cli/deferred-modules.ts').deferUnusedModules().length }));`,
    );
    expect(seen).toEqual({
      deferred: 2,
      before: { bundler: false, locale: false },
      message: 'Invalid input: expected number, received string',
      used: { bundle: 'function', fr: 'function', esModule: true },
      after: { bundler: true, locale: true },
      // Both are loaded now: nothing is deferred a second time.
      again: 0,
    });
  });

  it("the worker's connection loads the SDK without its bundler", () => {
    const seen = inFreshProcess(
      `require(root + '/cli/deferred-modules.ts').deferUnusedModules();` +
        `const { loadTemporalConfig } = require(root + '/temporal/temporal-config.ts');` +
        `const { connectWorkerConnection } = require(root + '/temporal/connect.ts');` +
        // Nothing listens on port 1: the connection fails, after the SDK loaded.
        `const code = await connectWorkerConnection(loadTemporalConfig({ TEMPORAL_ADDRESS: '127.0.0.1:1' })).then(() => 'connected', (e) => e.code);` +
        `process.stdout.write(JSON.stringify({ code, sdk: loaded(/^node_modules\\/@temporalio\\/worker\\/lib\\/worker\\.js$/), bundler: loaded(${BUNDLER_PARTS}) }));`,
    );
    expect(seen).toEqual({ code: 'ERR_TEMPORAL_UNREACHABLE', sdk: true, bundler: false });
  });

  it('a module already loaded is left as it is', () => {
    const seen = inFreshProcess(
      `require('zod'); const { deferUnusedModules } = require(root + '/cli/deferred-modules.ts');` +
        `process.stdout.write(JSON.stringify({ deferred: deferUnusedModules().map((f) => f.includes('/zod/')), locale: loaded(${ZOD_LOCALE}) }));`,
    );
    expect(seen).toEqual({ deferred: [false], locale: true });
  });
});
