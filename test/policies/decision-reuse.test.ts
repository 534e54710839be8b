/**
 * What `engine.decide` keeps from one decision for the next (rule-groups.ts) never changes a
 * decision. It keeps: each matched rule's entry per reason (reused while its group's detail is the
 * same text), each path and host family member's answer per path or host text (trees apart), the
 * detail of a rate or total per count; it counts every rate window in one pass over the recent
 * calls; a scope of one exact tool name sums that tool's entry alone. Each is held here to a
 * definition that keeps nothing: `decideRuleByRule` (every rule's own check, in load order), and
 * for the sums and counts the state module's own loops (`totalOf`, `callsWithin`) over `coversTool`.
 * Decisions are made in sequences where the kept things change and come back (counts that grow,
 * paths and hosts that alternate, a path text met as a file and as a workspace tree), so a key
 * that missed an input would hand one decision another's answer.
 */
import { describe, expect, it } from 'vitest';
import { compileRule, type CompiledRule } from '../../policies/engine/compile-rule';
import { callsByTool, compileScope, coversTool, sumCovered, totalsByTool } from '../../policies/engine/evaluate-rule';
import { createPolicyEngine, decideRuleByRule } from '../../policies/engine/policy-engine';
import { parsePolicyRequest, type PolicyRequestInput } from '../../policies/engine/policy-request';
import { callsWithin, COUNTERS, emptyPolicyState, totalOf, type PolicyState } from '../../policies/engine/policy-state';
import type { ToolScope } from '../../policies/engine/rule-syntax';

/** mulberry32: a failure names a reproducible seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NOW = Date.UTC(2026, 2, 2, 10, 0, 0);
const AGENTS = [
  { name: 'assistant', depth: 0, chain: [], id: 'task-1' },
  { name: 'buyer', depth: 1, chain: ['assistant'], id: 'task-1/buyer' },
];
const TOOLS = ['fs.write', 'fs.read', 'http.fetch', 'sql.exec', 'pay.send', 'custom1.op1', 'custom2.op2', 'spawn:helper'];
const PATHS = ['/workspace', '/workspace/out', 'out/report.md', '/workspace/area3/x.txt', '/etc/passwd', '../climb', 'area3'];
const HOSTS = ['api.example.com', 'h3.example.com', 'evil.example', 'API.example.com', 'x.h3.example.com'];

/** Rules whose groups keep something: rates (minute, hour, one exact name, a family), totals (calls, spawns, amounts), per-call limits, path and host families, tool families. */
const SENTENCES = [
  'never make more than 3 calls per minute',
  'never make more than 6 calls per minute',
  'never call custom1.op1 more than 2 times per hour',
  'never call custom1.op1 more than 4 times per hour',
  'no more than 2 calls of custom2.op2 per minute',
  'never make more than 5 calls of file tools per minute',
  'never make more than 4 tool calls across the task',
  'never make more than 9 tool calls across the task',
  'never spawn more than 1 sub-agents across the task',
  'never spend more than $50 across the task and its sub-agents',
  'never spend more than $120 across the task and its sub-agents',
  'never delete more than 5 rows',
  'never delete more than 30 rows without explicit approval',
  'never write more than 2 files',
  'never write outside /workspace/out',
  'never write outside /workspace',
  'never write inside /workspace/area3',
  'never read outside /workspace/out',
  'never write inside /workspace/*.txt',
  'never fetch from any host except api.example.com',
  'never fetch from any host except *.h3.example.com',
  'never fetch from evil.example',
  'never fetch from h3.example.com or api.example.com',
  'deny custom1.op1',
  'allow only file tools and network tools',
];

function rulesOf(sentences: readonly string[]): CompiledRule[] {
  return sentences.map((sentence, i) => compileRule(sentence, `r:${i + 1}`, undefined, i % 7 === 5 ? 'shadow' : undefined));
}

function requestOf(rand: () => number, at: number): PolicyRequestInput {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const tool = pick(TOOLS);
  const args: Record<string, unknown> = {};
  if (tool.startsWith('fs.')) args.path = pick(PATHS);
  if (tool === 'fs.write') args.content = 'x';
  if (tool === 'http.fetch') args.url = `https://${pick(HOSTS)}/v1`;
  const effect: Record<string, unknown> = {};
  if (tool === 'sql.exec' && rand() < 0.8) Object.assign(effect, { rowsChanged: Math.floor(rand() * 40), operation: pick(['delete', 'update']) });
  if (tool === 'pay.send' && rand() < 0.8) effect.amount = Math.floor(rand() * 60);
  // The same path text as a file and as the workspace tree a program can reach.
  if (rand() < 0.2) effect.workspace = pick(['read', 'write']);
  if (rand() < 0.15) effect.paths = [{ path: pick(['/workspace', '/workspace/out', '/workspace/area3/x.txt']), access: pick(['read', 'write']) }];
  return { tool, args, agent: pick(AGENTS), ...(Object.keys(effect).length === 0 ? {} : { effect }), now: new Date(at).toISOString() };
}

