/** MCP tool names as Warden tool names: readable, valid, injective and reversible. */
import { describe, expect, it } from 'vitest';
import { ToolNameSchema } from '../../task/task-schema';
import { fromWardenToolPart, mcpWardenToolName, parseMcpWardenToolName, toWardenToolPart } from '../../mcp/mcp-tool-names';

const EXAMPLES: [string, string][] = [
  ['read_text_file', 'read_text_file'],
  ['createIssue', 'create-issue'],
  ['get-weather', 'get--weather'],
  ['v2.search', 'v2-_search'],
  ['2fa_check', 'q-02fa_check'],
  ['Echo', 'q-0-echo'],
  ['_private', 'q-0_private'],
  ['-', 'q-0--'],
  ['q-0', 'q--0'],
];

describe('MCP tool names', () => {
  it.each(EXAMPLES)('%s ↔ %s', (mcp, warden) => {
    expect(toWardenToolPart(mcp)).toBe(warden);
    expect(fromWardenToolPart(warden)).toBe(mcp);
    expect(ToolNameSchema.safeParse(`files.${warden}`).success).toBe(true);
  });

  it('is injective and reversible on random names from the whole MCP alphabet', () => {
    const alphabet = 'ABCXYZabcxyz0189_.-';
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i += 1) {
      const length = 1 + Math.floor(random() * 8);
      let name = '';
      for (let j = 0; j < length; j += 1) name += alphabet[Math.floor(random() * alphabet.length)];
      const warden = toWardenToolPart(name);
      expect(ToolNameSchema.safeParse(`s.${warden}`).success).toBe(true);
      expect(fromWardenToolPart(warden)).toBe(name);
      const earlier = seen.get(warden);
      if (earlier !== undefined) expect(earlier).toBe(name);
      seen.set(warden, name);
    }
  });

  it.each(['', 'a b', 'ä', 'x'.repeat(129), 'a/b'])('refuses %j, which MCP does not allow', (name) => {
    expect(() => toWardenToolPart(name)).toThrow(TypeError);
  });

  it.each(['q-0abc', 'a-0', 'a-', 'A', 'a-.b'])('decodes nothing from %j, which no MCP name maps to', (part) => {
    expect(fromWardenToolPart(part)).toBeUndefined();
  });

  it('splits <server>.<tool>', () => {
    expect(mcpWardenToolName('tickets', 'createIssue')).toBe('tickets.create-issue');
    expect(parseMcpWardenToolName('tickets.create-issue')).toEqual({ server: 'tickets', mcpName: 'createIssue' });
    expect(parseMcpWardenToolName('fs')).toBeUndefined();
  });
});
