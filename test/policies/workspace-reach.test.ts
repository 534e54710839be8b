/**
 * Tools whose reach inside the workspace Warden cannot see (a program run by `proc.run`, an MCP
 * server that is given the workspace) are judged as touching every path of it (fail closed):
 * path rules about any part of the workspace apply to them, a rule about the whole workspace's
 * outside does not, and a rule naming an fs built-in ("never use fs.write") covers every call that
 * can make that access unseen. A server given the workspace read-only only reads; a remote one
 * reaches none of it; tools acting through host capabilities keep being judged by their paths.
 */
import { describe, expect, it } from 'vitest';
import { policyRequestOf, provenanceIndexOf } from '../../policies/build-policy-request';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { pathRuleMatchesTree } from '../../policies/engine/rule-syntax';
import { TaskSchema } from '../../task/task-schema';
import { builtinTools } from '../../tools/builtin-tools';
import { descriptorOfMcpTool } from '../../tools/mcp-tools';
import { getProcessTool } from '../../tools/process-tools';
import { defineTool, isSandboxConfined, workspaceReachOf, type ToolDescriptor } from '../../tools/tool-descriptor';
import { McpServerSchema } from '../../mcp/mcp-server-config';

const NOW = '2026-03-02T10:00:00Z';
const task = TaskSchema.parse({ user: 'u@example.com', intent: 'summarise my notes', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } } });
const index = provenanceIndexOf({ task, priorOutputs: [] });

const mcpTool = (workspace: 'overlay' | 'read-only' | 'none' | undefined, annotations: Record<string, unknown> = { readOnlyHint: true }): ToolDescriptor =>
  defineTool({ name: 'files.read_text_file', description: 'read', executor: { kind: 'mcp', server: 'files', tool: 'read_text_file', ...(workspace === undefined ? {} : { workspace }) }, annotations });

const TOOLS: Record<string, { descriptor: ToolDescriptor; args: Record<string, unknown> }> = {
  'proc.run': { descriptor: getProcessTool('proc.run') as ToolDescriptor, args: { command: 'cat', args: ['secrets/key.txt'] } },
  'mcp on the overlay': { descriptor: mcpTool('overlay'), args: { path: '/workspace/secrets/key.txt' } },
  'mcp, view not recorded': { descriptor: mcpTool(undefined), args: { path: '/workspace/secrets/key.txt' } },
  'mcp read-only': { descriptor: mcpTool('read-only'), args: { path: '/workspace/secrets/key.txt' } },
  'mcp without the workspace': { descriptor: mcpTool('none'), args: { path: '/workspace/secrets/key.txt' } },
  'fs.read of notes': { descriptor: builtinTools()['fs.read'] as ToolDescriptor, args: { path: 'notes.txt' } },
};

function decide(sentence: string, tool: string) {
  const { descriptor, args } = TOOLS[tool] as (typeof TOOLS)[string];
  const engine = loadPolicyEngine({ sentences: [sentence], packs: [] });
  const request = policyRequestOf({ tool: descriptor.name, args, descriptor, agent: { name: 'a', depth: 0, chain: [] }, now: NOW, index });
  return { native: engine.decide(request).decision, cedar: engine.decideWithCedar(request).decision };
}

describe('workspace reach of each kind of tool', () => {
  it.each([
    ['proc.run', 'write'],
    ['mcp on the overlay', 'write'],
    ['mcp, view not recorded', 'write'],
    ['mcp read-only', 'read'],
    ['mcp without the workspace', 'none'],
    ['fs.read of notes', 'none'],
  ])('%s reaches %s', (tool, reach) => {
    expect(workspaceReachOf((TOOLS[tool] as (typeof TOOLS)[string]).descriptor)).toBe(reach);
  });

  it.each([
    [{ command: 'x' }, 'write', true],
    [{ command: 'x', workspace: 'read-only' }, 'read', true],
    [{ command: 'x', workspace: 'none' }, 'none', true],
    [{ command: 'x', hosts: ['api.example.com'] }, 'write', false],
    [{ url: 'https://mcp.example.com/mcp' }, 'none', false],
  ])('an MCP tool of server %j reaches %s of the workspace (confined: %s)', (config, reach, confined) => {
    const listing = { server: 'files', hash: 'h', tools: [{ name: 'files.read', mcpName: 'read', description: '', inputSchema: { type: 'object' } }] };
    const descriptor = descriptorOfMcpTool(listing as never, listing.tools[0] as never, McpServerSchema.parse(config));
    expect({ reach: workspaceReachOf(descriptor), confined: isSandboxConfined(descriptor) }).toEqual({ reach, confined });
  });
});

