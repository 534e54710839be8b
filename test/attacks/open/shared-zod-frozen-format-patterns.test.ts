/**
 * Open finding (shared workflow modules, workflows/shared-modules.ts): the SDK deep-freezes every
 * module the preload evaluated, and zod's exported RegExp constants (`regexes.email`, `.guid`,
 * `.ipv4`, `.date`, `.domain`...) are among them. zod resets `lastIndex` on a format's pattern
 * before every test (`def.pattern.lastIndex = 0`, core/checks.js; `hostname.lastIndex = 0` for
 * `z.httpUrl()`), which throws a TypeError on a frozen RegExp. So any workflow-side schema using
 * one of those formats throws on every parse of a value (a field an attacker fills, when it is
 * optional): the workflow task fails and is retried forever. Today no workflow-side schema uses
 * them (the preload's warm-up and test/workflows/shared-modules.test.ts cover only the kinds in
 * use), so this is a trap for the next schema rather than a live outage. It also holds that
 * `globalRegistry`'s id map is shared by every run: one run's `.meta({ id })` schema (with its
 * refinement closures) is visible to the next run.
 */
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflowBundle } from '../../../worker/workflow-bundle';

const ZOD = './node_modules/zod/v4/classic/schemas.js';
const REGISTRIES = './node_modules/zod/v4/core/registries.js';
/** `z` as workflow code sees it: the schema builders, from the shared module cache. */
const SHARED_Z = `__webpack_module_cache__[${JSON.stringify(ZOD)}].exports`;

const CASES: [string, string, unknown[]][] = [
  ['email', `z.strictObject({ contact: z.email().optional() })`, [{}, { contact: 'a@example.com' }, { contact: 'nope' }]],
  ['guid', `z.guid()`, ['123e4567-e89b-12d3-a456-426614174000', 'x']],
  ['ipv4', `z.ipv4()`, ['10.0.0.1', '999.1.1.1']],
  ['iso date', `z.string().date()`, ['2026-12-01', '2026-13-01']],
  ['duration', `z.string().duration()`, ['P1D', 'x']],
  ['http url', `z.httpUrl()`, ['https://example.com/', 'ftp://example.com/']],
  ['e164', `z.e164()`, ['+15555550100', '5']],
];

function answer(run: () => unknown): string {
  try {
    return JSON.stringify(run());
  } catch (error) {
    return `threw ${(error as Error).name}: ${(error as Error).message}`;
  }
}

describe('shared frozen zod: format patterns', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle();
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    context = (creator as unknown as { context: Context }).context;
  }, 300_000);

  afterAll(async () => {
    await creator?.destroy();
  });

  it.each(CASES)('%s parses in a workflow run as in an unshared zod', (_name, source, inputs) => {
    const schema = new Function('z', `return ${source};`)(z) as z.ZodType;
    const expected = inputs.map((input) => answer(() => schema.safeParse(input).success));
    const shared = runInContext(
      `(() => {
        const z = ${SHARED_Z};
        const schema = ${source};
        return ${JSON.stringify(inputs)}.map((input) => { try { return JSON.stringify(schema.safeParse(input).success); } catch (e) { return 'threw ' + e.name + ': ' + e.message; } });
      })()`,
      context,
    ) as string[];
    expect(shared).toEqual(expected);
  });

  it("one run's schema ids are not visible to the next run", () => {
    const run = (tag: string) =>
      runInContext(
        `(() => {
          const z = __webpack_module_cache__[${JSON.stringify(ZOD)}].exports;
          const { globalRegistry } = __webpack_module_cache__[${JSON.stringify(REGISTRIES)}].exports;
          const seen = globalRegistry._idmap.has('warden.Example');
          z.string().meta({ id: 'warden.Example', description: ${JSON.stringify(tag)} });
          return seen;
        })()`,
        context,
      ) as boolean;
    expect(run('first run')).toBe(false);
    expect(run('second run')).toBe(false);
  });
});
