/**
 * Open finding (8228ce9, tools/builtin-tools.ts `lazyFrozenRecord`): `BUILTIN_TOOLS` is a Proxy
 * documented as "from then on that record in every respect", but operations that do not go through
 * a Proxy's traps see its raw target:
 *
 * - `util.inspect` / `console.log` read the target directly (Node inspects a Proxy's target without
 *   calling traps): before anything else read the record it prints `{}`, an empty set of built-ins;
 * - `structuredClone`, `v8.serialize` and `postMessage` refuse every Proxy ("could not be
 *   cloned"), where the frozen record clones (the record cannot be handed to a worker thread or
 *   sandbox host any more);
 * - `util.types.isProxy` tells it apart.
 *
 * Severity: low. Nothing in Warden's own code clones or logs the record today (it reads it through
 * `getBuiltinTool` only), so no check is skipped; but the exported value is not what its type and
 * docstring promise, and a diagnostic that prints it lies about the built-ins before first use.
 *
 * Suggested fix: do not export the record (the module's callers need only `getBuiltinTool` /
 * `isBuiltinToolName`), or export a function `builtinTools()` returning the frozen record built on
 * first call, instead of a Proxy standing in for it.
 *
 * Real parts: the module as loaded, afresh (no mocks).
 */
import { inspect } from 'node:util';
import { serialize } from 'node:v8';
import { describe, expect, it, vi } from 'vitest';

async function freshModule() {
  vi.resetModules();
  return import('../../../tools/builtin-tools.js');
}

describe('BUILTIN_TOOLS behaves as the frozen record it stands for', () => {
  it('util.inspect before first use shows the six built-ins, as after', async () => {
    const { BUILTIN_TOOLS } = await freshModule();
    const before = inspect(BUILTIN_TOOLS, { depth: 0 });
    void Object.keys(BUILTIN_TOOLS);
    const after = inspect(BUILTIN_TOOLS, { depth: 0 });
    expect(before).toBe(after);
  });

  it('structuredClone and v8.serialize clone it as they clone the frozen record', async () => {
    const { BUILTIN_TOOLS } = await freshModule();
    const record = Object.freeze({ ...BUILTIN_TOOLS });
    expect(Object.keys(structuredClone(record))).toHaveLength(6);
    const cloned = (() => {
      try {
        return Object.keys(structuredClone(BUILTIN_TOOLS));
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
    })();
    expect(cloned).toEqual(Object.keys(record));
    expect(() => serialize(BUILTIN_TOOLS)).not.toThrow();
  });
});
