/**
 * Open finding (a241102, worker/prestarted-thread-worker.ts `parseBundleCode`): the fast worker
 * start's copy of the SDK's `parseWorkflowCode` is documented to do "everything else it does ...
 * the same way", but it reads a source map without a `file` (or with `file: null`) as `''`, so the
 * bundle's file name becomes the current folder (`resolve(cwd, '')`) and the worker starts. The
 * SDK (@temporalio/worker 1.24, worker.js) refuses such a bundle: `path.resolve(cwd, undefined)`
 * throws ERR_INVALID_ARG_TYPE, and `Worker.create` fails. So the same bundle starts a worker on the
 * fast path and fails on the SDK's own (another @temporalio/worker release, `knownSdkInternals`),
 * and on the fast path the workflow thread compiles the bundle under a folder's name: its stack
 * frames and the source map's `file` name a directory.
 *
 * Severity: low (Warden's own pre-built bundles carry `file`; a hand-made or third-party bundler's
 * bundle is what differs).
 *
 * Suggested fix: read `sourceMap.file` exactly as the SDK does (`codePath ?? sourceMap.file`, no
 * `?? ''`), or refuse a map without a string `file` with the SDK's message; table-test
 * `parseBundleCode` against the SDK's exported `parseWorkflowCode` over odd maps.
 *
 * Real parts: the SDK's own `parseWorkflowCode` as the reference.
 */
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { describe, expect, it } from 'vitest';
import { parseBundleCode } from '../../../worker/prestarted-thread-worker';

function bundleWithMap(map: unknown): string {
  return `var x = 1;\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`;
}

function outcome(parse: () => { filename: string }): string {
  try {
    return `ok ${parse().filename}`;
  } catch (error) {
    return `refused ${(error as Error).name}`;
  }
}

describe('parseBundleCode refuses what the SDK refuses and accepts what it accepts', () => {
  it.each([
    ['a map with a file', { version: 3, file: 'bundle.js', sources: [], mappings: '' }],
    ['a map without file', { version: 3, sources: [], mappings: '' }],
    ['a map with file: null', { version: 3, file: null, sources: [], mappings: '' }],
  ])('%s', (_what, map) => {
    const code = bundleWithMap(map);
    expect(outcome(() => parseBundleCode(code))).toBe(outcome(() => parseWorkflowCode(code)));
  });
});
