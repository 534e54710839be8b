/**
 * Not a workflow: what `zod` resolves to inside the workflow bundle (worker/workflow-bundle.ts
 * `LAZY_ZOD_ALIAS`). Every workflow run evaluates the modules it imports afresh (the SDK's
 * reusable V8 context gives each run a module cache of its own), and Warden's workflow-side modules
 * all import `z`; but their schemas are built once per thread by the first run that needs them
 * (`sharedOnce`, shared-modules.ts), so a later run calls nothing of zod's own. Evaluating zod
 * anyway was the largest part of a run's start (issue 17: about 6 ms per task of the workflow
 * thread's CPU, a tenth of what a guarded task cost it).
 *
 * Here `z` stands in for zod's and evaluates zod, in the run's own module cache, the first time the
 * run reads any of it: the same module, only later or never. Only `z` is forwarded (and `default`):
 * every other import of zod is refused by test/workflows/lazy-zod-imports-scan.test.ts. Nothing is shared
 * between runs that was not before (zod stays out of the preloaded, frozen modules:
 * shared-modules.ts says why). Evaluating zod calls no Temporal API and reads no clock or random
 * number, so when it happens changes nothing a run records.
 *
 * Deterministic code only, like all workflow code.
 */
import type { z as Zod } from 'zod';

type ZodApi = typeof Zod;

let loaded: ZodApi | undefined;

/** zod's `z`, evaluated on first use. `zod/v4` is the same API under a name the alias does not catch. */
function zod(): ZodApi {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= (require('zod/v4') as { z: ZodApi }).z;
  return loaded;
}

/** Reads go to zod's `z`; the target stays empty, so every property is reported configurable (a Proxy invariant). */
export const z: ZodApi = new Proxy({} as ZodApi, {
  get: (_target, key) => Reflect.get(zod(), key),
  has: (_target, key) => Reflect.has(zod(), key),
  ownKeys: () => Reflect.ownKeys(zod()),
  getOwnPropertyDescriptor: (_target, key) => {
    const descriptor = Reflect.getOwnPropertyDescriptor(zod(), key);
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
  set: () => false,
  defineProperty: () => false,
  deleteProperty: () => false,
});

export default z;
