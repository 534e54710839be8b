/**
 * Finding (issue 17, the workflow bundle's `OnePackageCopy` plugin, worker/workflow-bundle.ts):
 * the plugin takes "same `name@version` in the nearest package.json" to mean "same code", and
 * sends every file of a later copy to the same file of the first copy seen. Two ways that is not
 * so, each a row here, each on a real webpack build with the plugin the bundle uses:
 *
 * - `nested dependency`: npm installs a package again under each dependent the top-level copy does
 *   not fit, and each copy resolves its own dependencies from where it sits. `a` and `b` both hold
 *   `shared@1.0.0`; under `a` it sits beside `a`'s `dep@2.0.0`, under `b` it reaches the top-level
 *   `dep@1.0.0`. With the plugin, `b`'s copy of `shared` is `a`'s, which loads `dep@2.0.0`: code
 *   `b` was installed against (npm's tree, `package-lock.json`) is swapped for another version.
 * - `nested description file`: a package that ships sub-builds each with a package.json of the
 *   package's own name and version (`@cedar-policy/cedar-wasm@4.13.0` in this install: `web/`,
 *   `esm/` and `nodejs/`, each a different build of the same names). Each is a "copy" to the
 *   plugin, so a file of `nodejs/` is replaced by the same-named file of whichever sub-build
 *   webpack resolved first: the web build in a Node worker.
 *
 * Neither case is in today's bundle (its duplicates, semantic-conventions 1.28.0 and protobufjs
 * 8.8.1, resolve their dependencies alike), so nothing runs wrong yet; the plugin would do it
 * silently on the next install whose tree has one. Severity: low (latent; an install's tree, not
 * a task's input, decides it). Suggested fix: merge two copies only when each is a package root
 * (its folder's parent is `node_modules` or an `@scope` under it) and every dependency the copy
 * imports resolves to the same place from both (or key copies by name, version and the resolved
 * roots of their dependencies); otherwise keep both.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, expect, it, vi } from 'vitest';
import { buildWorkflowBundle } from '../../../worker/workflow-bundle';

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

/** Each row: a package tree, an entry, and what the entry exports when every module is the one npm's tree gives it. */
const ROWS: { name: string; files: Record<string, string>; expected: unknown }[] = [
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
];

const made: string[] = [];
afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

it.each(ROWS)('the bundle plugin keeps each module the package tree resolves: $name', async ({ files, expected }) => {
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
  expect(exportsOf(await build(true))).toEqual(expected);
}, 300_000);
