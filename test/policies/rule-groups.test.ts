/**
 * `engine.decide` evaluates each question once per decision (rule-groups.ts: rules with equal
 * parsed forms share one check, rules equal but for a threshold share one measurement) over the
 * candidates the index picks (rule-index.ts). Neither may change a decision: this suite compares
 * it with `decideRuleByRule` (every rule's own check, in load order, no index, no groups) on the
 * benchmark's generated rule sets (10, 100, 1,000 rules), on threshold ladders, with shadow rules,
 * over generated requests (tools with and without descriptors, measured and pending effects,
 * provenance, agents at several depths, times of day, spawns) and state histories. The verdict,
 * the matched rules in load order with their reasons, and the shadow part must be equal, also when
 * the same requests are decided again in another order and by a second engine (answers remembered
 * per request signature must never leak into another decision); argument conditions are also held
 * to cedar-wasm, which reads arguments by listing every leaf.
 */
import { describe, expect, it } from 'vitest';
import { generatedRule } from '../../bench/sections/policy';
import { compileRule, type CompiledRule } from '../../policies/engine/compile-rule';
import { createPolicyEngine, decideRuleByRule, type PolicyEngine } from '../../policies/engine/policy-engine';
import { parsePolicyRequest, type PolicyDecision, type PolicyRequest, type PolicyRequestInput, type ToolSummary } from '../../policies/engine/policy-request';
import { emptyPolicyState, type PolicyState } from '../../policies/engine/policy-state';
import { buildRuleGroups } from '../../policies/engine/rule-groups';
import { RULE_TEMPLATES } from '../../policies/engine/rule-templates';

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible case. */
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
  { name: 'helper', depth: 2, chain: ['assistant', 'buyer'] },
  { name: 'deep', depth: 4, chain: ['assistant', 'buyer', 'helper', 'x'], id: 'task-1/deep' },
];

function summary(overrides: Partial<ToolSummary>): ToolSummary {
  return {
    executor: 'mcp',
    capabilityBound: false,
    capabilities: [],
    families: [],
    declared: true,
    readOnly: false,
    destructive: false,
    openWorld: false,
    undoable: false,
    readsPrivate: false,
    declares: [],
    ...overrides,
  };
}

const DESCRIPTORS: Record<string, ToolSummary> = {
  'bank.pay': summary({ families: ['payment'], declares: ['payees', 'amounts'] }),
  'chat.post': summary({ families: ['messaging'], declares: ['recipients'] }),
  'files.sync': summary({ declares: ['paths'], capabilityBound: true, capabilities: ['fs.write', 'fs.read'] }),
  'db.run': summary({ declares: ['sql'], capabilities: ['sql.exec'] }),
  mystery: summary({ declared: false }),
  'web.get': summary({ families: ['network'], readOnly: true, declares: ['urls'] }),
};

const TOOLS = ['fs.read', 'fs.write', 'fs.list', 'fs.delete', 'http.fetch', 'sql.exec', 'sql.query', 'email.send', 'pay.send', 'thing.delete', ...Object.keys(DESCRIPTORS)];
const PATHS = ['notes.txt', 'out/report.md', '/workspace/area3/x.txt', 'area12/deep/y', '/etc/passwd', '../climb', '/workspace'];
const HOSTS = ['api.example.com', 'h3.example.com', 'h21.example.com', 'evil.example', 'API.Example.com:443'];
const SOURCES = ['user', 'trusted', 'tool-output', 'literal'] as const;

