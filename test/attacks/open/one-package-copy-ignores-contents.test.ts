/**
 * Open finding (s15, atk15), low, latent: the workflow bundle's `OnePackageCopy` plugin
 * (worker/workflow-bundle.ts) merges two installed copies of a package when they have the same
 * `name@version` in their package.json and every dependency either could import resolves to the
 * same place. It never compares what the copies hold. Two copies of one `name@version` can hold
 * different code: a dependency installed from a git URL or a tarball keeps the version string of
 * its package.json, and patch-package can patch a nested copy (`a/node_modules/x`) alone. Merged,
 * every importer of the later copy runs the first copy's files, a security patch included or
 * dropped by which copy webpack happens to meet first; a file only the later copy has fails the
 * bundle.
 *
 * Reproduce: `npx vitest run --config vitest.open-findings.config.mts test/attacks/open/one-package-copy-ignores-contents.test.ts`.
 * Without the plugin, `b` gets its own copy; with it, `b` gets `a`'s.
 *
 * Suggested fix: merge only copies whose contents are known to be equal: the `integrity` npm
 * records per install path in `node_modules/.package-lock.json` (equal and present for both), or
 * a digest of the files of the copy (the bundle already hashes its sources for its fingerprint);
 * keep both copies otherwise.
 *
 * Real parts: the plugin `buildWorkflowBundle` adds, a real webpack build of a real package tree.
 */
import { rm } from 'node:fs/promises';
import { afterAll, expect, it, vi } from 'vitest';
import { buildWorkflowBundle } from '../../../worker/workflow-bundle';
import { buildTree, bundlePlugins, exportsOf, pkg } from '../../support/one-package-copy-kit';

vi.mock('@temporalio/worker', async (importOriginal) => (await import('../../support/one-package-copy-kit.js')).temporalWorkerCapturingHook(await importOriginal<object>()));

const ROWS: { name: string; files: Record<string, string>; expected: unknown }[] = [
  {
    // `b` installed its `shared@1.0.0` from a fork (a git URL or tarball keeps the version string),
    // or a nested copy was patched with patch-package: same name and version, other code.
    name: 'same name and version, different code',
    files: {
      'entry.js': "module.exports = { a: require('a'), b: require('b') };",
      'node_modules/a/package.json': pkg('a', '1.0.0'),
      'node_modules/a/index.js': "module.exports = require('shared');",
      'node_modules/a/node_modules/shared/package.json': pkg('shared', '1.0.0'),
      'node_modules/a/node_modules/shared/index.js': "module.exports = 'registry shared: accepts any signature';",
      'node_modules/b/package.json': pkg('b', '1.0.0'),
      'node_modules/b/index.js': "module.exports = require('shared');",
      'node_modules/b/node_modules/shared/package.json': pkg('shared', '1.0.0'),
      'node_modules/b/node_modules/shared/index.js': "module.exports = 'patched shared: checks the signature';",
    },
    expected: { a: 'registry shared: accepts any signature', b: 'patched shared: checks the signature' },
  },
];

const made: string[] = [];
afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

it.each(ROWS)("the bundle plugin keeps each copy's own code: $name", async ({ files, expected }) => {
  const plugins = await bundlePlugins(buildWorkflowBundle);
  expect(plugins.length).toBe(1);
  const { plain, merged } = await buildTree(files, plugins, made);
  // without the plugin webpack bundles what npm's tree gives each importer (the row is sound)
  expect(exportsOf(plain)).toEqual(expected);
  // with it, each importer must still get its own copy's code
  expect(exportsOf(merged)).toEqual(expected);
}, 300_000);