/**
 * Runs a task on one engine: decides each request (against the reference), records it, moves the
 * clock; so counts grow and leave their windows while paths and hosts come back. Returns how many
 * decisions matched a rule with a detail.
 */
function runTask(rules: CompiledRule[], seed: number, steps: number): number {
  const engine = createPolicyEngine(rules);
  const rand = random(seed);
  let state: PolicyState = emptyPolicyState();
  let at = NOW;
  let detailed = 0;
  for (let i = 0; i < steps; i += 1) {
    // Steps of 0 to 40 s, sometimes an hour's jump: windows fill and empty.
    at += rand() < 0.05 ? 3_600_000 : Math.floor(rand() * 40_000);
    const input = requestOf(rand, at);
    const request = parsePolicyRequest(input);
    const decision = engine.decide(request, state);
    const label = `seed ${seed}, step ${i}: ${JSON.stringify(input)}`;
    expect(decision, label).toEqual(decideRuleByRule(rules, request, state));
    for (const m of [...decision.matched, ...(decision.shadow?.matched ?? [])]) {
      // Every entry a decision hands out may be handed out again: none can be written.
      expect(Object.isFrozen(m), label).toBe(true);
      if (m.reason !== rules.find((r) => r.id === m.id)?.reason) detailed += 1;
    }
    state = engine.recordExecution(state, request, { status: rand() < 0.9 ? 'ok' : 'error' });
  }
  return detailed;
}

describe('what one decision keeps never changes the next', () => {
  it.each([1, 2, 3, 4])('a task of 300 steps, seed %i: every decision equals every rule decided on its own', (seed) => {
    expect(runTask(rulesOf(SENTENCES), seed, 300)).toBeGreaterThan(300);
  });

  it('the same path text as a file, then as the workspace tree, then as a file again', () => {
    const rules = rulesOf(['never write outside /workspace/out', 'never write inside /workspace/area3', 'never read outside /workspace/out']);
    const engine = createPolicyEngine(rules);
    const agent = AGENTS[0] as (typeof AGENTS)[number];
    const now = new Date(NOW).toISOString();
    const asFile: PolicyRequestInput = { tool: 'fs.write', args: { path: '/workspace', content: 'x' }, agent, now };
    // A program that can write anywhere in the workspace (its reach: the tree under /workspace).
    const program = { executor: 'process', capabilityBound: true, capabilities: ['fs.write', 'fs.read'], families: [], declared: true, readOnly: false, destructive: false, openWorld: false, undoable: false, readsPrivate: false, declares: ['paths'] } as const;
    const asTree: PolicyRequestInput = { tool: 'files.sync', args: {}, agent, descriptor: { ...program, capabilities: [...program.capabilities], families: [], declares: [...program.declares] }, effect: { workspace: 'write' }, now };
    const decisions = [asFile, asTree, asFile, asTree].map((input) => {
      const request = parsePolicyRequest(input);
      const decision = engine.decide(request);
      expect(decision).toEqual(decideRuleByRule(rules, request));
      return decision;
    });
    // The file /workspace is outside /workspace/out only; the tree under it also reaches into /workspace/area3.
    expect(decisions[0]?.matched.map((m) => m.id)).toEqual(['r:1']);
    expect(decisions[1]?.matched.map((m) => m.id)).toContain('r:2');
    expect(decisions[2]).toEqual(decisions[0]);
    expect(decisions[3]).toEqual(decisions[1]);
  });

  it('a count that changes and comes back gives each decision its own reason', () => {
    const rules = rulesOf(['never make more than 1 calls per minute', 'never make more than 2 calls per minute']);
    const engine = createPolicyEngine(rules);
    const agent = AGENTS[0] as (typeof AGENTS)[number];
    let state = emptyPolicyState();
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    for (let i = 0; i < 3; i += 1) state = engine.recordExecution(state, { tool: 'fs.read', args: { path: 'a' }, agent, now: at(i * 1000) }, { status: 'ok' });
    // 3 calls in the minute, then 1 (two left it), then 3 again (the earlier state).
    const reasons = [
      { state, now: at(5000) },
      { state, now: at(61_500) },
      { state, now: at(5000) },
    ].map(({ state: s, now }) => {
      const request = parsePolicyRequest({ tool: 'fs.read', args: { path: 'b' }, agent, now });
      const decision = engine.decide(request, s);
      expect(decision).toEqual(decideRuleByRule(rules, request, s));
      return decision.matched.map((m) => m.reason);
    });
    const [one, two] = rules.map((r) => r.reason);
    expect(reasons[0]).toEqual([`${one} (3 calls across the task in the last minute, limit 1)`, `${two} (3 calls across the task in the last minute, limit 2)`]);
    expect(reasons[1]).toEqual([`${one} (1 calls across the task in the last minute, limit 1)`]);
    expect(reasons[2]).toEqual(reasons[0]);
  });
});