/** One generated request: a tool (some custom ones the generated rules name), arguments, a measured or pending effect, provenance, an agent and a time. */
function generatedRequest(rand: () => number): PolicyRequestInput {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const chance = (p: number) => rand() < p;
  const spawn = chance(0.08);
  const tool = spawn ? 'spawn:helper' : chance(0.2) ? `custom${Math.floor(rand() * 30)}.op${Math.floor(rand() * 7)}` : pick(TOOLS);
  const args: Record<string, unknown> = {};
  if (chance(0.7)) args.path = pick(PATHS);
  if (chance(0.4)) args.url = `https://${pick(HOSTS)}/v1/items`;
  if (chance(0.3)) args.method = pick(['GET', 'POST', 'DELETE']);
  if (chance(0.4)) args.to = pick(['eve@evil.example', 'bob@example.com', '@carol, mallory']);
  if (chance(0.3)) args.recipient = pick(['acct_9F3kQ2', 'DE89370400440532013000']);
  if (chance(0.3)) args.amount = Math.floor(rand() * 200);
  if (chance(0.3)) args.content = 'x'.repeat(Math.floor(rand() * 64));
  // Arguments the generated "when argument argN contains ..." rules read.
  for (let k = 0; k < 3; k += 1) if (chance(0.3)) args[`arg${Math.floor(rand() * 30)}`] = chance(0.5) ? `a pattern ${Math.floor(rand() * 30)} here` : 'nothing';
  const effect: Record<string, unknown> = {};
  if (chance(0.5)) effect.rowsChanged = Math.floor(rand() * 60);
  if (chance(0.2)) effect.rowsByOperation = { delete: Math.floor(rand() * 30), insert: Math.floor(rand() * 30), update: Math.floor(rand() * 30) };
  if (chance(0.4)) effect.operation = pick(['delete', 'insert', 'update', 'mixed', 'DELETE']);
  if (chance(0.4)) effect.amount = Math.floor(rand() * 400) / 2;
  if (chance(0.2)) effect.currency = pick(['USD', 'eur']);
  if (chance(0.3)) effect.files = Math.floor(rand() * 40);
  if (chance(0.3)) effect.bytes = Math.floor(rand() * 40 * 1024 * 1024);
  if (chance(0.15)) effect.workspace = pick(['read', 'write']);
  if (chance(0.2)) effect.pending = [pick(['rows', 'host', 'path', 'method', 'bytes', 'files', 'url', 'tables'])];
  if (chance(0.15)) effect.tables = [{ table: pick(['items', 'users']), op: pick(['insert', 'update', 'delete']), rows: Math.floor(rand() * 20) }];
  if (chance(0.15)) effect.paths = [{ path: pick(PATHS), access: pick(['read', 'write', 'list', 'delete']) }];
  if (chance(0.15)) effect.urls = [{ url: 'https://h3.example.com/x', host: pick(HOSTS), method: pick(['GET', 'POST']) }];
  if (chance(0.15)) effect.recipients = [{ value: 'eve@evil.example', kind: pick(['email', 'channel', 'any']) }];
  const provenance: Record<string, (typeof SOURCES)[number]> = {};
  for (const pointer of ['/to', '/url', '/recipient', '/amount', '/path']) if (chance(0.5)) provenance[pointer] = pick(SOURCES);
  const agent = pick(AGENTS);
  const descriptor = DESCRIPTORS[tool];
  return {
    tool,
    args,
    agent,
    ...(Object.keys(effect).length === 0 ? {} : { effect }),
    ...(descriptor === undefined ? {} : { descriptor }),
    provenance,
    ...(chance(0.3) ? { destinations: [{ kind: pick(['host', 'recipient', 'payee'] as const), value: pick(HOSTS), source: pick(SOURCES) }] } : {}),
    // Mostly just after the histories below (rates see their windows), sometimes at any time of day (time windows).
    now: new Date(NOW + (chance(0.7) ? Math.floor(rand() * 120_000) : Math.floor(rand() * 86_400_000))).toISOString(),
  };
}

/** A history of `calls` executed calls over the two hours before `now` (so minute and hour windows both hold some), by several agents. */
function history(engine: PolicyEngine, rand: () => number, calls: number, now: number): PolicyState {
  let state = emptyPolicyState();
  const times = Array.from({ length: calls }, () => now - Math.floor(rand() * 7_200_000)).sort((a, b) => a - b);
  for (const at of times) {
    const request = { ...generatedRequest(rand), now: new Date(at).toISOString() };
    state = engine.recordExecution(state, request, { status: rand() < 0.9 ? 'ok' : 'error' });
  }
  return state;
}

