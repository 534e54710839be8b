/**
 * Finding (s16, atk16b; severity low, latent): inside the workflow bundle `zod` has two names.
 *
 * Attack: since a5f41b0 the workflow bundle resolves `zod` to workflows/lazy-zod.ts
 * (worker/workflow-bundle.ts `LAZY_ZOD_ALIAS`), which says it is "the same module, the same
 * exports, only later or never", but exports only `z` and `default`. zod 4's entry exports 260
 * names (`ZodError`, `object`, `string`, `ZodType`, ...). A workflow-side module written in the
 * other styles zod documents, `import * as z from 'zod'` or `import { z, ZodError } from 'zod'`,
 * typechecks (types come from zod itself), passes every test that runs it from the sources
 * (vitest loads real zod), and the build's webpack bundles it without a word (tsc's CommonJS output reads
 * the name off `require('zod')`, which webpack cannot check); only inside a workflow run does
 * `z.object` or `ZodError` read undefined: `schema.parse` throws a TypeError and the workflow task
 * fails over and over, or `error instanceof ZodError` throws where a validation error was to be
 * answered. No Warden module does this today (all take `{ z }`), hence latent.
 *
 * Why it works: the alias catches every `zod` import, the stand-in forwards one export.
 *
 * Suggested fix: have the stand-in forward every export of zod (a getter per name of zod's entry,
 * each loading zod on first read as `z` does; the names can be taken from zod's package at build
 * time), or fail the bundle build / a source scan on any workflow-side import of zod other than
 * `{ z }` or `import type`.
 */
import * as zod from 'zod';
import { expect, it } from 'vitest';
import { LAZY_ZOD_ALIAS } from '../../../worker/workflow-bundle';

it("what `zod` resolves to in the workflow bundle has zod's exports", async () => {
  const standIn = (await import(LAZY_ZOD_ALIAS.zod$!)) as Record<string, unknown>;
  const missing = Object.keys(zod).filter((name) => !(name in standIn));
  expect({ missing: missing.length, ZodError: typeof standIn.ZodError, object: typeof standIn.object }).toEqual({ missing: 0, ZodError: 'function', object: 'function' });
});
