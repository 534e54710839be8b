/**
 * The workflow bundle in two forms (worker/workflow-bundle.ts): with its inline source map for
 * workers with workflow stack traces `on`, and with an empty map for `off` (the default), where
 * no frame is ever captured and the SDK would otherwise decode, re-encode and compile 3.7 MB of
 * map on every start. Each form has its own cache key and pre-built file: neither is ever served
 * for the other, whichever was built or cached first. (That a worker created with each form runs
 * tasks, and that `on` maps workflow frames to source files, is in workflow-stack-traces.test.ts.)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, describe, expect, it, vi } from 'vitest';

type BundleModule = typeof import('../../worker/workflow-bundle.js');

/** A fresh copy of the module: its per-process memo empty, as in a new worker process. */
async function freshModule(): Promise<BundleModule> {
  vi.resetModules();
  return import('../../worker/workflow-bundle.js');
}

interface InlineMap {
  file?: string;
  sources: string[];
  sourcesContent?: (string | null)[];
  mappings: string;
}

/** The inline source map at the end of a bundle's code (the form `parseWorkflowCode` reads). */
function inlineMap(bundle: WorkflowBundleWithSourceMap): InlineMap {
  const at = bundle.code.lastIndexOf('//# sourceMappingURL=data:');
  expect(at, 'the bundle ends in an inline source map').toBeGreaterThan(0);
  const base64 = bundle.code.slice(bundle.code.indexOf('base64,', at) + 'base64,'.length).trimEnd();
  return JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as InlineMap;
}

const codeOf = (bundle: WorkflowBundleWithSourceMap) => bundle.code.slice(0, bundle.code.lastIndexOf('//# sourceMappingURL=data:'));

/** The full form: sources listed, mapped, with their text (the UI's enhanced stack trace shows it). */
function expectFullMap(bundle: WorkflowBundleWithSourceMap): void {
  const map = inlineMap(bundle);
  const agentTask = map.sources.findIndex((s) => /workflows\/agent-task\.ts$/.test(s));
  expect(agentTask, 'workflows/agent-task.ts is a source of the map').toBeGreaterThanOrEqual(0);
  expect(map.sourcesContent?.[agentTask]).toContain('export async function agentTask');
  expect(map.mappings.length).toBeGreaterThan(100_000);
}

function expectEmptyMap(bundle: WorkflowBundleWithSourceMap): void {
  const map = inlineMap(bundle);
  expect(map).toMatchObject({ version: 3, sources: [], mappings: '' });
  expect(map.sourcesContent ?? []).toEqual([]);
  expect(bundle.code.length).toBeLessThan(3_000_000);
}

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bundle-map-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the two forms', () => {
  it('off carries an empty source map after the same code; on keeps the full map', async () => {
    const { workflowBundle } = await freshModule();
    const full = await workflowBundle(undefined, { stackTraces: 'on' });
    const stripped = await workflowBundle(undefined, { stackTraces: 'off' });
    expectFullMap(full);
    expectEmptyMap(stripped);
    expect(codeOf(stripped)).toBe(codeOf(full));
    // The SDK names the script after the map's `file`: kept, so both forms run under one name.
    expect(inlineMap(stripped).file).toBe(inlineMap(full).file);
    // The default (replay, `warden replay`) is the full form.
    expect(await workflowBundle()).toBe(full);
  }, 300_000);

  it('a bundle with no inline source map is refused with a clear error', async () => {
    const { withoutSourceMap } = await freshModule();
    // The errors module of the same (fresh) module graph.
    const { WardenError } = await import('../../errors.js');
    let caught: unknown;
    try {
      withoutSourceMap({ code: 'var __TEMPORAL__ = {};\n', sourceMap: '' } as unknown as WorkflowBundleWithSourceMap);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WardenError);
    expect(caught).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
    expect((caught as Error).message).toContain('inline source map');
  });
});

describe('the on-disk cache keys both forms', () => {
  it.each([
    ['on', 'off'],
    ['off', 'on'],
  ] as const)('%s cached first, then a new process asks for %s: it gets its own form', async (first, second) => {
    const cacheDir = tempDir();
    const early = await (await freshModule()).workflowBundle(cacheDir, { stackTraces: first });
    (first === 'on' ? expectFullMap : expectEmptyMap)(early);
    const late = await (await freshModule()).workflowBundle(cacheDir, { stackTraces: second });
    (second === 'on' ? expectFullMap : expectEmptyMap)(late);
    // One cache file per form, each holding its form (a later process reads them back as they are).
    const files = readdirSync(cacheDir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(2);
    const forms = files.map((f) => inlineMap(JSON.parse(readFileSync(join(cacheDir, f), 'utf8')) as WorkflowBundleWithSourceMap).sources.length > 0).sort();
    expect(forms).toEqual([false, true]);
    for (const stackTraces of ['on', 'off'] as const) {
      const again = await (await freshModule()).workflowBundle(cacheDir, { stackTraces });
      (stackTraces === 'on' ? expectFullMap : expectEmptyMap)(again);
    }
  }, 300_000);
});

describe('pre-built bundles (`npm run build`)', () => {
  it('each variant is written in both forms, under names that tell them apart', async () => {
    const { bundleVariantName, prebuildWorkflowBundles } = await freshModule();
    const outDir = tempDir();
    const written = await prebuildWorkflowBundles(outDir, [[]]);
    expect(written.map((f) => f.slice(outDir.length + 1)).sort()).toEqual(['plain.json', 'plain.no-source-map.json']);
    expect(await bundleVariantName([], 'on')).toBe('plain');
    expect(await bundleVariantName([], 'off')).toBe('plain.no-source-map');
    const read = (name: string) => JSON.parse(readFileSync(join(outDir, `${name}.json`), 'utf8')) as WorkflowBundleWithSourceMap;
    expectFullMap(read('plain'));
    expectEmptyMap(read('plain.no-source-map'));
    expect(codeOf(read('plain.no-source-map'))).toBe(codeOf(read('plain')));
  }, 300_000);
});