/**
 * Decides every generated request with the engine and with the reference, then again in reverse
 * order and on a second engine over the same rules taking turns with the first: what one decision
 * leaves behind (answers remembered per request signature, per scope, per group) must never
 * change another.
 */
function expectSameDecisions(
  rules: CompiledRule[],
  seed: number,
  requests: number,
  histories: readonly number[],
  requestOf: (rand: () => number) => PolicyRequestInput = generatedRequest,
  /** Also compare with cedar-wasm (`decideWithCedar`), which reads arguments by listing every leaf: for stateless rules only. */
  withCedar = false,
): { partial: number; matched: number } {
  const engine = createPolicyEngine(rules);
  const rand = random(seed);
  let partial = 0;
  let matched = 0;
  const decided: { request: PolicyRequest; state: PolicyState; reference: PolicyDecision; label: string }[] = [];
  for (const calls of histories) {
    const states = Array.from({ length: 3 }, () => history(engine, rand, calls, NOW));
    for (let i = 0; i < requests; i += 1) {
      const input = requestOf(rand);
      const state = states[i % states.length] as PolicyState;
      const request: PolicyRequest = parsePolicyRequest(input);
      const grouped = engine.decide(request, state);
      const reference = decideRuleByRule(rules, request, state);
      const label = `seed ${seed}, history ${calls}, request ${i}: ${JSON.stringify(input)}`;
      expect(grouped, label).toEqual(reference);
      if (withCedar) {
        const viaCedar = engine.decideWithCedar(request, state);
        expect(grouped.decision, `cedar, ${label}`).toBe(viaCedar.decision);
        expect(grouped.matched.map((m) => m.id), `cedar, ${label}`).toEqual(viaCedar.matched.map((m) => m.id));
      }
      decided.push({ request, state, reference, label });
      const count = reference.matched.length + (reference.shadow?.matched.length ?? 0);
      matched += count;
      if (count > 0 && count < rules.length) partial += 1;
    }
  }
  const second = createPolicyEngine(rules);
  decided.reverse().forEach(({ request, state, reference, label }, i) => {
    expect((i % 2 === 0 ? engine : second).decide(request, state), `again, ${label}`).toEqual(reference);
  });
  return { partial, matched };
}