describe('path rules on tools that reach the workspace unseen (native and Cedar agree)', () => {
  it.each([
    // sentence, tool, decision
    ['never read inside /workspace/secrets', 'proc.run', 'deny'],
    ['never read inside /workspace/secrets', 'mcp on the overlay', 'deny'],
    ['never read inside /workspace/secrets', 'mcp, view not recorded', 'deny'],
    ['never read inside /workspace/secrets', 'mcp read-only', 'deny'],
    ['never read inside /workspace/secrets', 'mcp without the workspace', 'allow'],
    ['never read inside /workspace/secrets', 'fs.read of notes', 'allow'],
    ['never write inside /workspace/secrets', 'proc.run', 'deny'],
    // A read-only hint does not bound what the server's process writes to the overlay.
    ['never write inside /workspace/secrets', 'mcp on the overlay', 'deny'],
    ['never write inside /workspace/secrets', 'mcp read-only', 'allow'],
    ['never read inside /workspace/*.env', 'proc.run', 'deny'],
    // The whole reach is inside /workspace: the foundation rule does not stop every program.
    ['never write outside /workspace', 'proc.run', 'allow'],
    ['never write outside /workspace', 'mcp on the overlay', 'allow'],
    ['never write outside /workspace/out', 'proc.run', 'deny'],
    ['never access outside /workspace', 'mcp read-only', 'allow'],
    // A rule naming an fs built-in covers every call making that access unseen.
    ['never use fs.write without approval', 'proc.run', 'approval'],
    ['never use fs.write without approval', 'mcp on the overlay', 'approval'],
    ['never use fs.write without approval', 'mcp read-only', 'allow'],
    ['never use fs.write without approval', 'fs.read of notes', 'allow'],
    ['deny fs.read', 'mcp read-only', 'deny'],
    ['deny fs.read', 'mcp without the workspace', 'allow'],
  ])('"%s" on %s: %s', (sentence, tool, decision) => {
    expect(decide(sentence, tool)).toEqual({ native: decision, cedar: decision });
  });
});

describe('pathRuleMatchesTree', () => {
  it.each([
    [['/workspace/secrets'], 'inside', '/workspace', true],
    [['/workspace'], 'inside', '/workspace', true],
    [['/'], 'inside', '/workspace', true],
    [['/etc'], 'inside', '/workspace', false],
    [['/workspacex'], 'inside', '/workspace', false],
    [['/workspace/*.env'], 'inside', '/workspace', true],
    [['/etc/*'], 'inside', '/workspace', false],
    [['/workspace'], 'outside', '/workspace', false],
    [['/'], 'outside', '/workspace', false],
    [['/workspace/out'], 'outside', '/workspace', true],
    [['/workspace/*'], 'outside', '/workspace', true],
  ] as const)('%j %s, reach %s: %s', (paths, mode, root, expected) => {
    expect(pathRuleMatchesTree(paths, mode, root)).toBe(expected);
  });
});

describe('"deny destructive tools": confined to the sandbox or not', () => {
  const engine = loadPolicyEngine({ sentences: ['deny destructive tools'], packs: [] });
  const writer = (executor: Record<string, unknown>, annotations: Record<string, unknown> = { destructiveHint: true }) =>
    defineTool({ name: 'files.write_file', description: 'write', executor: { kind: 'mcp', server: 'files', tool: 'write_file', ...executor }, annotations });
  it.each([
    ['a stdio server without hosts (its changes stay in the overlay)', writer({ workspace: 'overlay', egress: false }), 'allow'],
    ['a stdio server with hosts', writer({ workspace: 'overlay', egress: true }), 'deny'],
    ['a remote server', writer({ workspace: 'none', egress: true }), 'deny'],
    ['a server whose egress is not recorded', writer({}), 'deny'],
    ['a server declaring nothing, egress not recorded', writer({}, {}), 'deny'],
    ['proc.run', getProcessTool('proc.run') as ToolDescriptor, 'allow'],
  ])('%s: %s', (_label, descriptor, decision) => {
    const request = policyRequestOf({ tool: descriptor.name, args: { path: '/workspace/x', content: 'x' }, descriptor, agent: { name: 'a', depth: 0, chain: [] }, now: NOW, index });
    expect({ native: engine.decide(request).decision, cedar: engine.decideWithCedar(request).decision }).toEqual({ native: decision, cedar: decision });
  });
});
