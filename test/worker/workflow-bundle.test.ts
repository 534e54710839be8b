/**
 * The cached workflow bundle is keyed by a fingerprint of the sources. Every project file the
 * bundler actually put in the bundle must be fingerprinted, or an edit to it would leave a stale
 * bundle running old workflow code (tools/ was once left out).
 */
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
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