describe('rate windows counted in one pass equal each window counted alone', () => {
  const rules = rulesOf(['never make more than 1 calls per minute', 'never make more than 1 calls per hour', 'never call fs.read more than 1 times per hour', 'no more than 1 calls of fs.read per minute']);
  const agent = AGENTS[0] as (typeof AGENTS)[number];
  // Calls on both sides of each window's edge, at the request's own time and after it.
  const offsets = [-3_600_001, -3_600_000, -3_599_999, -60_001, -60_000, -59_999, -1, 0, 1, 60_000];
  it.each(offsets)('a call at now %+i ms', (offset) => {
    const state: PolicyState = { version: 1, agents: {}, recent: offsets.filter((o) => o !== offset).map((o, i) => ({ agent: 'task-1', seq: i + 1, tool: i % 2 === 0 ? 'fs.read' : 'fs.write', at: NOW + o })) };
    state.recent.push({ agent: 'task-1', seq: 99, tool: 'fs.read', at: NOW + offset });
    const request = parsePolicyRequest({ tool: 'fs.read', args: { path: 'a' }, agent, now: new Date(NOW).toISOString() });
    const decision = createPolicyEngine(rules).decide(request, state);
    expect(decision).toEqual(decideRuleByRule(rules, request, state));
    for (const windowMs of [60_000, 3_600_000]) {
      const byTool = callsByTool(state, NOW, windowMs, undefined);
      expect([...byTool.values()].reduce((a, b) => a + b, 0)).toBe(callsWithin(state, NOW, windowMs, () => true));
    }
  });
});

describe('a scope of one exact name sums as the loop over every tool does', () => {
  const scopes: ToolScope[] = [
    { label: 'custom1.op1', patterns: ['custom1.op1'], named: true },
    { label: 'spawn:helper as a tool', patterns: ['spawn:helper'], named: true },
    { label: 'spawning helper', patterns: ['spawn:helper'], named: true, spawn: true },
    { label: 'a tool name in a spawn scope', patterns: ['custom1.op1'], named: true, spawn: true },
    { label: 'two names', patterns: ['fs.read', 'fs.write'], named: true },
    { label: 'a glob', patterns: ['fs.*'], named: true },
    { label: 'any tool', patterns: ['*'], named: false },
  ];
  it('over generated states: every counter, every agent, all tools and each scope', () => {
    const rand = random(17);
    for (let round = 0; round < 40; round += 1) {
      const rules = rulesOf(SENTENCES);
      const engine = createPolicyEngine(rules);
      let state = emptyPolicyState();
      for (let i = 0; i < 30; i += 1) state = engine.recordExecution(state, requestOf(rand, NOW + i * 1000), { status: 'ok' });
      for (const scope of scopes) {
        const compiled = compileScope(scope);
        const covers = (tool: string, tags?: readonly string[]) => coversTool(compileScope(scope), tool, tags);
        for (const counter of COUNTERS) {
          for (const onlyAgent of [undefined, 'task-1', 'task-1/buyer']) {
            expect(sumCovered(compiled, totalsByTool(state, counter, onlyAgent), state), `${JSON.stringify(scope)} ${counter} ${onlyAgent}`).toBe(totalOf(state, counter, covers, onlyAgent));
          }
        }
        expect(sumCovered(compiled, callsByTool(state, NOW + 30_000, 60_000, undefined), state)).toBe(callsWithin(state, NOW + 30_000, 60_000, covers));
      }
    }
  });
});
