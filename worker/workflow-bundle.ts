/**
 * The workflow bundle, built once per code version.
 *
 * Installed (compiled) Warden ships its bundles pre-built under `build/workflow-bundles/`, made
 * by `npm run build` from the compiled JavaScript, so a worker never runs webpack in a user's
 * `node_modules`. Running from the TypeScript sources (tests, a checkout without a build), a
 * bundle is built on demand and cached under the state folder, keyed by a hash of every source
 * file it can contain and the SDK version; any edit to workflow code produces a new bundle.
 *
 * A bundle with workflow interceptor modules (tracing) is a separate variant, named by the
 * packages and paths of those modules (never by absolute paths, so a pre-built variant is found
 * wherever the package is installed). Bundling failures carry webpack's own messages.
 *
 * Each variant comes in two forms, by `WARDEN_WORKFLOW_STACK_TRACES` (worker/workflow-stack-traces.ts):
 * with its inline source map (stack traces `on`: frames map to source files, and the UI's
 * enhanced stack trace shows the sources' text), and without one (`off`, the default). The SDK's
 * `parseWorkflowCode` decodes the inline map, re-encodes it and compiles the whole bundle on the
 * main thread, and every workflow thread compiles it again and builds a source-map consumer: of
 * the bundle's 5.8 MB (7.8 MB with interceptors), 3.7 MB is the base64 map (2.1 MB of it the
 * sources' text). With stack traces off no frame is ever captured, so nothing reads the map; the
 * bundle then carries an empty map in its place (the SDK refuses a bundle with none). The two
 * forms are named apart in the pre-built folder and in the cache key, so neither is served for
 * the other.
 *
 * Every bundle preloads `PRELOADED_MODULES` (the SHA-256 code only, workflows/shared-modules.ts says why):
 * evaluated once per workflow thread and shared, frozen, by every run on it, instead of once per
 * workflow run.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, sep } from 'node:path';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ConfigError } from '../errors';
import type { WorkflowStackTraces } from './workflow-stack-traces';

/** `.ts` when running from the sources (tsx, vitest), `.js` when running the build. */
const SOURCE_EXT = extname(__filename) === '.ts' ? '.ts' : '.js';
const PROJECT_ROOT = join(__dirname, '..');
/**
 * Folders never part of a workflow bundle. Everything else is fingerprinted, whole: listing the
 * folders a workflow imports missed one (tools/) and let a stale cached bundle run old code.
 */
const NOT_WORKFLOW_SOURCE = new Set(['node_modules', 'test', 'bench', 'dist', 'build', 'examples', 'deploy', 'docs']);

