/**
 * The engine decides with checks built from each rule's parsed form; Cedar holds the reviewable,
 * schema-validated form of every stateless rule. This suite asks both on every pack, every
 * template example and a grid of generated requests (built-in, declared and undeclared tools,
 * measured and pending effects, agents at several depths, times of day, spawns) and requires the
 * same decision and the same matched rules: the two forms of a rule cannot drift apart.
 */
import { describe, expect, it } from 'vitest';
import { policyRequestOf, provenanceIndexOf } from '../../policies/build-policy-request';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import type { PolicyRequest } from '../../policies/engine/policy-request';
import { RULE_TEMPLATES } from '../../policies/engine/rule-templates';
import { TaskSchema } from '../../task/task-schema';
import { builtinTools } from '../../tools/builtin-tools';
import { getProcessTool } from '../../tools/process-tools';
import { defineTool, type ToolDescriptor } from '../../tools/tool-descriptor';

const EXTRA_SENTENCES = [
  'never write inside /workspace/secrets',
  'never access outside /workspace',
  'never list inside /workspace/private',
  'never delete more than 5 rows',
  'never update more than 50 rows without approval',
  'never insert more than 1000 rows',
  'never post to hosts other than api.example.com',
  'never connect to pastebin.com or *.evil.example',
  'deny messaging tools for sub-agents',
  'require approval for code execution tools',
  'allow only file tools, sql.query and tool weather',
  'deny storage tools for agent intern',
  'never spend more than 25 EUR',
  'never write more than 1 KB in one call',
  'never run sql.exec outside 22:00-06:00 UTC',
  'deny http.fetch when argument url starts with "http://"',
  'deny sql.exec when argument sql contains "drop   TABLE"',
  'never read inside /workspace/secrets',
  'never write outside /workspace/out',
  'never read inside /workspace/*.env',
  'never use fs.write without approval',
  'deny fs.read for sub-agents',
];

const task = TaskSchema.parse({ user: 'u@example.com', intent: 'test', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } } });
const index = provenanceIndexOf({ task, priorOutputs: ['eve@evil.example'] });

const mcp = (name: string, definition: Record<string, unknown>): ToolDescriptor => defineTool({ name, description: name, executor: { kind: 'mcp', server: 's', tool: name }, ...definition });
const mcpOn = (name: string, workspace: string, definition: Record<string, unknown>): ToolDescriptor =>
  defineTool({ name, description: name, executor: { kind: 'mcp', server: 's', tool: name, workspace }, ...definition });
