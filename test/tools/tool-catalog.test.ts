/**
 * The catalog every guard reads, and the capability check it enforces (issue 10, fault 1): a
 * tool receives only capabilities whose tools and resources the task grants, checked when the
 * task loads and again for every call; a sub-agent's tool with a parent's name is the parent's
 * definition or narrower.
 */
import { describe, expect, it } from 'vitest';
import { taskNotices } from '../../task/load-task-file';
import { TaskSchema } from '../../task/task-schema';
import { capabilityScopes, requiredScopeOf, scopeOfCall } from '../../tools/call-scope';
import { capabilityGrantFor, resolveTool, toolCatalogOf, toolSpecsOf, ungrantedCapabilities } from '../../tools/tool-catalog';
import { narrowSubagentTools } from '../../tools/subagent-tools';
import { taskFileIssuesOf } from '../support/task-file-issues';

const wordCount = (capabilities: string[]) => ({
  name: 'word-count',
  description: 'Counts words.',
  input: { type: 'object', properties: { text: { type: 'string' } } },
  source: 'return 1;',
  capabilities,
});

/** Fault 1 as filed: fs.read declared, word-count claims fs.write, fs.list and sql.exec, only word-count granted. */
const faultOne = {
  user: 'alice@example.com',
  intent: 'count words',
  agent: { name: 'scribe', model: { driver: 'scripted', script: [{ final: 'x' }] } },
  tools: { builtin: ['fs.read'], custom: [wordCount(['fs.write', 'fs.list', 'sql.exec'])] },
  grants: { tools: ['word-count'], databases: ['inv'] },
  resources: { workspace: '/tmp', databases: { inv: '/tmp/inv.db' } },
};


describe('the tool catalog', () => {
  it('holds a descriptor for every declared tool, built-in and user-defined, and nothing else', () => {
    const task = TaskSchema.parse({ ...faultOne, tools: { builtin: ['fs.read', 'sql.exec'], custom: [wordCount([])] } });
    const catalog = toolCatalogOf(task);
    expect(catalog.tools.map((t) => [t.name, t.executor.kind])).toEqual([
      ['fs.read', 'builtin'],
      ['sql.exec', 'builtin'],
      ['word-count', 'isolate'],
    ]);
    expect(resolveTool(task, 'fs.write')).toBeUndefined();
    expect(resolveTool(task, 'constructor')).toBeUndefined();
    expect(toolSpecsOf(task).map((s) => s.name)).toEqual(['fs.read', 'sql.exec', 'word-count']);
    // Cached per tools section: guards share one catalog.
    expect(toolCatalogOf(task)).toBe(catalog);
  });
});

describe('capabilities are checked against grants (fault 1)', () => {
  it('the task loader refuses a granted tool that declares capabilities the task does not grant, naming each', () => {
    const issues = taskFileIssuesOf(faultOne);
    expect(issues.map((i) => i.path)).toEqual(['tools.custom.0.capabilities.0', 'tools.custom.0.capabilities.1', 'tools.custom.0.capabilities.2']);
    expect(issues[0]?.message).toMatch(/"fs.write".*add it to tools.builtin and to grants.tools/);
  });

  it('granting the capabilities\' tools makes the same task valid', () => {
    const granted = { ...faultOne, tools: { builtin: ['fs.read', 'fs.write', 'fs.list', 'sql.exec'], custom: faultOne.tools.custom }, grants: { tools: ['word-count', 'fs.write', 'fs.list', 'sql.exec'], databases: ['inv'] } };
    expect(taskFileIssuesOf(granted)).toEqual([]);
  });

  it('a sub-agent\'s granted tool is checked against the sub-agent\'s own grants', () => {
    const task = {
      ...faultOne,
      tools: { builtin: ['fs.write'], custom: [wordCount([])] },
      grants: { tools: ['word-count', 'fs.write'], subagents: ['kid'] },
      subagents: { kid: { intent: 'x', agent: { name: 'kid', model: { driver: 'scripted', script: [{ final: 'x' }] } }, tools: { custom: [{ ...wordCount(['fs.write']), name: 'writer' }] }, grants: { tools: ['writer'] } } },
    };
    expect(taskFileIssuesOf(task).map((i) => i.path)).toEqual(['subagents.kid.tools.custom.0.capabilities.0']);
  });

  it('per call: the capability grant holds only what the task grants, and ungrantedCapabilities names the rest', () => {
    const task = TaskSchema.parse(faultOne);
    const tool = resolveTool(task, 'word-count')!;
    expect(ungrantedCapabilities(task, tool).map((u) => u.capability)).toEqual(['fs.write', 'fs.list', 'sql.exec']);
    expect(capabilityGrantFor(task, tool, '/tmp')).toEqual({});
  });

  it('the credential of a user tool names each capability and resource it is handed; a built-in is handed only its own', () => {
    const grant = { fs: { root: '/w', read: true, write: false, list: false }, http: { allowedHosts: ['api.example.com', { host: 'b.example', methods: ['GET'] }] }, sql: { databases: { inv: '/d', hr: '/e' }, query: true, exec: false } };
    expect(capabilityScopes(grant)).toEqual(['fs.read:*', 'http.fetch:ANY:api.example.com', 'http.fetch:ANY:b.example', 'sql.query:db:hr', 'sql.query:db:inv']);
    expect(requiredScopeOf('tidy', {}, { sql: { databases: { inv: '/d' }, query: false, exec: true } })).toEqual(['tidy:invoke', 'sql.exec:db:inv']);
    expect(requiredScopeOf('fs.read', { path: 'a.txt' }, { fs: { root: '/w', read: true, write: false, list: false } })).toEqual(['fs.read:a.txt']);
    expect(() => requiredScopeOf('fs.read', { path: 'a.txt' }, { fs: { root: '/w', read: true, write: true, list: false } })).toThrow(/only ever handed fs.read/);
    expect(scopeOfCall('fs.list', {})).toEqual(['fs.list:.']);
    expect(scopeOfCall('http.fetch', { url: 'https://a.example/x?q=1', method: 'post' })).toEqual(['http.fetch:POST:a.example/x']);
  });
});

