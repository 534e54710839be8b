/**
 * Loads the Temporal SDK's workflow bundler only when something uses it (issue 17: `warden run`'s
 * start-up).
 *
 * @temporalio/worker 1.24's worker.js (and its index) require `./workflow/bundler` as they load,
 * and that module requires webpack's entry, memfs and unionfs: about 100 modules, 35-40 ms of the
 * main thread's CPU in every `warden run` and `warden worker` (bench machine, load 13, with the
 * module code cache). A Warden worker is given a pre-built bundle (worker/workflow-bundle.ts) and
 * never bundles: the SDK reads the bundler's exports only to bundle (`bundleWorkflowCode`,
 * `WorkflowCodeBundler`) or to check `workflowsPath` options (`defaultWorkflowInterceptorModules`).
 *
 * So before the SDK loads, its bundler's place in `require.cache` is taken by a stand-in whose
 * exports are the bundler's own names as getters: the first read of any of them loads the real
 * module (through Node's loader, where it then stays cached) and answers from it. Nothing else
 * changes: the same module runs, with the same exports, on first use instead of at load; a failure
 * to load it surfaces at that use. Only for the release line whose bundler's exports were read
 * here (sdk-release.ts), and only when neither the SDK nor its bundler has been loaded yet;
 * otherwise nothing is done.
 *
 * Imports Node built-ins and sdk-release.ts only: it must run before anything loads the SDK.
 */
import { Module } from 'node:module';
import { dirname } from 'node:path';
import { installedSdkVersion, knownSdkInternals } from './sdk-release';

/** What @temporalio/worker 1.24.x's lib/workflow/bundler.js exports (besides `__esModule`). */
export const SDK_BUNDLER_EXPORTS = [
  'WorkflowCodeBundler',
  'bundleWorkflowCode',
  'moduleMatches',
  'defaultWorkflowInterceptorModules',
  'allowedBuiltinModules',
  'disallowedBuiltinModules',
  'disallowedModules',
] as const;

/** The SDK's modules that require the bundler as they load: once one is loaded, deferring is too late. */
const SDK_MODULES_REQUIRING_THE_BUNDLER = ['@temporalio/worker/lib/worker', '@temporalio/worker/lib/index'];

let deferred = false;

/**
 * Puts the stand-in in place (see the module comment). Returns whether the bundler is deferred
 * (now or by an earlier call); never throws.
 */
export function deferSdkBundler(): boolean {
  if (deferred) return true;
  try {
    if (!knownSdkInternals(installedSdkVersion())) return false;
    const file = require.resolve('@temporalio/worker/lib/workflow/bundler');
    const cache = require.cache;
    if (cache[file] !== undefined || SDK_MODULES_REQUIRING_THE_BUNDLER.some((id) => cache[require.resolve(id)] !== undefined)) return false;
    let real: Record<string, unknown> | undefined;
    const load = (): Record<string, unknown> => {
      if (real === undefined) {
        // Node's loader from here on: the real module takes its place in the cache.
        if (cache[file] === standIn) delete cache[file];
        real = require(file) as Record<string, unknown>;
      }
      return real;
    };
    const lazyExports: Record<string, unknown> = {};
    Object.defineProperty(lazyExports, '__esModule', { value: true });
    for (const name of SDK_BUNDLER_EXPORTS) Object.defineProperty(lazyExports, name, { enumerable: true, get: () => load()[name] });
    const standIn = new Module(file);
    standIn.filename = file;
    standIn.paths = (Module as unknown as { _nodeModulePaths(from: string): string[] })._nodeModulePaths(dirname(file));
    standIn.exports = lazyExports;
    standIn.loaded = true;
    cache[file] = standIn;
    deferred = true;
    return true;
  } catch {
    return false;
  }
}

deferSdkBundler();