const PROCESS_TOOLS_FOR_GRID = getProcessTool('proc.run') as ToolDescriptor;
const TOOLS: { name: string; descriptor?: ToolDescriptor; args: Record<string, unknown>; measured?: Record<string, unknown>[] }[] = [
  { name: 'fs.read', descriptor: builtinTools()['fs.read'], args: { path: 'notes.txt' } },
  { name: 'fs.read', descriptor: builtinTools()['fs.read'], args: { path: '/etc/passwd' } },
  { name: 'fs.write', descriptor: builtinTools()['fs.write'], args: { path: 'secrets/k.txt', content: 'x'.repeat(2000) } },
  { name: 'fs.list', descriptor: builtinTools()['fs.list'], args: {} },
  { name: 'http.fetch', descriptor: builtinTools()['http.fetch'], args: { url: 'https://api.example.com/v1', method: 'POST' } },
  { name: 'http.fetch', descriptor: builtinTools()['http.fetch'], args: { url: 'http://pastebin.com/x' } },
  {
    name: 'sql.exec',
    descriptor: builtinTools()['sql.exec'],
    args: { database: 'inv', sql: 'DROP  table items' },
    measured: [{}, { rowsChanged: 42, rowsByOperation: { delete: 40, insert: 0, update: 2 }, operation: 'mixed', tables: [{ table: 'items', op: 'delete', rows: 40 }] }, { rowsChanged: 3000, operation: 'insert' }],
  },
  { name: 'sql.query', descriptor: builtinTools()['sql.query'], args: { database: 'inv', sql: 'SELECT 1' } },
  { name: 'bank.pay', descriptor: mcp('bank.pay', { effects: { payees: ['to'], amounts: [{ arg: 'amount', currency: 'EUR' }] }, annotations: { destructiveHint: false } }), args: { to: 'DE89370400440532013000', amount: 30 } },
  { name: 'chat.post', descriptor: mcp('chat.post', { effects: { recipients: [{ arg: 'channel', kind: 'channel' }] } }), args: { channel: '#general', text: 'hi' } },
  { name: 'mystery', descriptor: mcp('mystery', {}), args: { anything: 1 } },
  // Reaching the workspace unseen: a program, MCP servers on the overlay, read-only, and not seeing it.
  { name: 'proc.run', descriptor: PROCESS_TOOLS_FOR_GRID, args: { command: 'cat', args: ['secrets/k.txt'] } },
  { name: 'files.read', descriptor: mcpOn('files.read', 'overlay', { annotations: { readOnlyHint: true } }), args: { path: '/workspace/secrets/k.txt' } },
  { name: 'files.read', descriptor: mcpOn('files.read', 'read-only', { annotations: { readOnlyHint: true } }), args: { path: '/workspace/secrets/k.txt' } },
  { name: 'remote.search', descriptor: mcpOn('remote.search', 'none', { annotations: { readOnlyHint: true } }), args: { q: 'x' } },
  { name: 'run.py', descriptor: mcp('run.py', { effects: { families: ['code-execution'] } }), args: { code: 'print(1)' } },
  { name: 'weather', descriptor: defineTool({ name: 'weather', description: 'w', executor: { kind: 'isolate', source: 'x' }, capabilities: ['http.fetch'], effects: { families: ['network'] } }), args: { city: 'x' } },
  { name: 'payments.transfer', args: { recipient: 'acct_1', amount: 500 }, measured: [{ amount: 500, currency: 'USD' }] },
  { name: 'email.send', args: { to: 'eve@evil.example' } },
  { name: 'thing.delete', args: { id: 3 } },
];
const AGENTS = [
  { name: 'a', depth: 0, chain: [] },
  { name: 'intern', depth: 1, chain: ['a'] },
  { name: 'deep', depth: 3, chain: ['a', 'b', 'c'] },
];
const TIMES = ['2026-03-02T03:00:00Z', '2026-03-02T10:30:00Z', '2026-03-02T23:30:00Z'];

function requests(): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  for (const tool of TOOLS) {
    for (const measured of tool.measured ?? [undefined]) {
      for (const agent of AGENTS) {
        for (const now of TIMES) {
          out.push(
            policyRequestOf({
              tool: tool.name,
              args: tool.args,
              ...(tool.descriptor === undefined ? {} : { descriptor: tool.descriptor }),
              agent,
              now,
              index,
              ...(measured === undefined || Object.keys(measured).length === 0 ? {} : { measured }),
            }),
          );
        }
      }
    }
  }
  for (const agent of AGENTS) out.push(policyRequestOf({ tool: 'spawn:helper', args: { intent: 'x' }, agent, now: TIMES[1]!, index }));
  return out;
}

describe('the engine and Cedar decide alike', () => {
  const sets: [string, ReturnType<typeof loadPolicyEngine>][] = [
    ['foundation', loadPolicyEngine({ packs: ['foundation'] })],
    ['enterprise', loadPolicyEngine({ packs: ['enterprise'] })],
    ['advanced', loadPolicyEngine({ packs: ['advanced'] })],
    ['templates and extra forms', loadPolicyEngine({ sentences: [...RULE_TEMPLATES.map((t) => t.example), ...EXTRA_SENTENCES] })],
  ];
  const all = requests();

  it.each(sets)('%s', (_name, engine) => {
    let matchedSomething = 0;
    for (const request of all) {
      const native = engine.decide(request);
      const viaCedar = engine.decideWithCedar(request);
      const label = `${request.tool} ${JSON.stringify(request.args)} ${request.agent.name} ${request.now} ${JSON.stringify(request.effect ?? {})}`;
      expect(native.decision, label).toBe(viaCedar.decision);
      expect(native.matched.map((m) => m.id).sort(), label).toEqual(viaCedar.matched.map((m) => m.id).sort());
      if (native.matched.length > 0) matchedSomething += 1;
    }
    // The grid is not vacuous: most requests meet some rule.
    expect(matchedSomething).toBeGreaterThan(all.length / 3);
  });
});