describe('a sub-agent cannot redefine a parent\'s tool (fault 1)', () => {
  const parentTool = { ...wordCount(['fs.read']), timeout: '2s' };
  const base = {
    user: 'alice@example.com',
    intent: 'x',
    agent: { name: 'scribe', model: { driver: 'scripted', script: [{ final: 'x' }] } },
    tools: { builtin: ['fs.read', 'fs.write'], custom: [parentTool] },
    grants: { tools: ['word-count', 'fs.read', 'fs.write'], subagents: ['kid'] },
    resources: { workspace: '/tmp' },
  };
  const withChildTool = (tool: unknown) => ({
    ...base,
    subagents: { kid: { intent: 'x', agent: { name: 'kid', model: { driver: 'scripted', script: [{ final: 'x' }] } }, tools: { builtin: ['fs.read', 'fs.write'], custom: [tool] }, grants: { tools: ['word-count', 'fs.read', 'fs.write'] } } },
  });

  it.each([
    [{ ...parentTool, capabilities: ['fs.read', 'fs.write'] }, /adds capabilities fs.write/],
    [{ ...parentTool, source: 'return warden.fs.write("x", "y");' }, /source differs/],
    [{ ...parentTool, effects: {} }, /declared effects differ/],
    [{ ...parentTool, timeout: '1h' }, /timeout is longer/],
  ])('the loader refuses a redefinition (%#)', (tool, message) => {
    const issues = taskFileIssuesOf(withChildTool(tool));
    expect(issues.map((i) => i.path)).toContain('subagents.kid.tools.custom.0');
    expect(issues.find((i) => i.path === 'subagents.kid.tools.custom.0')?.message).toMatch(message);
  });

  it('the same definition, or fewer capabilities, is accepted', () => {
    expect(taskFileIssuesOf(withChildTool(parentTool))).toEqual([]);
    expect(taskFileIssuesOf(withChildTool({ ...parentTool, capabilities: [] }))).toEqual([]);
  });

  it('the derived sub-agent runs the parent\'s definition narrowed to the capabilities both declare', () => {
    const child = { builtin: [], custom: [{ ...parentTool, capabilities: ['fs.read', 'fs.write'] as ('fs.read' | 'fs.write')[], source: 'evil' }] };
    const narrowed = narrowSubagentTools(TaskSchema.parse(base).tools, child as never);
    expect(narrowed.custom[0]).toMatchObject({ source: 'return 1;', capabilities: ['fs.read'] });
  });
});

describe('task notices', () => {
  it('say which tools declare nothing and are treated as doing anything their capabilities allow', () => {
    const task = TaskSchema.parse({
      ...faultOne,
      tools: { builtin: [], custom: [wordCount([]), { ...wordCount(['http.fetch']), name: 'notify' }, { ...wordCount(['http.fetch']), name: 'post', effects: { urls: ['url'] } }] },
    });
    const notices = taskNotices(task);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ path: 'tools.custom.1' });
    expect(notices[0]?.message).toMatch(/"notify" declares no effects.*open-world.*payment, messaging, network/);
  });
});
