/**
 * The workflow bundle's `OnePackageCopy` plugin (worker/workflow-bundle.ts) bundles one copy of a
 * package version npm installed more than once, but only where every importer still gets the code
 * npm's tree gives it. Was an open finding (issue 17): the plugin took "same `name@version` in the
 * nearest package.json" for "same code" and sent every file of a later copy to the first copy's:
 *
 * - `nested dependency`: `a` and `b` both hold `shared@1.0.0`; under `a` it sits beside `a`'s
 *   `dep@2.0.0`, under `b` it reaches the top-level `dep@1.0.0`. Merged, `b`'s `shared` loaded
 *   `dep@2.0.0`. Now two copies merge only when every package either could find on its way up,
 *   below the folder they share, is found in the same place from both.
 * - `nested description file`: a package shipping sub-builds each with a package.json of its own
 *   name and version (`@cedar-policy/cedar-wasm@4.13.0`: `web/`, `esm/`, `nodejs/`) had
 *   `nodejs/glue.js` replaced by `web/glue.js`. Now only installed packages' own folders
 *   (`node_modules/<name>`, `node_modules/@scope/<name>`) are copies.
 *
 * Control rows: copies that resolve alike are still bundled once, and so are this install's
 * duplicates in the real workflow bundle (three copies of @opentelemetry/semantic-conventions 1.28.0).
 * Each row on a real webpack build with the plugin `buildWorkflowBundle` adds.
 */
import { rm } from 'node:fs/promises';
import { afterAll, expect, it, vi } from 'vitest';
import { buildWorkflowBundle } from '../../worker/workflow-bundle';
import { buildTree, bundlePlugins, exportsOf, pkg } from '../support/one-package-copy-kit';

vi.mock('@temporalio/worker', async (importOriginal) => (await import('../support/one-package-copy-kit.js')).temporalWorkerCapturingHook(await importOriginal<object>()));

/**
 * Each row: a package tree, an entry, what the entry exports when every module is the one npm's
 * tree gives it, and how many times the bundle with the plugin holds `MARK` (the duplicated code).
 */
const MARK = 'shared code, once per copy';
const ROWS: { name: string; files: Record<string, string>; expected: unknown; copies?: number }[] = [
  {
    name: 'nested dependency',
    files: {
      'entry.js': "module.exports = { a: require('a'), b: require('b') };",
      'node_modules/dep/package.json': pkg('dep', '1.0.0'),
      'node_modules/dep/index.js': "module.exports = 'dep@1.0.0';",
      'node_modules/a/package.json': pkg('a', '1.0.0'),
      'node_modules/a/index.js': "module.exports = require('shared');",
      'node_modules/a/node_modules/dep/package.json': pkg('dep', '2.0.0'),
      'node_modules/a/node_modules/dep/index.js': "module.exports = 'dep@2.0.0';",
      'node_modules/a/node_modules/shared/package.json': pkg('shared', '1.0.0'),
      'node_modules/a/node_modules/shared/index.js': "module.exports = 'shared uses ' + require('dep');",
      'node_modules/b/package.json': pkg('b', '1.0.0'),
      'node_modules/b/index.js': "module.exports = require('shared');",
      'node_modules/b/node_modules/shared/package.json': pkg('shared', '1.0.0'),
      'node_modules/b/node_modules/shared/index.js': "module.exports = 'shared uses ' + require('dep');",
    },
    expected: { a: 'shared uses dep@2.0.0', b: 'shared uses dep@1.0.0' },
  },
  {
    name: 'nested description file',
    files: {
      'entry.js': "module.exports = { web: require('wasmy/web/glue.js'), node: require('wasmy/nodejs/glue.js') };",
      'node_modules/wasmy/package.json': pkg('wasmy', '4.13.0'),
      'node_modules/wasmy/web/package.json': pkg('wasmy', '4.13.0', { type: 'commonjs' }),
      'node_modules/wasmy/web/glue.js': "module.exports = 'web build';",
      'node_modules/wasmy/nodejs/package.json': pkg('wasmy', '4.13.0', { type: 'commonjs' }),
      'node_modules/wasmy/nodejs/glue.js': "module.exports = 'nodejs build';",
    },
    expected: { web: 'web build', node: 'nodejs build' },
  },
  {
    name: 'copies that resolve alike (control: merged)',
    files: {
      'entry.js': "module.exports = { a: require('a'), b: require('b') };",
      'node_modules/dep/package.json': pkg('dep', '1.0.0'),
      'node_modules/dep/index.js': "module.exports = 'dep@1.0.0';",
      'node_modules/a/package.json': pkg('a', '1.0.0'),
      'node_modules/a/index.js': "module.exports = require('@s/shared');",
      'node_modules/a/node_modules/@s/shared/package.json': pkg('@s/shared', '1.0.0'),
      'node_modules/a/node_modules/@s/shared/index.js': `/* ${MARK} */ module.exports = 'shared uses ' + require('dep');`,
      'node_modules/b/package.json': pkg('b', '1.0.0'),
      'node_modules/b/index.js': "module.exports = require('@s/shared');",
      'node_modules/b/node_modules/@s/shared/package.json': pkg('@s/shared', '1.0.0'),
      'node_modules/b/node_modules/@s/shared/index.js': `/* ${MARK} */ module.exports = 'shared uses ' + require('dep');`,
    },
    expected: { a: 'shared uses dep@1.0.0', b: 'shared uses dep@1.0.0' },
    copies: 1,
  },
];

const made: string[] = [];
afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

it.each(ROWS)('the bundle plugin keeps each module the package tree resolves: $name', async ({ files, expected, copies }) => {
  const plugins = await bundlePlugins(buildWorkflowBundle);
  expect(plugins.length).toBe(1);
  const { plain, merged } = await buildTree(files, plugins, made);
  // without the plugin webpack bundles what npm's tree gives each importer (the row is sound)
  expect(exportsOf(plain)).toEqual(expected);
  // with it, each importer must still get the same code
  expect(exportsOf(merged)).toEqual(expected);
  if (copies !== undefined) expect(merged.split(MARK).length - 1).toBe(copies);
}, 300_000);
