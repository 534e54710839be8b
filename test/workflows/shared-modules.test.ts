/**
 * The workflow bundle preloads stateless libraries once per workflow thread
 * (workflows/shared-modules.ts, worker/workflow-bundle.ts `PRELOADED_MODULES`): the SDK then
 * shares them across every workflow run of the thread and deep-freezes them. Held here on the
 * SDK's own reusable V8 context built from the real bundle: zod and the SHA-256 code are shared and
 * frozen, and every kind of schema Warden builds, parsed through the shared, frozen zod (as a
 * workflow run does), answers exactly what an unshared zod in this process answers, compiled and
 * `jitless`, valid and invalid input. A value zod fills lazily and the preload does not fill
 * (say, its default locale) throws a TypeError here instead of failing a workflow task.
 */
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
// The SDK's reusable-context creator (what every worker runs workflows in), used directly: no public entry point.
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflowBundle } from '../../worker/workflow-bundle';

/** zod's schema builders (what `z.` names), as the bundle holds them. */
const ZOD = './node_modules/zod/v4/classic/schemas.js';
const SHA256 = './node_modules/@noble/hashes/esm/sha256.js';

/** Each row: a schema (source using `z`) and the inputs it is held to (JSON). */
const CASES: [string, string, unknown[]][] = [
  ['string checks', `z.string().trim().toLowerCase().min(2).max(8).regex(/^[a-z]+$/).startsWith('a').endsWith('z')`, [' AbZ ', 'a', 'abc', 'a1z', 'x'.repeat(20), 3, null]],
  ['url, uuid', `z.strictObject({ u: z.url(), id: z.uuid() })`, [{ u: 'https://example.com/a', id: '123e4567-e89b-42d3-a456-426614174000' }, { u: 'nope', id: 'x' }, {}]],
  ['numbers', `z.number().int().positive().nonnegative().min(1).max(9)`, [1, 9, 0, -1, 1.5, 10, '1', Number.MAX_SAFE_INTEGER]],
  ['strict object, defaults, catch', `z.strictObject({ a: z.string().default('d'), b: z.enum(['x', 'y']).catch('x'), c: z.boolean().nullable().optional() })`, [{}, { a: 'v', b: 'q', c: null }, { a: 1 }, { extra: 1 }, [], 'no']],
  ['loose and plain objects', `z.object({ a: z.looseObject({ t: z.literal('k') }), b: z.object({ n: z.number() }).strict().optional() })`, [{ a: { t: 'k', more: 1 } }, { a: { t: 'j' } }, { a: { t: 'k' }, b: { n: 1, x: 2 } }, { a: { t: 'k' }, z: 9 }]],
  ['records and arrays', `z.record(z.string().min(1), z.array(z.literal('x')).min(1).max(2))`, [{ a: ['x'] }, { a: [] }, { '': ['x'] }, { a: ['x', 'x', 'x'] }, { a: ['y'] }, []]],
  ['unions', `z.union([z.string(), z.number(), z.null()])`, ['a', 1, null, true, {}]],
  ['discriminated unions', `z.discriminatedUnion('type', [z.strictObject({ type: z.literal('p'), p: z.string() }), z.strictObject({ type: z.literal('q'), q: z.number().optional() })])`, [{ type: 'p', p: 's' }, { type: 'q' }, { type: 'p' }, { type: 'r' }, { p: 's' }, 7]],
  ['nullish, unknown, null, describe', `z.strictObject({ a: z.string().nullish(), b: z.unknown(), c: z.null().optional() }).describe('d')`, [{ a: null, b: [1] }, { a: undefined }, { a: 1, c: 0 }]],
  ['lazy (recursive)', `(() => { const node = z.lazy(() => z.strictObject({ name: z.string(), children: z.array(node).optional() })); return node; })()`, [{ name: 'r', children: [{ name: 'c', children: [] }] }, { name: 'r', children: [{}] }, { children: 1 }]],
  ['refine, superRefine', `z.array(z.number()).refine((a) => a.length !== 1, 'not one').superRefine((a, ctx) => { if (a.length > 2) ctx.addIssue({ code: 'custom', message: 'at most two' }); })`, [[], [1], [1, 2], [1, 2, 3], ['a']]],
  ['transform and pipe', `z.string().transform((s) => s.length).pipe(z.number().max(3))`, ['ab', 'abcd', 1]],
];

/** Both parses of each input, as JSON: the data, or the issues (codes, paths, messages). */
function answers(schema: z.ZodType, inputs: unknown[]): string {
  const one = (r: ReturnType<z.ZodType['safeParse']>) => (r.success ? { data: r.data } : { issues: r.error.issues });
  return JSON.stringify(inputs.map((input) => [one(schema.safeParse(input)), one(schema.safeParse(input, { jitless: true }))]));
}

describe('modules preloaded once per workflow thread', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle();
    // As Worker.create does: the source map is inline in the code.
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    // Protected in the SDK's types: the context every workflow run of the thread executes in.
    context = (creator as unknown as { context: Context }).context;
  }, 300_000);

  afterAll(async () => {
    await creator?.destroy();
  });

  it('shares zod and SHA-256 across runs, frozen', () => {
    for (const id of [ZOD, SHA256]) {
      expect(runInContext(`__webpack_module_cache__[${JSON.stringify(id)}] !== undefined`, context), id).toBe(true);
      expect(runInContext(`Object.isFrozen(__webpack_module_cache__[${JSON.stringify(id)}].exports)`, context), id).toBe(true);
    }
  });

  it.each(CASES)('%s: the shared, frozen zod answers as an unshared one', (_name, source, inputs) => {
    const expected = answers(new Function('z', `return ${source};`)(z) as z.ZodType, inputs);
    const shared = runInContext(
      `(() => {
        const z = __webpack_module_cache__[${JSON.stringify(ZOD)}].exports;
        const one = (r) => (r.success ? { data: r.data } : { issues: r.error.issues });
        const schema = ${source};
        return JSON.stringify(${JSON.stringify(inputs)}.map((input) => [one(schema.safeParse(input)), one(schema.safeParse(input, { jitless: true }))]));
      })()`,
      context,
    ) as string;
    expect(shared).toBe(expected);
  });
});
