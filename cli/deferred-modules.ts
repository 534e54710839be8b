/**
 * Modules that packages Warden uses load with themselves, but that no `warden` command needs on
 * its usual path: each is loaded when first used instead (issue 17: `warden run`'s start-up).
 *
 * - zod's table of locales (`v4/locales/index.cjs`: its 50 message catalogues, about 20 ms of
 *   the main thread's CPU in every command that loads zod). zod re-exports it as `z.locales` and
 *   sets its English messages from `en.cjs` directly; Warden never changes the locale. zod's
 *   ES build (`import('zod')`) has files of its own and is not touched.
 *
 * Until first used, the module cache holds, under the module's own file name, an object that loads
 * the real module on the first read of any property (other than `__esModule`, which it sets, so
 * that TypeScript's `__importStar` takes the object as it is without loading it) and answers from
 * the real module from then on: nothing differs once loaded, and a module that fails to load
 * throws its own error at that first read. A module that is already loaded, or that cannot be
 * resolved from here (another node_modules layout), is left to Node as before.
 *
 * Not here: the Temporal SDK's webpack bundler (`@temporalio/worker/lib/workflow/bundler.js`,
 * ~35 ms). A stand-in for it was withdrawn after an attack (commit d5edd83): Node's ES import of
 * the CommonJS SDK reads every export of its index and drops a getter's error, so a bundler that
 * failed to load would reach `import('@temporalio/worker')` as an undefined `bundleWorkflowCode`
 * instead of its loader's error. Only a module whose exports no package index re-exports belongs here.
 *
 * Imports Node built-ins only: cli/main.ts calls it before any command loads a package.
 */
import { Module } from 'node:module';
import { dirname, join } from 'node:path';

/** The parts of Node's CommonJS `Module` used here that @types/node does not declare. */
interface ModuleInternals {
  new (id: string, parent: unknown): ModuleRecord;
  _cache: Record<string, ModuleRecord | undefined>;
  _load(request: string, parent: unknown, isMain: boolean): unknown;
}
interface ModuleRecord {
  filename: string;
  loaded: boolean;
  exports: unknown;
  paths: string[];
}

const NodeModule = Module as unknown as ModuleInternals & { _nodeModulePaths(from: string): string[] };

/** A module loaded on first use: how to find its file (from this module), and why it can wait. */
export interface DeferredModule {
  /** What the module is, for tests and messages. */
  name: string;
  /** Its absolute file name, or undefined when it cannot be resolved here. */
  resolve(): string | undefined;
}

/** `require.resolve(request)` from here, or undefined when this install has no such module. */
function resolvedOrUndefined(resolve: () => string): string | undefined {
  try {
    return resolve();
  } catch {
    return undefined;
  }
}

/** The modules `deferUnusedModules` defers (see the module comment for why each can wait). */
export const DEFERRED_MODULES: readonly DeferredModule[] = [
  // The file zod's core requires as `../locales/index.cjs` (the package exports no path to it).
  { name: "zod's locales", resolve: () => resolvedOrUndefined(() => join(dirname(require.resolve('zod/v4/core')), '..', 'locales', 'index.cjs')) },
];

/**
 * The exports object standing for `filename` until first used: a proxy that, on the first read
 * (or `in`, key listing, write) of anything but `__esModule`, loads the real module and forwards
 * to its exports from then on. `stub` is the module record it sits in, replaced by the real one.
 */
function loadOnFirstUse(filename: string, stub: ModuleRecord): object {
  let real: object | undefined;
  const load = (): object => {
    if (real === undefined) {
      if (NodeModule._cache[filename] === stub) delete NodeModule._cache[filename];
      real = NodeModule._load(filename, null, false) as object;
    }
    return real;
  };
  return new Proxy(
    {},
    {
      get: (_target, key) => (key === '__esModule' && real === undefined ? true : Reflect.get(load(), key)),
      has: (_target, key) => Reflect.has(load(), key),
      ownKeys: () => Reflect.ownKeys(load()),
      // Reported configurable: the proxy's own target has none of these properties.
      getOwnPropertyDescriptor: (_target, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
        return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
      },
      set: (_target, key, value) => Reflect.set(load(), key, value),
      defineProperty: (_target, key, descriptor) => Reflect.defineProperty(load(), key, descriptor),
      deleteProperty: (_target, key) => Reflect.deleteProperty(load(), key),
    },
  );
}

/**
 * Puts each of {@link DEFERRED_MODULES} not loaded yet in the module cache as a module loaded on
 * first use. Idempotent; returns the file names deferred by this call.
 */
export function deferUnusedModules(modules: readonly DeferredModule[] = DEFERRED_MODULES): string[] {
  const deferred: string[] = [];
  for (const module of modules) {
    const filename = module.resolve();
    if (filename === undefined || NodeModule._cache[filename] !== undefined) continue;
    const stub = new NodeModule(filename, null);
    stub.filename = filename;
    stub.paths = NodeModule._nodeModulePaths(dirname(filename));
    stub.exports = loadOnFirstUse(filename, stub);
    stub.loaded = true;
    NodeModule._cache[filename] = stub;
    deferred.push(filename);
  }
  return deferred;
}
