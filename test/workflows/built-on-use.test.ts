/**
 * Every workflow run evaluates Warden's modules afresh (workflows/shared-modules.ts says why), so
 * what a module builds when it loads, every run pays for, used or not (issue 17). Two such builds
 * are made on first use: the built-in tool descriptors (six `defineTool` zod checks, needed only
 * by a task that names a built-in) and the approval and kill Update schemas (needed only by a run
 * that validates one). Held here: loading builds neither, a name check builds nothing, the first
 * use builds once, and what is built behaves as before (the same records, frozen; the same
 * acceptances and refusals).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';

const counted = vi.hoisted(() => ({ defineTool: 0, strictObject: 0 }));

vi.mock('../../tools/tool-descriptor', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../tools/tool-descriptor')>();
  return {
    ...original,
    defineTool: (...args: Parameters<typeof original.defineTool>) => {
      counted.defineTool += 1;
      return original.defineTool(...args);
    },
  };
});

vi.mock('zod', async (importOriginal) => {
  const original = await importOriginal<typeof import('zod')>();
  const strictObject = ((...args: Parameters<typeof original.z.strictObject>) => {
    counted.strictObject += 1;
    return original.z.strictObject(...args);
  }) as typeof original.z.strictObject;
  return { ...original, z: { ...original.z, strictObject } };
});

describe('the built-in tool descriptors, built on first use', () => {
  let tools: typeof import('../../tools/builtin-tools.js');

  beforeAll(async () => {
    counted.defineTool = 0;
    tools = await import('../../tools/builtin-tools.js');
  });

  it('are not built when the module loads, nor by a name check', () => {
    expect(counted.defineTool).toBe(0);
    expect(tools.isBuiltinToolName('add')).toBe(false);
    expect(tools.isBuiltinToolName('constructor')).toBe(false);
    expect(tools.isBuiltinToolName('fs.read')).toBe(true);
    expect(tools.getBuiltinTool('add')).toBeUndefined();
    expect(counted.defineTool).toBe(0);
  });

  it('are built once, on the first read, and are then the same frozen records', () => {
    const first = tools.getBuiltinTool('fs.read');
    expect(counted.defineTool).toBe(tools.BUILTIN_TOOL_NAMES.length);
    expect(tools.builtinTools()['fs.read']).toBe(first);
    expect(Object.keys(tools.builtinTools()).sort()).toEqual([...tools.BUILTIN_TOOL_NAMES].sort());
    expect(counted.defineTool).toBe(tools.BUILTIN_TOOL_NAMES.length);
    expect(Object.isFrozen(tools.builtinTools())).toBe(true);
    expect(Object.hasOwn(tools.builtinTools(), 'constructor')).toBe(false);
    expect('sql.exec' in tools.builtinTools()).toBe(true);
    expect(() => {
      (tools.builtinTools() as Record<string, unknown>)['fs.read'] = first;
    }).toThrow(TypeError);
    expect(() => {
      (tools.builtinTools() as Record<string, unknown>)['fs.delete'] = first;
    }).toThrow(TypeError);
    expect(() => delete (tools.builtinTools() as Record<string, unknown>)['fs.read']).toThrow(TypeError);
    expect(tools.builtinTools()['fs.delete' as 'fs.read']).toBeUndefined();
    expect({ ...tools.builtinTools() }).toEqual(Object.fromEntries(tools.BUILTIN_TOOL_NAMES.map((n) => [n, tools.getBuiltinTool(n)])));
  });
});

describe('the approval and kill Update schemas, built on first use', () => {
  let definitions: typeof import('../../workflows/definitions.js');

  beforeAll(async () => {
    counted.strictObject = 0;
    definitions = await import('../../workflows/definitions.js');
  });

  it('are not built when the module loads', () => {
    expect(counted.strictObject).toBe(0);
  });

  it('are built once each and accept and refuse what they did', () => {
    const approval = definitions.approvalDecisionSchema();
    expect(definitions.approvalDecisionSchema()).toBe(approval);
    expect(approval.safeParse({ requestId: 'r1', approved: true, reason: 'fine', signature: {} }).success).toBe(true);
    expect(approval.safeParse({ requestId: '', approved: true, signature: {} }).success).toBe(false);
    expect(approval.safeParse({ requestId: 'r1', approved: true, reason: 'bad \ud800', signature: {} }).success).toBe(false);
    expect(approval.safeParse({ requestId: 'r1', approved: true, signature: {}, extra: 1 }).success).toBe(false);
    const kill = definitions.killRequestSchema();
    expect(definitions.killRequestSchema()).toBe(kill);
    const signature = { protected: 'p', payload: 'q', signature: 's' };
    expect(kill.safeParse({ requestedAt: '2026-12-01T04:00:00Z', signature }).success).toBe(true);
    expect(kill.safeParse({ requestedAt: 'yesterday', signature }).success).toBe(false);
    const unsigned = kill.safeParse({ requestedAt: '2026-12-01T04:00:00Z' });
    expect(unsigned.success).toBe(false);
    expect(unsigned.error?.issues[0]?.message).toContain('a kill must be signed');
    // Approval: its object; kill: its object and its signature's.
    expect(counted.strictObject).toBe(3);
  });
});