/** Every source file (.ts, or .js in the build) under the project root, outside `NOT_WORKFLOW_SOURCE` and dot-folders, sorted. */
export async function workflowSourceFiles(dir = '', out: string[] = []): Promise<string[]> {
  const entries = (await readdir(join(PROJECT_ROOT, dir), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = dir === '' ? entry.name : join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!(dir === '' && NOT_WORKFLOW_SOURCE.has(entry.name))) await workflowSourceFiles(path, out);
    } else if (entry.isFile() && entry.name.endsWith(SOURCE_EXT) && !entry.name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', `index${SOURCE_EXT}`);
/**
 * Modules evaluated once per workflow thread and shared by every run on it (the SDK's
 * `preloadModules`): stateless libraries only, see workflows/shared-modules.ts (whose `sharedOnce`
 * lets Warden's own schemas be built once per thread all the same, unfrozen).
 */
export const PRELOADED_MODULES: readonly string[] = [join(PROJECT_ROOT, 'workflows', `shared-modules${SOURCE_EXT}`)];
/**
 * `zod` as the bundle resolves it: workflows/lazy-zod.ts, which evaluates zod in a run only when the
 * run reads it (after the first run on a thread, Warden's schemas come from `sharedOnce` and no run
 * does). Exact match: `zod/v4`, what the stand-in loads, is zod itself.
 */
export const LAZY_ZOD_ALIAS: Readonly<Record<string, string>> = { zod$: join(PROJECT_ROOT, 'workflows', `lazy-zod${SOURCE_EXT}`) };
/**
 * SHA-256 of the SDK's `@temporalio/interceptors-opentelemetry/lib/workflow/context-manager.js`
 * (1.24.0) that workflows/otel-context-manager.ts follows: the replacement is used only while the
 * installed file is this one, so an SDK update that changes its context manager is never dropped
 * silently (the bundle then keeps the SDK's own: one storage per run, slower, the same spans).
 */
export const FOLLOWED_OTEL_CONTEXT_MANAGER_SHA256 = '401aa50c98112cedeb51447f882f0f6f8d4bd8517d71b62e02dccc12010417a9';

/**
 * The alias that makes the bundle resolve the SDK's workflow context manager (`sdkFile`, the real
 * path of its `context-manager.js`) to workflows/otel-context-manager.ts, which keeps the active
 * span context in one AsyncLocalStorage per workflow thread instead of one per run (every enabled
 * storage costs every promise of every run on the thread). The SDK's module requires it as
 * `./context-manager`, which the resolver joins to this absolute path first; exact match. Empty
 * when `sdkFile` is not the one followed (FOLLOWED_OTEL_CONTEXT_MANAGER_SHA256).
 */
export function otelContextManagerAlias(sdkFile: string): Record<string, string> {
  const digest = createHash('sha256').update(readFileSync(sdkFile)).digest('hex');
  if (digest !== FOLLOWED_OTEL_CONTEXT_MANAGER_SHA256) return {};
  return { [`${join(dirname(sdkFile), 'context-manager')}$`]: join(PROJECT_ROOT, 'workflows', `otel-context-manager${SOURCE_EXT}`) };
}

/** {@link otelContextManagerAlias} for the installed SDK. */
export const OTEL_CONTEXT_MANAGER_ALIAS: Readonly<Record<string, string>> = otelContextManagerAlias(realpathSync(require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow/context-manager')));
/** Where `npm run build` puts the pre-built bundles (only in the compiled package). */
export const PREBUILT_BUNDLE_DIR = join(PROJECT_ROOT, 'workflow-bundles');

export interface WorkflowBundleOptions {
  /** Workflow interceptor modules to bundle in (e.g. `WORKFLOW_INTERCEPTOR_MODULES` for tracing). */
  workflowInterceptorModules?: readonly string[];
  /**
   * The workers' `WARDEN_WORKFLOW_STACK_TRACES` setting: `on` (default here) keeps the inline
   * source map, `off` gives the bundle without it (see the module comment).
   */
  stackTraces?: WorkflowStackTraces;
}

/** The inline source map comment the SDK's bundler appends (and `parseWorkflowCode` requires). */
const INLINE_MAP_MARK = '//# sourceMappingURL=data:';

/**
 * `bundle` with its inline source map replaced by an empty one (same `file`, no sources, no
 * mappings): the form for workers whose workflow threads capture no stack frames.
 * @throws ConfigError `ERR_CONFIG_INVALID` when `bundle.code` ends in no inline source map.
 */
export function withoutSourceMap(bundle: WorkflowBundleWithSourceMap): WorkflowBundleWithSourceMap {
  const at = bundle.code.lastIndexOf(INLINE_MAP_MARK);
  const base64At = at < 0 ? -1 : bundle.code.indexOf('base64,', at);
  if (base64At < 0) throw new ConfigError('ERR_CONFIG_INVALID', 'the workflow bundle ends in no inline source map (the Temporal SDK\'s bundler appends one)');
  const { file } = JSON.parse(Buffer.from(bundle.code.slice(base64At + 'base64,'.length).trimEnd(), 'base64').toString('utf8')) as { file?: unknown };
  const empty = { version: 3, ...(typeof file === 'string' ? { file } : {}), sources: [], names: [], mappings: '' };
  return { ...bundle, code: `${bundle.code.slice(0, at)}${INLINE_MAP_MARK}application/json;base64,${Buffer.from(JSON.stringify(empty)).toString('base64')}` };
}

/** The package a module file belongs to (nearest package.json with a name) and the file's path inside it. */
async function packageOf(modulePath: string): Promise<{ id: string; path: string }> {
  for (let dir = dirname(modulePath); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name !== undefined) return { id: `${pkg.name}@${pkg.version ?? ''}`, path: relative(dir, modulePath).split(sep).join('/') };
    } catch {
      // no package.json here: look further up
    }
  }
  return { id: '', path: modulePath };
}

/**
 * Name of a bundle variant: `plain` without interceptors, else a hash of each module's package,
 * version and path inside the package (the same wherever the package is installed); with
 * `stackTraces` `off`, followed by `.no-source-map`.
 */
export async function bundleVariantName(interceptorModules: readonly string[], stackTraces: WorkflowStackTraces = 'on'): Promise<string> {
  const suffix = stackTraces === 'off' ? '.no-source-map' : '';
  if (interceptorModules.length === 0) return `plain${suffix}`;
  const hash = createHash('sha256');
  for (const module of interceptorModules) {
    const { id, path } = await packageOf(module);
    hash.update(`${id}:${path}\n`);
  }
  return `with-interceptors-${hash.digest('hex').slice(0, 16)}${suffix}`;
}

async function sourceFingerprint(interceptorModules: readonly string[], stackTraces: WorkflowStackTraces): Promise<string> {
  const hash = createHash('sha256');
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  hash.update(`sdk:${sdk.version}\n`);
  hash.update(`variant:${await bundleVariantName(interceptorModules, stackTraces)}\n`);
  for (const file of await workflowSourceFiles()) {
    hash.update(`${file}\n`);
    hash.update(await readFile(join(PROJECT_ROOT, file)));
  }
  return hash.digest('hex').slice(0, 24);
}

/** What webpack's normal module factory hands `afterResolve` (the fields read and written here). */
interface ResolvedModule {
  createData: { request?: string; userRequest?: string; resource?: string; resourceResolveData?: { descriptionFileRoot?: string; descriptionFileData?: { name?: unknown; version?: unknown } } };
}

/** Whether `root` is an installed package's own folder: `node_modules/<name>` or `node_modules/@scope/<name>`. */
function isPackageRoot(root: string): boolean {
  const parent = dirname(root);
  if (basename(parent) === 'node_modules') return true;
  return basename(parent).startsWith('@') && basename(dirname(parent)) === 'node_modules';
}

/**
 * Where a package installed at `root` finds its dependency `name`: the first `node_modules/<name>`
 * folder from `root` up, as Node's module resolution looks (real path), or undefined for none.
 */
function dependencyHome(root: string, name: string): string | undefined {
  for (let dir = root; ; dir = dirname(dir)) {
    const candidate = basename(dir) === 'node_modules' ? undefined : join(dir, 'node_modules', name);
    if (candidate !== undefined && existsSync(candidate)) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/** The packages a `node_modules` folder holds, by name (`@scope/name` for scoped ones). */
function packagesIn(folder: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(folder)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) for (const inner of readdirSync(join(folder, entry))) names.push(`${entry}/${inner}`);
    else names.push(entry);
  }
  return names;
}

/**
 * The names whose `node_modules` lookup may differ between packages installed at `a` and `b`:
 * every package in a `node_modules` folder on either's way up, below the folder they share.
 * Above it both look in the same folders, so any other name resolves alike from both.
 */
function namesBelowCommonAncestor(a: string, b: string): Set<string> {
  const aParts = a.split(sep);
  const bParts = b.split(sep);
  let shared = 0;
  while (shared < aParts.length && shared < bParts.length && aParts[shared] === bParts[shared]) shared++;
  const common = aParts.slice(0, shared).join(sep) || sep;
  const names = new Set<string>();
  for (const start of [a, b]) {
    for (let dir = start; dir !== common && dirname(dir) !== dir; dir = dirname(dir)) {
      const folder = join(dir, 'node_modules');
      if (basename(dir) !== 'node_modules' && existsSync(folder)) for (const name of packagesIn(folder)) names.add(name);
    }
  }
  return names;
}

/**
 * SHA-256 over what an installed package copy holds: each file's path relative to `root` and its
 * bytes, in sorted order, its own nested `node_modules` left out (those are packages of their own).
 * A symbolic link counts as its target's text.
 */
function packageContentDigest(root: string): string {
  const hash = createHash('sha256');
  const walk = (relativeDir: string): void => {
    const entries = readdirSync(join(root, relativeDir), { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const entry of entries) {
      const path = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path);
      } else if (entry.isSymbolicLink()) {
        hash.update(`link ${path}\0${readlinkSync(join(root, path))}\0`);
      } else if (entry.isFile()) {
        const bytes = readFileSync(join(root, path));
        hash.update(`file ${path}\0${bytes.length}\0`);
        hash.update(bytes);
      }
    }
  };
  walk('');
  return hash.digest('hex');
}

/**
 * A webpack plugin: one copy of each package version in the bundle. npm installs a package again
 * under each dependent whose range the top-level copy does not meet (OpenTelemetry's core,
 * resources and sdk-trace-base each hold @opentelemetry/semantic-conventions 1.28.0 beside the
 * top-level 1.45.0), webpack bundles every copy as modules of its own, and every workflow run
 * evaluates each (issue 17: the three semantic-conventions copies, constant tables only, were
 * 1.8 ms of a run's module evaluation). A file of a later copy resolves to the same file of the
 * first copy seen, so the bundle holds it once, but only where that is the same code: both copies
 * are installed packages' own folders (not a sub-build's package.json of the same name and
 * version, as `@cedar-policy/cedar-wasm` ships), of one `name@version` with the same files (a
 * fork installed from git or a tarball keeps the version string; patch-package patches one copy),
 * and every package either
 * could import is found in the same place from both (a copy nested beside another version of a
 * dependency keeps its own modules). Otherwise both copies stay.
 */
class OnePackageCopy {
  apply(compiler: { hooks: { normalModuleFactory: { tap(name: string, fn: (factory: { hooks: { afterResolve: { tap(name: string, fn: (data: ResolvedModule) => void): void } } }) => void): void } } }): void {
    const firstRoot = new Map<string, string>();
    /** Per later copy's root: the first copy's root it merges into, or null to keep it. */
    const mergeInto = new Map<string, string | null>();
    // Its own name aside (each copy finds itself, and the merge makes them one).
    const resolvesAlike = (first: string, later: string, own: string) =>
      [...namesBelowCommonAncestor(first, later)].every((name) => name === own || dependencyHome(first, name) === dependencyHome(later, name));
    const digests = new Map<string, string>();
    const digestOf = (root: string) => digests.get(root) ?? digests.set(root, packageContentDigest(root)).get(root)!;
    const sameCode = (first: string, later: string, own: string) => digestOf(first) === digestOf(later) && resolvesAlike(first, later, own);
    compiler.hooks.normalModuleFactory.tap('OnePackageCopy', (factory) => {
      factory.hooks.afterResolve.tap('OnePackageCopy', ({ createData }) => {
        const root = createData.resourceResolveData?.descriptionFileRoot;
        const pkg = createData.resourceResolveData?.descriptionFileData;
        if (root === undefined || !root.includes(`${sep}node_modules${sep}`) || !isPackageRoot(root) || typeof pkg?.name !== 'string' || typeof pkg.version !== 'string') return;
        const id = `${pkg.name}@${pkg.version}`;
        const first = firstRoot.get(id);
        if (first === undefined) {
          firstRoot.set(id, root);
          return;
        }
        if (first === root) return;
        let target = mergeInto.get(root);
        if (target === undefined) {
          target = sameCode(first, root, pkg.name) ? first : null;
          mergeInto.set(root, target);
        }
        if (target === null) return;
        const into = target;
        const moved = (path: string | undefined) => (path === undefined ? undefined : path.split(`${root}${sep}`).join(`${into}${sep}`));
        createData.request = moved(createData.request);
        createData.userRequest = moved(createData.userRequest);
        createData.resource = moved(createData.resource);
      });
    });
  }
}

/**
 * Runs webpack (through the SDK's bundler) on the workflow code. The bundler's log is kept, and
 * a failure is reported with its errors: "Webpack finished with errors" alone names no cause.
 * @throws ConfigError `ERR_CONFIG_INVALID` with webpack's messages.
 */
export async function buildWorkflowBundle(interceptorModules: readonly string[] = []): Promise<WorkflowBundleWithSourceMap> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const problems: string[] = [];
  const keep = (message: string) => void problems.push(message);
  const noop = () => undefined;
  try {
    return await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: { log: noop, trace: noop, debug: noop, info: noop, warn: keep, error: keep },
      ...(interceptorModules.length === 0 ? {} : { workflowInterceptorModules: [...interceptorModules] }),
      preloadModules: [...PRELOADED_MODULES],
      webpackConfigHook: (config) => ({
        ...config,
        resolve: { ...config.resolve, alias: { ...(config.resolve?.alias as Record<string, string | false> | undefined), ...LAZY_ZOD_ALIAS, ...OTEL_CONTEXT_MANAGER_ALIAS } },
        plugins: [...(config.plugins ?? []), new OnePackageCopy()],
      }),
    });
  } catch (error) {
    const detail = problems.length > 0 ? `:\n${problems.join('\n')}` : `: ${(error as Error).message}`;
    throw new ConfigError('ERR_CONFIG_INVALID', `building the workflow bundle from ${WORKFLOWS_PATH} failed${detail}`, { cause: error });
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** The pre-built bundle of this variant, when this is the compiled package and it has one. */
async function prebuilt(interceptorModules: readonly string[], stackTraces: WorkflowStackTraces): Promise<WorkflowBundleWithSourceMap | undefined> {
  if (SOURCE_EXT !== '.js') return undefined;
  const file = join(PREBUILT_BUNDLE_DIR, `${await bundleVariantName(interceptorModules, stackTraces)}.json`);
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as WorkflowBundleWithSourceMap;
}

/** One build per variant (interceptor modules, stack traces) per process. */
const memo = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

async function buildOrLoad(cacheDir: string | undefined, interceptorModules: readonly string[], stackTraces: WorkflowStackTraces): Promise<WorkflowBundleWithSourceMap> {
  const shipped = await prebuilt(interceptorModules, stackTraces);
  if (shipped !== undefined) return shipped;
  const fingerprint = cacheDir === undefined ? undefined : await sourceFingerprint(interceptorModules, stackTraces);
  const cacheFile = cacheDir === undefined ? undefined : join(cacheDir, `workflow-bundle-${fingerprint}.json`);
  if (cacheFile !== undefined) {
    try {
      return JSON.parse(await readFile(cacheFile, 'utf8')) as WorkflowBundleWithSourceMap;
    } catch {
      // not cached yet (or unreadable): build below
    }
  }
  // Without the source map: made from the bundle with it (built or cached once for both forms).
  const bundle = stackTraces === 'off' ? withoutSourceMap(await workflowBundle(cacheDir, { workflowInterceptorModules: interceptorModules, stackTraces: 'on' })) : await buildWorkflowBundle(interceptorModules);
  if (cacheFile !== undefined) await writeAtomically(cacheFile, JSON.stringify(bundle));
  return bundle;
}

/**
 * The workflow bundle for this code: the pre-built one of the compiled package, else from the
 * on-disk cache (`cacheDir`), else freshly built. With `workflowInterceptorModules` the bundle
 * includes them (a pre-built bundle is the only way a worker gets workflow interceptors:
 * `Worker.create` ignores `interceptors.workflowModules` then). With `stackTraces` `off` it
 * carries an empty source map (for workers created with workflow stack traces off only).
 */
export function workflowBundle(cacheDir?: string, options: WorkflowBundleOptions = {}): Promise<WorkflowBundleWithSourceMap> {
  const modules = [...(options.workflowInterceptorModules ?? [])];
  const stackTraces = options.stackTraces ?? 'on';
  const key = `${stackTraces}\n${modules.join('\n')}`;
  let bundle = memo.get(key);
  if (bundle === undefined) {
    bundle = buildOrLoad(cacheDir, modules, stackTraces).catch((error: unknown) => {
      memo.delete(key);
      throw error;
    });
    memo.set(key, bundle);
  }
  return bundle;
}

/**
 * Builds every bundle variant a worker can ask for into `outDir` (`npm run build` calls this on
 * the compiled code), each with and without its source map. Returns the files written.
 */
export async function prebuildWorkflowBundles(outDir: string, variants: readonly (readonly string[])[]): Promise<string[]> {
  const written: string[] = [];
  for (const modules of variants) {
    const bundle = await buildWorkflowBundle(modules);
    for (const [stackTraces, form] of [['on', bundle], ['off', withoutSourceMap(bundle)]] as const) {
      const file = join(outDir, `${await bundleVariantName(modules, stackTraces)}.json`);
      await writeAtomically(file, JSON.stringify(form));
      written.push(file);
    }
  }
  return written;
}
