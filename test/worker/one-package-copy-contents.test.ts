/**
 * The workflow bundle's `OnePackageCopy` plugin merges two installed copies of one `name@version`
 * only when they hold the same files (worker/workflow-bundle.ts `packageContentDigest`). Was an
 * open finding (s15, atk15, low, latent, `one-package-copy-ignores-contents.test.ts`): it compared
 * only name, version and where their imports resolve, so a fork installed from git or a tarball
 * (which keeps the version string) or a nested copy patched by patch-package ran the other copy's
 * code. The rows where copies must merge are in one-package-copy.test.ts and
 * one-package-copy-real-bundle.test.ts.
 *
 * Real parts: the plugin `buildWorkflowBundle` adds, a real webpack build of a real package tree.
 */
import { rm } from 'node:fs/promises';
import { afterAll, expect, it, vi } from 'vitest';
import { buildWorkflowBundle } from '../../worker/workflow-bundle';
import { buildTree, bundlePlugins, exportsOf, pkg } from '../support/one-package-copy-kit';

vi.mock('@temporalio/worker', async (importOriginal) => (await import('../support/one-package-copy-kit.js')).temporalWorkerCapturingHook(await importOriginal<object>()));

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