describe('grouped decisions equal every rule decided on its own', () => {
  it.each([10, 100, 1000])('the benchmark rule set at %i rules', (size) => {
    const rules = Array.from({ length: size }, (_, i) => compileRule(generatedRule(i).sentence, `bench:${i + 1}`));
    const { matched } = expectSameDecisions(rules, size, size === 1000 ? 60 : 120, [0, 12, 80]);
    expect(matched).toBeGreaterThan(0);
  });

  it('threshold ladders, split by the measurement (some rules of a group match, some do not), with shadow rules among them', () => {
    const sentences: string[] = [];
    for (let n = 0; n <= 40; n += 3) {
      sentences.push(
        `never delete more than ${n} rows`,
        `never change more than ${n} rows without approval`,
        `never write more than ${n} files`,
        `never make more than ${n} calls per minute`,
        `never make more than ${n} calls of file tools per minute`,
        `never call sql.exec more than ${n} times per hour`,
        `never make more than ${n} tool calls across the task`,
        `never spawn more than ${n} sub-agents across the task`,
        `never spend over $${n * 5}`,
        `never spend more than $${n * 20} across the task and its sub-agents`,
        `never write more than ${n} mb in one call`,
      );
      if (n <= 6) sentences.push(`no more than ${n} levels of sub-agents`);
    }
    // Load order is not threshold order, and equal questions come from several places.
    const rand = random(7);
    const shuffled = sentences.map((s) => ({ s, k: rand() })).sort((a, b) => a.k - b.k).map((x) => x.s);
    const rules = [...shuffled, ...shuffled.slice(0, 20)].map((sentence, i) => compileRule(sentence, `ladder:${i + 1}`, undefined, i % 9 === 4 ? 'shadow' : undefined));
    // Groups do form: far fewer than rules.
    expect(buildRuleGroups(rules).size).toBeLessThan(rules.length / 4);
    const { partial } = expectSameDecisions(rules, 99, 150, [0, 25, 150]);
    // The grid splits groups at their thresholds, so a group that dropped or added a member would be seen.
    expect(partial).toBeGreaterThan(150);
  });

  it('families that differ only in their tools, paths or hosts (names, globs, tags, folders, trees, lists)', () => {
    const sentences: string[] = [];
    for (const folder of ['/workspace', '/workspace/area3', '/workspace/out', '/', '/etc', '/workspace/*.md', '/workspace/area12/deep']) {
      sentences.push(`never write outside ${folder}`, `never write inside ${folder}`, `never read outside ${folder}`, `never read inside ${folder}`, `never access outside ${folder}`, `never list inside ${folder}`, `never delete inside ${folder}`);
    }
    for (const hosts of ['api.example.com', 'h3.example.com', '*.example.com', 'evil.example or api.example.com', 'pastebin.com']) {
      sentences.push(`never fetch from any host except ${hosts}`, `never fetch from ${hosts}`, `never post to hosts other than ${hosts}`, `never connect to ${hosts}`);
    }
    for (const tools of ['fs.write', 'fs.*', 'file tools', 'network tools', 'custom3.op1', 'email tools and fs.read', 'payment tools', 'sql.exec', 'destructive tools', 'any tool']) {
      sentences.push(`deny ${tools}`, `allow only ${tools}`, `require approval for ${tools}`, `deny ${tools} for sub-agents`, `allow ${tools}`, `deny ${tools} for agent buyer`);
    }
    const rules = sentences.flatMap((sentence, i) => {
      try {
        return [compileRule(sentence, `f:${i + 1}`, undefined, i % 11 === 3 ? 'shadow' : undefined)];
      } catch {
        return []; // a combination the grammar does not read
      }
    });
    expect(rules.length).toBeGreaterThan(sentences.length * 0.8);
    const { partial } = expectSameDecisions(rules, 11, 250, [0, 20]);
    expect(partial).toBeGreaterThan(250);
  });

  it('argument conditions on nested, escaped and array pointers read the leaf every argument listing would (and nothing else)', () => {
    // Pointers that name a leaf, and look-alikes that name none: an array's "length", a
    // non-canonical index, an escape no key has ("~2"), a key spelled unescaped, a trailing "/".
    const pointers = ['n', 'items.0', 'items.1', 'items.2', 'items.length', 'items.01', 'a.b', 'a.b.c', '/a~1b', '/a~0b', '/a~2b', '/a~b', '/a/', 'a.__proto__', '/deep/0/x', '/deep/1', 'missing.x', 'x', '/'];
    const sentences = pointers.flatMap((pointer, i) => [
      `deny fs.write when argument ${pointer} contains "x"`,
      `require approval for any tool when argument ${pointer} is "${i % 3 === 0 ? 'x' : '2'}"`,
    ]);
    const rules = sentences.map((sentence, i) => compileRule(sentence, `arg:${i + 1}`, undefined, i % 7 === 3 ? 'shadow' : undefined));
    const leaf = (rand: () => number): unknown => {
      const r = rand();
      return r < 0.35 ? 'x' : r < 0.5 ? 'X  ' : r < 0.65 ? 2 : r < 0.72 ? Number.POSITIVE_INFINITY : r < 0.8 ? null : r < 0.9 ? ['x'] : { x: 'x' };
    };
    const nested = (rand: () => number): PolicyRequestInput => {
      const args: Record<string, unknown> = {};
      for (const key of ['n', 'items', 'a', 'a/b', 'a~b', 'a~1b', 'a~0b', 'a~2b', 'deep', 'x', '']) {
        if (rand() < 0.4) continue;
        if (key === 'items') args.items = Array.from({ length: Math.floor(rand() * 4) }, () => leaf(rand));
        else if (key === 'a') args.a = rand() < 0.5 ? { b: leaf(rand), '': leaf(rand), __proto__: leaf(rand) } : leaf(rand);
        else if (key === 'deep') args.deep = [{ x: leaf(rand) }, leaf(rand)];
        else args[key] = leaf(rand);
      }
      return { ...generatedRequest(rand), tool: rand() < 0.7 ? 'fs.write' : 'fs.read', args };
    };
    expect(rules.every((r) => r.kind === 'cedar')).toBe(true);
    const { partial } = expectSameDecisions(rules, 23, 300, [0], nested, true);
    expect(partial).toBeGreaterThan(150);
  });

  it('every template example, repeated with other effects, subjects and load positions', () => {
    const sentences = RULE_TEMPLATES.map((t) => t.example);
    const rules = [...sentences, ...sentences.map((s) => s.replace(/^deny /, 'require approval for ')), ...sentences.map((s) => `sub-agents: ${s}`)]
      .flatMap((sentence, i) => {
        try {
          return [compileRule(sentence, `t:${i + 1}`, undefined, i % 5 === 2 ? 'shadow' : undefined)];
        } catch {
          return []; // a variant the grammar does not read
        }
      });
    expect(rules.length).toBeGreaterThan(sentences.length);
    expectSameDecisions(rules, 3, 200, [0, 30]);
  });
});

