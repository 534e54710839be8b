/**
 * Builds a package tree with real webpack, with and without the plugins the workflow bundle adds
 * (worker/workflow-bundle.ts `OnePackageCopy`), and reads what the bundle's entry exports: the
 * tests of that plugin (test/worker/one-package-copy.test.ts, and open findings) compare the two.
 *
 * The plugins are the ones `buildWorkflowBundle` really hands the SDK's bundler: a test file mocks
 * `@temporalio/worker` with {@link temporalWorkerCapturingHook} (inside `vi.mock`) and reads them
 * with {@link bundlePlugins}. This module imports neither, so the mock can load it.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';

type ConfigHook = (config: { plugins?: unknown[] }) => { plugins?: unknown[] };

/** The webpack config hook `buildWorkflowBundle` last handed the (mocked) bundler. */
const captured: { hook?: ConfigHook } = {};

/** `@temporalio/worker` with a `bundleWorkflowCode` that keeps the config hook and bundles nothing. */
export function temporalWorkerCapturingHook<T extends object>(real: T): T {
  return {
    ...real,
    bundleWorkflowCode: async (options: { webpackConfigHook?: ConfigHook }) => {
      captured.hook = options.webpackConfigHook;
      throw new Error('captured the webpack config hook');
    },
  };
}

/** The plugin instances `buildWorkflowBundle` adds to webpack's config. */
export async function bundlePlugins(buildWorkflowBundle: () => Promise<unknown>): Promise<unknown[]> {
  await buildWorkflowBundle().catch(() => undefined);
  if (captured.hook === undefined) throw new Error('buildWorkflowBundle did not call bundleWorkflowCode');
  return captured.hook({ plugins: [] }).plugins ?? [];
}

/** A package.json text: `main` index.js. */
export const pkg = (name: string, version: string, extra: object = {}) => JSON.stringify({ name, version, main: 'index.js', ...extra });

/**
 * Writes `files` (paths relative to a new temporary folder, which `made` records for removal) and
 * builds `entry.js` with webpack twice: without plugins and with `plugins`. Returns each bundle's code.
 */
export async function buildTree(files: Record<string, string>, plugins: unknown[], made: string[]): Promise<{ plain: string; merged: string }> {
  const root = await mkdtemp(join(tmpdir(), 'warden-one-copy-'));
  made.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
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
  return { plain: await build(false), merged: await build(true) };
}

/** What a commonjs2 bundle's entry exports. */
export function exportsOf(code: string): unknown {
  const module = { exports: {} as unknown };
  runInNewContext(code, { module, exports: module.exports });
  return module.exports;
}
