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
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, expect, it, vi } from 'vitest';
import { buildWorkflowBundle } from '../../worker/workflow-bundle';

/** The webpack config hook `buildWorkflowBundle` hands the SDK's bundler (it adds the plugin). */
const captured = vi.hoisted(() => ({ hook: undefined as undefined | ((config: { plugins?: unknown[] }) => { plugins?: unknown[] }) }));

vi.mock('@temporalio/worker', async (importOriginal) => {
  const real = await importOriginal<typeof import('@temporalio/worker')>();
  return {
    ...real,
    bundleWorkflowCode: async (options: { webpackConfigHook?: (config: { plugins?: unknown[] }) => { plugins?: unknown[] } }) => {
      captured.hook = options.webpackConfigHook;
      throw new Error('captured the webpack config hook');
    },
  };
});

/** The plugin instance(s) the real `buildWorkflowBundle` adds to webpack's config. */
async function bundlePlugins(): Promise<unknown[]> {
  await buildWorkflowBundle().catch(() => undefined);
  if (captured.hook === undefined) throw new Error('buildWorkflowBundle did not call bundleWorkflowCode');
  return captured.hook({ plugins: [] }).plugins ?? [];
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const pkg = (name: string, version: string, extra: object = {}) => JSON.stringify({ name, version, main: 'index.js', ...extra });

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
  const plugins = await bundlePlugins();
  expect(plugins.length).toBe(1);
  const root = await mkdtemp(join(tmpdir(), 'warden-one-copy-'));
  made.push(root);
  await writeFiles(root, files);
  const { default: webpack } = (await import('webpack')) as unknown as { default: typeof import('webpack') };
  const build = (withPlugin: boolean) =>
    new Promise<string>((resolve, reject) => {
      const compiler = webpack({
        mode: 'none',
        target: 'node',
        context: root,
        entry: join(root, 'entry.js'),
        output: { path: join(root, withPlugin ? 'out-plugin' : 'out-plain'), filename: 'bundle.js', library: { type: 'commonjs2' } },
        plugins: withPlugin ? (plugins as never[]) : [],
      });
      compiler.run((error, stats) => {
        if (error ?? stats?.hasErrors()) reject(error ?? new Error(stats?.toString('errors-only')));
        else compiler.outputFileSystem!.readFile(join(root, withPlugin ? 'out-plugin' : 'out-plain', 'bundle.js'), (e, data) => (e ? reject(e) : resolve(String(data))));
      });
    });
  const exportsOf = (code: string) => {
    const module = { exports: {} as unknown };
    runInNewContext(code, { module, exports: module.exports });
    return module.exports;
  };
  // without the plugin webpack bundles what npm's tree gives each importer (the row is sound)
  expect(exportsOf(await build(false))).toEqual(expected);
  // with it, each importer must still get the same code
  const merged = await build(true);
  expect(exportsOf(merged)).toEqual(expected);
  if (copies !== undefined) expect(merged.split(MARK).length - 1).toBe(copies);
}, 300_000);
