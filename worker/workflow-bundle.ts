/**
 * The workflow bundle, built once per code version. Bundling takes seconds on a small machine, so
 * a bundle is cached under the state folder keyed by a hash of every source file it can contain
 * and the SDK version; any edit to workflow code produces a new bundle. A bundle with workflow
 * interceptor modules (tracing) is a separate variant, cached and memoized under its own key.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const PROJECT_ROOT = join(__dirname, '..');
/**
 * Folders never part of a workflow bundle. Everything else is fingerprinted, whole: listing the
 * folders a workflow imports missed one (tools/) and let a stale cached bundle run old code.
 */
const NOT_WORKFLOW_SOURCE = new Set(['node_modules', 'test', 'bench', 'dist', 'build', 'examples', 'deploy', 'docs']);

/** Every .ts file under the project root, outside `NOT_WORKFLOW_SOURCE` and dot-folders, sorted. */
export async function workflowSourceFiles(dir = '', out: string[] = []): Promise<string[]> {
  const entries = (await readdir(join(PROJECT_ROOT, dir), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = dir === '' ? entry.name : join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!(dir === '' && NOT_WORKFLOW_SOURCE.has(entry.name))) await workflowSourceFiles(path, out);
    } else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

export interface WorkflowBundleOptions {
  /** Workflow interceptor modules to bundle in (e.g. `WORKFLOW_INTERCEPTOR_MODULES` for tracing). */
  workflowInterceptorModules?: readonly string[];
}

/** Version of the package a module file belongs to (the nearest package.json up from it), or ''. */
async function packageVersionOf(modulePath: string): Promise<string> {
  for (let dir = dirname(modulePath); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name !== undefined) return `${pkg.name}@${pkg.version ?? ''}`;
    } catch {
      // no package.json here: look further up
    }
  }
  return '';
}

async function sourceFingerprint(interceptorModules: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  hash.update(`sdk:${sdk.version}\n`);
  for (const module of interceptorModules) hash.update(`interceptor:${module}:${await packageVersionOf(module)}\n`);
  for (const file of await workflowSourceFiles()) {
    hash.update(`${file}\n`);
    hash.update(await readFile(join(PROJECT_ROOT, file)));
  }
  return hash.digest('hex').slice(0, 24);
}

/** One build per variant (interceptor modules) per process. */
const memo = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

async function buildOrLoad(cacheDir: string | undefined, interceptorModules: readonly string[]): Promise<WorkflowBundleWithSourceMap> {
  const fingerprint = cacheDir === undefined ? undefined : await sourceFingerprint(interceptorModules);
  const cacheFile = cacheDir === undefined ? undefined : join(cacheDir, `workflow-bundle-${fingerprint}.json`);
  if (cacheFile !== undefined) {
    try {
      return JSON.parse(await readFile(cacheFile, 'utf8')) as WorkflowBundleWithSourceMap;
    } catch {
      // not cached yet (or unreadable): build below
    }
  }
  const bundle = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: silentLogger,
    ...(interceptorModules.length === 0 ? {} : { workflowInterceptorModules: [...interceptorModules] }),
  });
  if (cacheFile !== undefined && cacheDir !== undefined) {
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${cacheFile}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(bundle));
    await rename(tmp, cacheFile);
  }
  return bundle;
}

/**
 * The workflow bundle for this code; `cacheDir` enables the on-disk cache. With
 * `workflowInterceptorModules` the bundle includes them (a pre-built bundle is the only way a
 * worker gets workflow interceptors: `Worker.create` ignores `interceptors.workflowModules` then).
 */
export function workflowBundle(cacheDir?: string, options: WorkflowBundleOptions = {}): Promise<WorkflowBundleWithSourceMap> {
  const modules = [...(options.workflowInterceptorModules ?? [])];
  const key = modules.join('\n');
  let bundle = memo.get(key);
  if (bundle === undefined) {
    bundle = buildOrLoad(cacheDir, modules).catch((error: unknown) => {
      memo.delete(key);
      throw error;
    });
    memo.set(key, bundle);
  }
  return bundle;
}

const noop = () => undefined;
const silentLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
