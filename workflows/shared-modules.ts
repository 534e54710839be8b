/**
 * Not a workflow: the module the workflow bundle preloads once per workflow thread
 * (`bundlerOptions.preloadModules`, see worker/workflow-bundle.ts `PRELOADED_MODULES`). With the
 * SDK's reusable V8 context every workflow run otherwise evaluates every module it imports
 * afresh, zod's classes and checks and the SHA-256 code among them, once per task. What this
 * module imports is evaluated once, before any workflow exists, shared by every run on the
 * thread, and deep-frozen by the SDK.
 *
 * Only stateless libraries belong here. Warden's own modules do not: their zod schemas fill
 * lazily computed members on first use, which a frozen schema refuses, and some hold per-run
 * state. zod itself fills three values of its exported, soon frozen, objects on first use: the
 * default locale and the container memoizer (`globalConfig`, on the first schema built) and
 * `util.allowsEval` (on the first object schema). {@link warm} builds and parses one schema of
 * every kind Warden's schemas use, valid and invalid input, compiled and `jitless`, so each is
 * filled before the freeze (test/workflows/shared-modules.test.ts holds every kind to what an
 * unshared zod answers). What stays shared is written only through Maps, WeakMaps and closure
 * variables the freeze does not reach: zod's registry is keyed by schema, so a run's schemas
 * never meet another run's; its memoizer's state is per parse.
 *
 * Deterministic code only, like all workflow code.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { z } from 'zod';

/** Builds and uses one schema of every kind Warden's schemas use (see the module comment). */
export function warm(): void {
  const node: z.ZodType = z.lazy(() => z.strictObject({ name: z.string(), children: z.array(node).optional() }));
  const schema = z
    .strictObject({
      text: z.string().trim().toLowerCase().min(1).max(64).regex(/^[a-z]+$/).startsWith('a').endsWith('z'),
      url: z.url().optional(),
      id: z.uuid().nullish(),
      count: z.number().int().positive().nonnegative().min(1).max(9).default(1),
      mode: z.enum(['a', 'b']).catch('a'),
      flag: z.boolean().nullable(),
      tags: z.record(z.string(), z.array(z.literal('x')).min(1).max(2)).describe('tags'),
      any: z.unknown(),
      none: z.null().optional(),
      pick: z.union([z.string(), z.number()]),
      kind: z.discriminatedUnion('type', [z.strictObject({ type: z.literal('p'), p: z.string() }), z.looseObject({ type: z.literal('q') })]),
      loose: z.object({ a: z.string() }).strict().optional(),
      tree: node.optional(),
      date: z.instanceof(Date).optional(),
      even: z.number().refine((n) => n % 2 === 0, 'even').optional(),
      pair: z
        .array(z.number())
        .superRefine((a, ctx) => {
          if (a.length > 2) ctx.addIssue({ code: 'custom', message: 'pair' });
        })
        .optional(),
      size: z.string().transform((s) => s.length).pipe(z.number().max(9)).optional(),
    })
    .refine((v) => v.text !== 'az' || v.count === 1);
  const good = { text: ' AZ ', count: 1, mode: 'c', flag: null, tags: { t: ['x'] }, any: 1, pick: 2, kind: { type: 'q', extra: 1 }, tree: { name: 'r', children: [{ name: 'c' }] }, even: 2, pair: [1], size: 'abc' };
  const bad = { text: '', url: 'nope', id: 'x', count: 0.5, flag: 'no', tags: { t: [] }, pick: true, kind: { type: 'p' }, loose: { a: 'b', c: 1 }, tree: { children: 1 }, date: 1, even: 1, pair: [1, 2, 3], size: 'too long text', more: 1 };
  for (const input of [good, bad, undefined, 'text']) {
    schema.safeParse(input);
    schema.safeParse(input, { jitless: true });
  }
  bytesToHex(sha256(utf8ToBytes('')));
}

warm();
