/**
 * `normalizePath` (rule-syntax.ts) gives every path one form: "/" separators, absolute (a relative
 * path is under the workspace), no empty, "." or ".." segment. A path already in that form is
 * returned as is without being split; this suite holds the function to the plain definition
 * (split, drop empty and ".", pop on "..", join) over every path built from a set of tricky
 * segments, so the shortcut can never answer differently.
 */
import { describe, expect, it } from 'vitest';
import { normalizePath, WORKSPACE_ROOT } from '../../policies/engine/rule-syntax';

/** The definition: split on "/" (after turning "\" into "/"), drop empty and "." segments, ".." removes the one before. */
function definition(path: string): string {
  const slashed = path.replace(/\\/g, '/');
  const absolute = slashed.startsWith('/') ? slashed : `${WORKSPACE_ROOT}/${slashed}`;
  const parts: string[] = [];
  for (const part of absolute.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

describe('normalizePath', () => {
  it('equals the split-and-join definition on every path of up to four tricky segments', () => {
    const segments = ['', '.', '..', '...', '.x', 'x.', '..x', 'a', 'b.c', '\\', 'a\\b', '~', ' ', '/', 'workspace'];
    let checked = 0;
    const visit = (path: string, depth: number): void => {
      for (const prefix of ['', '/']) {
        const candidate = prefix + path;
        expect(normalizePath(candidate), JSON.stringify(candidate)).toBe(definition(candidate));
        checked += 1;
      }
      if (depth === 0) return;
      for (const s of segments) visit(path === '' ? s : `${path}/${s}`, depth - 1);
    };
    visit('', 4);
    expect(checked).toBeGreaterThan(100_000);
  });

  it.each([
    ['notes.txt', '/workspace/notes.txt'],
    ['/workspace/out/report.md', '/workspace/out/report.md'],
    ['out//a/./b/../c/', '/workspace/out/a/c'],
    ['/', '/'],
    ['', '/workspace'],
    ['..', '/'],
    ['/etc/../..', '/'],
    ['a\\..\\b', '/workspace/b'],
    ['/.hidden/..x/x..', '/.hidden/..x/x..'],
  ])('%j is %j', (path, expected) => {
    expect(normalizePath(path)).toBe(expected);
  });
});
