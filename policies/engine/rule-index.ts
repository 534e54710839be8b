/**
 * An index of compiled rules by what can make them apply (a tool name, an effect tag, spawning,
 * a measured fact), so one decision evaluates only the rules that can match its request: the
 * cost of a decision follows the rules about that call, not the size of the packs.
 *
 * Invariant: the index only prunes. For every request, every rule whose check could match is
 * among the candidates (a rule the index cannot place is a candidate for every request); the
 * checks themselves decide.
 */
import type { CompiledRule } from './compile-rule';
import type { Measured, PolicyRequest } from './policy-request';
import { globMatch, reachAccessOf, type ParsedRule, type ToolScope } from './rule-syntax';

/**
 * Keys a request has; a rule listed under any of them is a candidate. They also make the request's
 * signature, under which scopes remember whether they cover the call (evaluate-rule.ts
 * `coversRequestTool`, `covers`): whatever those read of a request (spawn, tool, tags, workspace
 * reach) must be a key here.
 */
function requestKeys(request: PolicyRequest, m: Measured): string[] {
  const keys = [m.isSpawn ? 'kind:spawn' : 'kind:tool', `tool:${request.tool}`];
  for (const tag of m.tags) keys.push(`tag:${tag}`);
  if (m.rows !== undefined || m.rowsByOperation !== undefined) keys.push('fact:rows');
  if (m.amountCents !== undefined) keys.push('fact:amount');
  if (m.files !== undefined) keys.push('fact:files');
  if (m.bytes !== undefined) keys.push('fact:bytes');
  for (const p of m.paths) if (p.tree === true && p.access !== undefined) keys.push(`reach:${p.access}`);
  return keys;
}

/** Keys under which a scope's tools are found, or undefined when its patterns need glob matching. */
function scopeKeys(scope: ToolScope): { keys: string[]; globs: string[] } {
  if (scope.spawn === true) return { keys: ['kind:spawn'], globs: [] };
  const keys: string[] = [];
  const globs: string[] = [];
  for (const pattern of scope.patterns) {
    if (pattern === '*') keys.push('kind:tool');
    else if (pattern.includes('*')) globs.push(pattern);
    else keys.push(`tool:${pattern}`);
  }
  for (const tag of scope.tags ?? []) keys.push(`tag:${tag}`);
  for (const access of reachAccessOf(scope.patterns)) keys.push(`reach:${access}`);
  return { keys, globs };
}

const METRIC_FACT: Readonly<Record<string, string>> = { rows: 'fact:rows', amount: 'fact:amount', files: 'fact:files', bytes: 'fact:bytes' };

/** Where a parsed rule is indexed; `all` for rules any request may meet. */
function ruleKeys(rule: ParsedRule): { keys: string[]; globs: string[] } | 'all' {
  switch (rule.form) {
    case 'subagent-depth':
      return { keys: ['kind:spawn'], globs: [] };
    case 'tool':
      // "allow only X" matches every tool that is not X.
      return rule.only ? { keys: ['kind:tool'], globs: [] } : scopeKeys(rule.tools);
    case 'limit': {
      const scoped = scopeKeys(rule.tools);
      // A verb's default tools: any call that measured the metric counts too.
      const fact = METRIC_FACT[rule.metric];
      if (!rule.tools.named && fact !== undefined) scoped.keys.push(fact);
      return scoped;
    }
    case 'rate':
    case 'path':
    case 'host':
    case 'time-window':
    case 'intent':
    case 'flow':
    case 'table':
      return scopeKeys(rule.tools);
  }
}

export interface RuleIndex {
  /**
   * Positions (in load order) of the rules that may apply to the request. Sets `m.signature`
   * to the number of the request's keys (equal keys, equal number, in every index of the process).
   */
  candidates(request: PolicyRequest, m: Measured): number[];
}

/** Request keys → signature number, shared by every index: a number always stands for the same keys. */
const signatures = new Map<string, number>();
let nextSignature = 0;

function signatureOf(key: string): number {
  let signature = signatures.get(key);
  if (signature === undefined) {
    // Past the bound, numbers are never reused: a scope's remembered answer can only be for its own keys.
    if (signatures.size >= 65_536) signatures.clear();
    signature = nextSignature;
    nextSignature += 1;
    signatures.set(key, signature);
  }
  return signature;
}

/**
 * The text a signature is numbered by: the keys joined by U+0000, unless a key holds U+0000 itself
 * (a tool name or family is any string), where a join could equal another request's keys
 * ("tool:x\u0000tag:payment" alone vs "tool:x" and "tag:payment"); then their JSON array, which
 * starts with "[" where every join starts with "kind:".
 */
function signatureKey(keys: readonly string[]): string {
  for (const key of keys) if (key.includes('\u0000')) return JSON.stringify(keys);
  return keys.join('\u0000');
}

export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  const byKey = new Map<string, number[]>();
  const globRules: { glob: string; position: number }[] = [];
  const always: number[] = [];
  rules.forEach((rule, position) => {
    const placed = rule.rule === undefined ? 'all' : ruleKeys(rule.rule);
    if (placed === 'all') {
      always.push(position);
      return;
    }
    for (const key of new Set(placed.keys)) {
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push(position);
    }
    for (const glob of placed.globs) globRules.push({ glob, position });
  });
  const globs = [...new Set(globRules.map((g) => g.glob))];

  // Candidates depend only on the request's keys (and glob matches of its tool): computed once per kind of request.
  const cache = new Map<number, number[]>();
  return {
    candidates(request, m) {
      const keys = requestKeys(request, m);
      const signature = signatureOf(signatureKey(keys));
      m.signature = signature;
      const cached = cache.get(signature);
      if (cached !== undefined) return cached;
      const seen = new Set<number>(always);
      for (const key of keys) for (const position of byKey.get(key) ?? []) seen.add(position);
      if (globs.length > 0 && !m.isSpawn) {
        const matching = globs.filter((g) => globMatch(g, request.tool));
        if (matching.length > 0) for (const g of globRules) if (matching.includes(g.glob)) seen.add(g.position);
      }
      const positions = [...seen].sort((a, b) => a - b);
      if (cache.size >= 4096) cache.clear();
      cache.set(signature, positions);
      return positions;
    },
  };
}
