/**
 * The cached workflow bundle is keyed by a fingerprint of the sources. Every project file the
 * bundler actually put in the bundle must be fingerprinted, or an edit to it would leave a stale
 * bundle running old workflow code (tools/ was once left out).
 *
 * Every workflow run evaluates the bundle's modules afresh, so the bundle holds one copy of each
 * package version (npm nests the same version under several dependents: OpenTelemetry's
 * semantic conventions were bundled three times).
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { workflowBundle, workflowSourceFiles } from '../../worker/workflow-bundle';
import { REPO_ROOT } from '../support/warden-test-env';

describe('the workflow bundle fingerprint', () => {
  it('covers every project source file in the bundle', async () => {
    const bundle = await workflowBundle();
    // The SDK inlines the source map at the end of the code.
    const inline = /sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)\s*$/.exec(bundle.code);
    expect(inline, 'the bundle carries an inline source map').not.toBeNull();
    const sources: string[] = JSON.parse(Buffer.from(inline![1]!, 'base64').toString('utf8')).sources;
    const projectFiles = sources
      .map((s) => s.replace(/^webpack:\/\/[^/]*\//, ''))
      .map((s) => (s.startsWith('/') ? relative(REPO_ROOT, s) : s))
      .filter((s) => !s.includes('node_modules') && s.endsWith('.ts'));
    expect(projectFiles.length).toBeGreaterThan(10);
    const fingerprinted = new Set(await workflowSourceFiles());
    expect(projectFiles.filter((f) => !fingerprinted.has(f))).toEqual([]);
    expect(fingerprinted.has(join('tools', 'tool-descriptor.ts'))).toBe(true);
  }, 120_000);
});

describe('the packages in the workflow bundle', () => {
  it('hold one copy of each package version, with and without the interceptors', async () => {
    for (const modules of [[], WORKFLOW_INTERCEPTOR_MODULES]) {
      const bundle = await workflowBundle(undefined, { workflowInterceptorModules: modules });
      const ids = [...bundle.code.matchAll(/^\/\*\*\*\/ "(\.\/[^"\n]+)"$/gm)].map((m) => m[1] as string);
      // each package folder a module came from (the innermost node_modules/<name> or node_modules/@scope/<name>)
      const roots = new Set(ids.flatMap((id) => /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(id)?.[1] ?? []));
      const copies = new Map<string, string[]>();
      for (const root of roots) {
        const pkg = JSON.parse(readFileSync(join(REPO_ROOT, root, 'package.json'), 'utf8')) as { name: string; version: string };
        const id = `${pkg.name}@${pkg.version}`;
        copies.set(id, [...(copies.get(id) ?? []), root]);
      }
      expect(roots.size).toBeGreaterThan(5);
      expect([...copies].filter(([, at]) => at.length > 1)).toEqual([]);
    }
  }, 300_000);
});
