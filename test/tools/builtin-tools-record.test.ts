/**
 * The built-in tool table is a plain frozen record, built on first use (issue 17; an attack
 * finding on 8228ce9): it was exported as a Proxy said to be the record "in every respect", but
 * what does not go through a Proxy's traps sees its bare target: `util.inspect` / `console.log`
 * before first use printed `{}`, and `structuredClone`, `v8.serialize` and `postMessage` refused
 * it. Held here for the whole module: no export is a Proxy, and the table, read first through
 * `inspect` or a clone, is the six built-ins.
 */
import { inspect, types } from 'node:util';
import { serialize } from 'node:v8';
import { describe, expect, it, vi } from 'vitest';

async function freshModule() {
  vi.resetModules();
  return import('../../tools/builtin-tools.js');
}

describe('the built-in tool table', () => {
  it('exports no Proxy', async () => {
    const module = (await freshModule()) as Record<string, unknown>;
    const exported = Object.entries(module).filter(([, value]) => typeof value === 'object' && value !== null);
    for (const [name, value] of exported) expect(types.isProxy(value), name).toBe(false);
    const { builtinTools } = await freshModule();
    expect(types.isProxy(builtinTools())).toBe(false);
  });

  it('inspected first, shows the six built-ins, as after any other read', async () => {
    const { builtinTools, BUILTIN_TOOL_NAMES } = await freshModule();
    const first = inspect(builtinTools(), { depth: 0 });
    for (const name of BUILTIN_TOOL_NAMES) expect(first).toContain(`'${name}'`);
    void Object.keys(builtinTools());
    expect(inspect(builtinTools(), { depth: 0 })).toBe(first);
  });

  it.each([
    ['structuredClone', (value: unknown) => Object.keys(structuredClone(value) as object)],
    ['v8.serialize', (value: unknown) => serialize(value).length > 0],
  ] as const)('clones with %s, first thing read', async (_, clone) => {
    const { builtinTools } = await freshModule();
    expect(() => clone(builtinTools())).not.toThrow();
  });

  it('is one frozen record, the same on every call', async () => {
    const { builtinTools, getBuiltinTool } = await freshModule();
    expect(builtinTools()).toBe(builtinTools());
    expect(Object.isFrozen(builtinTools())).toBe(true);
    expect(getBuiltinTool('fs.read')).toBe(builtinTools()['fs.read']);
  });
});
