/**
 * Regression (issue 17, was test/attacks/open/bundle-map-without-file-accepted.test.ts):
 * `parseBundleCode`, the fast worker start's copy of the SDK's `parseWorkflowCode`
 * (worker/prestarted-thread-worker.ts), read a source map without `file` (or `file: null`) as
 * `''`, so the worker started with the bundle named after the current folder where the SDK
 * refuses the bundle with a TypeError. It now reads `file` exactly as the SDK does.
 *
 * Table: every row is parsed by both, and the outcomes (code, map, file name, or the error's
 * name) must be the same.
 *
 * Real parts: the SDK's own `parseWorkflowCode` as the reference.
 */
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { describe, expect, it } from 'vitest';
import { parseBundleCode } from '../../worker/prestarted-thread-worker';

const MAP_MARK = '//# sourceMappingURL=data:application/json;base64,';

function bundleWithMapJson(json: string, prefix = 'var x = 1;\n'): string {
  return `${prefix}${MAP_MARK}${Buffer.from(json).toString('base64')}`;
}

function bundleWithMap(map: unknown): string {
  return bundleWithMapJson(JSON.stringify(map));
}

function outcome(parse: () => { code: string; sourceMap: unknown; filename: string }): string {
  try {
    const { code, sourceMap, filename } = parse();
    return `ok ${filename} ${JSON.stringify(sourceMap)} ${code}`;
  } catch (error) {
    return `refused ${(error as Error).name}`;
  }
}

const ROWS: ReadonlyArray<[string, string]> = [
  ['a map with a file', bundleWithMap({ version: 3, file: 'bundle.js', sources: [], mappings: '' })],
  ['a map with an absolute file', bundleWithMap({ version: 3, file: '/srv/bundle.js', sources: [], mappings: '' })],
  ['a map with a file in a folder', bundleWithMap({ version: 3, file: '../out/bundle.js', sources: [], mappings: '' })],
  ['a map without file', bundleWithMap({ version: 3, sources: [], mappings: '' })],
  ['a map with file: null', bundleWithMap({ version: 3, file: null, sources: [], mappings: '' })],
  ['a map with file: ""', bundleWithMap({ version: 3, file: '', sources: [], mappings: '' })],
  ['a map with a numeric file', bundleWithMap({ version: 3, file: 7, sources: [], mappings: '' })],
  ['a map with an object file', bundleWithMap({ version: 3, file: { a: 1 }, sources: [], mappings: '' })],
  ['a map that is null', bundleWithMapJson('null')],
  ['a map that is a string', bundleWithMapJson('"bundle.js"')],
  ['a map that is an array', bundleWithMapJson('[]')],
  ['a map that is not JSON', bundleWithMapJson('{not json')],
  ['a map with trailing white space', `${bundleWithMap({ version: 3, file: 'b.js', sources: [], mappings: '' })}\n  \n`],
  ['two maps (the last counts)', `${bundleWithMap({ version: 3, file: 'first.js' })}\n${bundleWithMap({ version: 3, file: 'last.js' })}`],
  ['a map at the very start', bundleWithMap({ version: 3, file: 'b.js' }).slice('var x = 1;\n'.length)],
  ['a map comment without base64', 'var x = 1;\n//# sourceMappingURL=data:application/json,{}'],
  ['no map', 'var x = 1;\n'],
];

describe('parseBundleCode refuses what the SDK refuses and accepts what it accepts, the same way', () => {
  it.each(ROWS)('%s', (_what, code) => {
    expect(outcome(() => parseBundleCode(code))).toBe(outcome(() => parseWorkflowCode(code)));
  });
});
