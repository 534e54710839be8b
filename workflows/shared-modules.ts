/**
 * Not a workflow: the module the workflow bundle preloads once per workflow thread
 * (`bundlerOptions.preloadModules`, see worker/workflow-bundle.ts `PRELOADED_MODULES`). With the
 * SDK's reusable V8 context every workflow run otherwise evaluates every module it imports
 * afresh, once per task. What this module imports is evaluated once, before any workflow exists,
 * shared by every run on the thread, and deep-frozen by the SDK.
 *
 * Only libraries that never write to what they export belong here, and only the SHA-256 code is.
 * zod was here and was taken out: the freeze reaches its exported RegExp constants (`email`,
 * `guid`, `ipv4`, `date`, ...), and zod sets `lastIndex` on a format's pattern before every test,
 * which a frozen RegExp refuses, so a workflow-side schema of such a format would throw on every
 * value and fail its workflow task forever; and its registry of schema ids would be shared by every
 * run (an attack finding; test/workflows/shared-modules.test.ts holds the class: no RegExp and no
 * zod among the shared modules). Warden's own modules do not belong here either: their zod
 * schemas fill lazily computed members on first use, which a frozen schema refuses.
 *
 * SHA-256 keeps a scratch buffer at module level (a typed array, which the freeze leaves
 * writable); a digest is synchronous and runs on one thread, so no run sees another's data in it.
 *
 * {@link sharedOnce} is the way Warden's own schemas are shared all the same: not preloaded (so not
 * frozen), but built once per thread inside the first run that needs them, by that run's own zod,
 * and handed to every later run. The freeze does not reach a Map's entries nor a closure's
 * variables, so what the Map holds stays writable for zod's lazily computed members.
 *
 * Deterministic code only, like all workflow code.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/** Hashes once, so the preload has run every path a digest takes before the freeze. */
export function warm(): void {
  bytesToHex(sha256(utf8ToBytes('')));
}

warm();

/** Values built once per workflow thread: key → value (see {@link sharedOnce}). */
const builtOnce = new Map<string, unknown>();

/**
 * The value `build()` returns, built on the first call for `key` on this workflow thread and the
 * same object on every later call, in every later workflow run of the thread (outside a workflow
 * bundle: once per process). Saves each run re-evaluating the zod schemas of Warden's modules.
 *
 * Only for values that are a pure function of the module's constants and never written in use
 * (zod schemas, lookup tables): one run's data must never reach another through them. So a
 * schema built here gives no default that a parse would hand out to every run: zod copies an
 * object or array default one level deep, so a default holding objects or arrays is a function
 * (`.default(() => ({ paths: [] }))`) (test/workflows/shared-modules.test.ts holds both).
 * Warden's workflow-side modules build their schemas through it (tools/, task/, policies/, mcp/,
 * attestation/, monitoring/, dataplane/, recovery/): the test holds that no later run builds one.
 * `key` names the module and value (`task/task-schema`); a build that throws caches nothing.
 */
export function sharedOnce<T>(key: string, build: () => T): T {
  if (builtOnce.has(key)) return builtOnce.get(key) as T;
  const value = build();
  builtOnce.set(key, value);
  return value;
}

/** The parts of the workflow sandbox's AsyncLocalStorage (Node's, which the SDK puts on the sandbox's globalThis) used here. */
export interface SandboxAsyncLocalStorage<T> {
  getStore(): T | undefined;
  run<R>(store: T, callback: (...args: unknown[]) => R, ...args: unknown[]): R;
  disable(): void;
}

/**
 * One AsyncLocalStorage for the active span context of every run on the thread (workflows/otel-context-manager.ts
 * says why one and why that is safe). Made here, as the thread preloads this module, before any run
 * exists: the SDK disables a storage made inside a run when that run ends, one made outside only
 * with the V8 context. Kept in this closure, not exported, so the SDK's freeze of this module's
 * exports does not reach it (it sets `enabled` on itself). Outside the workflow sandbox there is no
 * global AsyncLocalStorage, and no shared storage.
 */
const spanContextStorage = ((): SandboxAsyncLocalStorage<unknown> | undefined => {
  const Storage = (globalThis as { AsyncLocalStorage?: new () => SandboxAsyncLocalStorage<unknown> }).AsyncLocalStorage;
  return typeof Storage === 'function' ? new Storage() : undefined;
})();

/** The thread's storage of the active span context (see `spanContextStorage`), undefined outside the workflow sandbox. */
export function threadSpanContextStorage<T>(): SandboxAsyncLocalStorage<T> | undefined {
  return spanContextStorage as SandboxAsyncLocalStorage<T> | undefined;
}