describe('what a decision hands out cannot change another decision', () => {
  const rules = ['deny file tools', 'require approval for any network write', 'allow only file tools and network tools', 'never make more than 1 calls per minute', 'never write outside /workspace/out']
    .map((sentence, i) => compileRule(sentence, `h:${i + 1}`));
  const AGENT = { name: 'assistant', depth: 0, chain: [], id: 'task-1' };
  const at = new Date(NOW).toISOString();

  it('shared matched entries are frozen: a caller that writes to one fails, and the next decision is unchanged', () => {
    const engine = createPolicyEngine(rules);
    const request = parsePolicyRequest({ tool: 'fs.write', args: { path: 'notes.md', content: 'x' }, agent: AGENT, now: at });
    const reference = decideRuleByRule(rules, request);
    const first = engine.decide(request);
    expect(first).toEqual(reference);
    // "deny file tools" matches with its reason as written: the entry every decision shares.
    const shared = first.matched.find((m) => m.id === 'h:1');
    expect(shared && Object.isFrozen(shared)).toBe(true);
    for (const m of first.matched) {
      if (!Object.isFrozen(m)) continue;
      expect(() => Object.assign(m, { effect: 'allow', reason: 'rewritten' })).toThrow(TypeError);
    }
    // The lists are the caller's own: emptying them changes nothing for the next decision.
    first.matched.length = 0;
    first.reasons.length = 0;
    expect(engine.decide(request)).toEqual(reference);
    const none = engine.decide(parsePolicyRequest({ tool: 'fs.read', args: { path: 'out/a.md' }, agent: AGENT, now: at }));
    none.reasons.push('added by a caller');
    const allowed = parsePolicyRequest({ tool: 'http.fetch', args: { url: 'https://api.example.com/x' }, agent: AGENT, now: at });
    expect(engine.decide(allowed)).toEqual(decideRuleByRule(rules, allowed));
  });

  it('tool families answer per request signature, and network writes still read each request method', () => {
    const engine = createPolicyEngine(rules);
    // One signature (http.fetch, no descriptor), three methods: only the writes need approval.
    for (const method of ['POST', 'GET', 'DELETE', 'GET', 'POST']) {
      const request = parsePolicyRequest({ tool: 'http.fetch', args: { url: 'https://api.example.com/x', method }, agent: AGENT, now: at });
      const decision = engine.decide(request);
      expect(decision, method).toEqual(decideRuleByRule(rules, request));
      expect(decision.matched.some((m) => m.id === 'h:2'), method).toBe(method !== 'GET');
    }
    // "allow only" answers per tool: a tool outside the list, then one inside, then outside again.
    for (const tool of ['sql.exec', 'fs.read', 'sql.exec', 'custom1.op1']) {
      const request = parsePolicyRequest({ tool, args: {}, agent: AGENT, now: at });
      const decision = engine.decide(request);
      expect(decision, tool).toEqual(decideRuleByRule(rules, request));
      expect(decision.matched.some((m) => m.id === 'h:3'), tool).toBe(!tool.startsWith('fs.'));
    }
  });
});
