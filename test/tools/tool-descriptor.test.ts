/**
 * The tool descriptor: one `defineTool` value per tool, with fail-closed defaults, effect
 * profiles bounded by capabilities, and the six built-ins declared through it.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_TOOL_NAMES, builtinTools } from '../../tools/builtin-tools';
import { entriesAt, leavesAt } from '../../tools/argument-values';
import { defineTool, EFFECT_FAMILIES, resolvedAnnotations, ToolDescriptorSchema } from '../../tools/tool-descriptor';

const isolate = (source = 'return 1;') => ({ kind: 'isolate' as const, source });

describe('defineTool', () => {
  it('fills defaults, validates and deep-freezes the descriptor', () => {
    const tool = defineTool({ name: 'pure.calc', description: 'adds', executor: isolate() });
    expect(ToolDescriptorSchema.parse(tool)).toEqual(tool);
    expect(tool.inputSchema).toEqual({ type: 'object' });
    expect(tool.effects.recipients).toEqual([]);
    expect(Object.isFrozen(tool.profile.families)).toBe(true);
    expect(() => {
      (tool as { name: string }).name = 'x';
    }).toThrow(TypeError);
  });

  it.each([
    [{ name: 'Bad Name', description: 'x', executor: isolate() }, /name/],
    [{ name: 'a.b', description: '', executor: isolate() }, /description/],
    [{ name: 'a.b', description: 'x', executor: { kind: 'wasm' } }, /executor/],
    [{ name: 'a.b', description: 'x', executor: isolate(), capabilities: ['fs.delete'] }, /capabilities/],
    [{ name: 'a.b', description: 'x', executor: isolate(), effects: { recipients: ['not a pointer'] } }, /effects\.recipients/],
    [{ name: 'a.b', description: 'x', executor: { kind: 'mcp', server: 'm', tool: 't' }, capabilities: ['fs.read'] }, /only builtin and isolate/],
    [{ name: 'a.b', description: 'x', executor: { kind: 'builtin', capability: 'fs.read', source: 'x' }, capabilities: ['fs.write'] }, /exactly its own capability/],
  ])('refuses a malformed definition with a TypeError naming the field (%#)', (definition, message) => {
    expect(() => defineTool(definition as never)).toThrow(message);
  });

  it('reads bare argument names as JSON pointers and shorthand effect entries as full ones', () => {
    const tool = defineTool({
      name: 'mail.send',
      description: 'sends mail',
      executor: { kind: 'mcp', server: 'mail', tool: 'send' },
      effects: { recipients: ['to', { arg: '/cc/*', kind: 'email' }], amounts: [{ arg: 'fee', currency: 'eur' }], urls: ['link'] },
    });
    expect(tool.effects.recipients).toEqual([
      { arg: '/to', kind: 'any' },
      { arg: '/cc/*', kind: 'email' },
    ]);
    expect(tool.effects.amounts).toEqual([{ arg: '/fee', currency: 'EUR', minorUnits: false }]);
    expect(tool.effects.urls).toEqual([{ arg: '/link' }]);
    // Declared effect kinds imply their families.
    expect(tool.profile.families).toEqual(['payment', 'messaging', 'network']);
  });
});

describe('effect profiles', () => {
  it('an MCP or process tool that declares nothing is destructive, open-world, in every family, not undoable (fail closed)', () => {
    for (const executor of [
      { kind: 'mcp' as const, server: 's', tool: 't' },
      { kind: 'process' as const, program: 'p' },
    ]) {
      const tool = defineTool({ name: 'mystery', description: 'does things', executor });
      expect(tool.profile).toMatchObject({ declared: false, readOnly: false, destructive: true, openWorld: true, undoable: false, readsPrivate: true, readsSource: 'unknown' });
      expect(tool.profile.families).toEqual([...EFFECT_FAMILIES]);
      expect(resolvedAnnotations(tool)).toEqual({ readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true });
    }
  });

  it('MCP hints as declared: a read-only tool is not destructive, needs no undo, and is idempotent', () => {
    const tool = defineTool({ name: 'cal.list', description: 'lists events', executor: { kind: 'mcp', server: 'cal', tool: 'list' }, annotations: { readOnlyHint: true, openWorldHint: false } });
    expect(tool.profile).toMatchObject({ declared: true, readOnly: true, destructive: false, idempotent: true, openWorld: false, undoable: true, undo: [] });
    expect(tool.profile.families).toEqual([]);
  });

  it('a declared compensating tool makes an MCP tool undoable', () => {
    const tool = defineTool({ name: 'cal.add', description: 'adds', executor: { kind: 'mcp', server: 'cal', tool: 'add' }, compensate: 'cal.remove' });
    expect(tool.profile.undo).toEqual([{ kind: 'tool', tool: 'cal.remove' }]);
    expect(tool.profile.undoable).toBe(true);
  });

  it('an isolate tool is bounded by its capabilities, whatever it declares', () => {
    const pure = defineTool({ name: 'count', description: 'counts', executor: isolate() });
    expect(pure.profile).toMatchObject({ declared: false, readOnly: true, destructive: false, openWorld: false, families: [], readsPrivate: false, undo: [] });
    // Claiming to be read-only does not make a tool with sql.exec read-only.
    const liar = defineTool({ name: 'tidy', description: 'tidies', executor: isolate(), capabilities: ['sql.exec'], annotations: { readOnlyHint: true } });
    expect(liar.profile).toMatchObject({ readOnly: false, destructive: true, families: ['storage'], undo: [{ kind: 'sql-journal' }] });
    // Declaring network effects without a network capability declares nothing the tool can do.
    const noNet = defineTool({ name: 'fake.pay', description: 'x', executor: isolate(), capabilities: ['fs.read'], effects: { payees: ['to'] } });
    expect(noNet.profile.families).toEqual(['storage']);
  });

  it('an undeclared isolate tool with http.fetch may pay or message anyone: every family its capability reaches', () => {
    const tool = defineTool({ name: 'notify', description: 'posts', executor: isolate(), capabilities: ['http.fetch'] });
    expect(tool.profile).toMatchObject({ declared: false, openWorld: true, undoable: false });
    expect(tool.profile.families).toEqual(['payment', 'messaging', 'network']);
    const declared = defineTool({ name: 'notify', description: 'posts', executor: isolate(), capabilities: ['http.fetch'], effects: { recipients: [{ arg: 'channel', kind: 'channel' }] } });
    expect(declared.profile.families).toEqual(['messaging', 'network']);
  });

  it('reads: workspace and database capabilities make the output private; declared reads win', () => {
    expect(defineTool({ name: 'r', description: 'x', executor: isolate(), capabilities: ['fs.read'] }).profile).toMatchObject({ readsSource: 'workspace', readsPrivate: true });
    expect(defineTool({ name: 'r', description: 'x', executor: isolate(), capabilities: ['http.fetch'] }).profile).toMatchObject({ readsSource: 'web', readsPrivate: false });
    expect(defineTool({ name: 'r', description: 'x', executor: isolate(), capabilities: ['http.fetch'], effects: { reads: { source: 'mail', private: true } } }).profile).toMatchObject({
      readsSource: 'mail',
      readsPrivate: true,
    });
  });
});

describe('the built-ins', () => {
  it.each(BUILTIN_TOOL_NAMES)('%s is a builtin-executor descriptor holding only its own capability, with declared effects', (name) => {
    const tool = builtinTools()[name];
    expect(tool.executor).toMatchObject({ kind: 'builtin', capability: name });
    expect(tool.capabilities).toEqual([name]);
    expect(tool.profile.declared).toBe(true);
    const { effects } = tool;
    const declaresWhatItTouches = effects.paths.length + effects.urls.length + effects.sql.length;
    expect(declaresWhatItTouches).toBe(1);
    expect(effects.reads).toBeDefined();
  });

  it('resolve to the MCP hints one would expect', () => {
    expect(resolvedAnnotations(builtinTools()['fs.read'])).toMatchObject({ readOnlyHint: true, openWorldHint: false });
    expect(resolvedAnnotations(builtinTools()['http.fetch'])).toMatchObject({ readOnlyHint: false, openWorldHint: true });
    expect(builtinTools()['http.fetch'].profile.families).toEqual(['network']);
    expect(builtinTools()['sql.exec'].profile.undo).toEqual([{ kind: 'sql-journal' }]);
    expect(builtinTools()['fs.write'].profile.undo).toEqual([{ kind: 'overlay' }]);
    expect(builtinTools()['http.fetch'].profile.undoable).toBe(false);
  });
});

describe('argument references', () => {
  const args = { to: 'a@x.org', cc: ['b@x.org', 'c@x.org'], payment: { iban: 'DE89', 'a/b': 1 }, constructor: undefined };
  it('expands `*` over arrays and objects and reports concrete pointers', () => {
    expect(entriesAt(args, '/cc/*')).toEqual([
      { pointer: '/cc/0', value: 'b@x.org' },
      { pointer: '/cc/1', value: 'c@x.org' },
    ]);
    expect(leavesAt(args, '/payment')).toEqual([
      { pointer: '/payment/iban', value: 'DE89' },
      { pointer: '/payment/a~1b', value: 1 },
    ]);
    expect(entriesAt(args, '/payment/a~1b')).toEqual([{ pointer: '/payment/a~1b', value: 1 }]);
  });

  it('never reads inherited properties', () => {
    expect(entriesAt({}, '/constructor')).toEqual([]);
    expect(entriesAt({}, '/__proto__')).toEqual([]);
    expect(entriesAt({ a: [1] }, '/a/length')).toEqual([]);
  });
});
