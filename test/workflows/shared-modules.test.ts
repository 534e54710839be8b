/**
 * The workflow bundle preloads modules once per workflow thread (workflows/shared-modules.ts,
 * worker/workflow-bundle.ts `PRELOADED_MODULES`): the SDK then shares them across every workflow
 * run of the thread and deep-freezes them. Held here on the SDK's own reusable V8 context built
 * from the real bundle:
 * - the SHA-256 code is shared, frozen, and still digests right, run after run (its module-level
 *   scratch buffer is written on every digest);
 * - the class an attacker found (zod, preloaded, made `z.email()`, `z.guid()`, `z.ipv4()`... throw in every run): nothing
 *   shared holds a RegExp (frozen, its `lastIndex` is read-only, and zod, like any code running a
 *   global or sticky pattern, writes it before every test: a workflow task that throws forever),
 *   and zod is not shared at all (its registry of schema ids would be common to every run).
 */
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
// The SDK's reusable-context creator (what every worker runs workflows in), used directly: no public entry point.
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowBundle } from '../../worker/workflow-bundle';

const SHA256 = './node_modules/@noble/hashes/esm/sha256.js';
const UTILS = './node_modules/@noble/hashes/esm/utils.js';

/** FIPS 180-4 test vectors (NIST CSHA examples): message, SHA-256 in hex. */
const VECTORS: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
];

describe('modules preloaded once per workflow thread', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;
  /** Every module id in the bundle (webpack's module map keys). */
  let moduleIds: string[];

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle();
    moduleIds = [...new Set([...bundle.code.matchAll(/^\/\*\*\*\/ "(\.\/[^"\n]+)"$/gm)].map((m) => m[1] as string))];
    // As Worker.create does: the source map is inline in the code.
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    // Protected in the SDK's types: the context every workflow run of the thread executes in.
    context = (creator as unknown as { context: Context }).context;
  }, 300_000);

  afterAll(async () => {
    await creator?.destroy();
  });

  it('shares the SHA-256 code across runs, frozen, and it digests the FIPS 180-4 vectors, twice over', () => {
    expect(runInContext(`Object.isFrozen(__webpack_module_cache__[${JSON.stringify(SHA256)}].exports)`, context)).toBe(true);
    const digests = runInContext(
      `(() => {
        const { sha256 } = __webpack_module_cache__[${JSON.stringify(SHA256)}].exports;
        const { bytesToHex, utf8ToBytes } = __webpack_module_cache__[${JSON.stringify(UTILS)}].exports;
        const messages = ${JSON.stringify(VECTORS.map(([m]) => m))};
        return [...messages, ...messages].map((m) => bytesToHex(sha256(utf8ToBytes(m))));
      })()`,
      context,
    ) as string[];
    const expected = VECTORS.map(([, digest]) => digest);
    expect(digests).toEqual([...expected, ...expected]);
  });

  it('shares no RegExp and no zod module: what is frozen is never written', () => {
    // Every module the preload evaluated (the shared cache answers only for those outside a run),
    // and every object reachable from its exports.
    expect(moduleIds.length).toBeGreaterThan(100);
    const found = JSON.parse(
      runInContext(
        `(() => {
          const ids = ${JSON.stringify(moduleIds)}.filter((id) => __webpack_module_cache__[id] !== undefined);
          const regexps = [];
          const seen = new Set();
          const visit = (value, path) => {
            if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return;
            seen.add(value);
            if (value instanceof RegExp) regexps.push(path);
            for (const key of Reflect.ownKeys(value)) {
              const d = Object.getOwnPropertyDescriptor(value, key);
              if (d && 'value' in d) visit(d.value, path + '.' + String(key));
            }
            visit(Object.getPrototypeOf(value), path + '.[[Prototype]]');
          };
          for (const id of ids) visit(__webpack_module_cache__[id].exports, id);
          return JSON.stringify({ ids, regexps });
        })()`,
        context,
      ) as string,
    ) as { ids: string[]; regexps: string[] };
    expect(found.ids).toContain(SHA256);
    expect(found.ids.filter((id) => id.includes('/zod/'))).toEqual([]);
    expect(found.regexps).toEqual([]);
  });
});
