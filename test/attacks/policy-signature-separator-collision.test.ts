/**
 * Attack on the policy engine's per-request-signature memo (issue 17, policies/engine/rule-index.ts):
 * a request's signature is its index keys (`kind:tool`, `tool:<name>`, `tag:<tag>`, ...) joined by
 * U+0000, and neither a tool name (`PolicyRequestSchema.tool` is any non-empty string) nor a
 * descriptor's family (`ToolSummarySchema.families` is any string) is kept free of U+0000. A tool
 * named `bank.pay\u0000tag:payment` without the payment family therefore has the same signature
 * as `bank.pay` with it: the first decision remembers, under that number, the candidates and the
 * scope answers of a call that is not a payment, and the real payment decided next reuses them.
 * `engine.decide` allows what `decideRuleByRule` and Cedar send for approval (or deny).
 *
 * Fixed: two requests share a signature only when they have the same keys; every
 * decision equals the rule-by-rule reference whatever was decided before (rule-index.ts
 * `signatureKey`: the keys as a JSON array when one holds U+0000).
 */
import { describe, expect, it } from 'vitest';
import { compileRule } from '../../policies/engine/compile-rule';
import { createPolicyEngine, decideRuleByRule } from '../../policies/engine/policy-engine';
import type { PolicyRequestInput, ToolSummary } from '../../policies/engine/policy-request';

const agent = { name: 'assistant', depth: 0, chain: [] };
const now = '2026-03-02T10:00:00Z';

function summary(overrides: Partial<ToolSummary>): ToolSummary {
  return { executor: 'mcp', capabilityBound: false, capabilities: [], families: [], declared: true, readOnly: false, destructive: false, openWorld: false, undoable: false, readsPrivate: false, declares: [], ...overrides };
}

const cases: { name: string; rules: string[]; first: PolicyRequestInput; second: PolicyRequestInput }[] = [
  {
    name: 'a tool name holding the separator and a tag key',
    rules: ['require approval for payment tools'],
    first: { tool: 'bank.pay\u0000tag:payment', agent, now, descriptor: summary({}) },
    second: { tool: 'bank.pay', agent, now, descriptor: summary({ families: ['payment'] }) },
  },
  {
    name: 'a family holding the separator and a second tag key',
    rules: ['deny destructive tools'],
    first: { tool: 'tickets.purge', agent, now, descriptor: summary({ families: ['payment\u0000tag:destructive'] }) },
    second: { tool: 'tickets.purge', agent, now, descriptor: summary({ families: ['payment'], destructive: true }) },
  },
];

describe('requests whose keys differ never share a signature', () => {
  it.each(cases)('$name', ({ rules, first, second }) => {
    const compiled = rules.map((sentence, i) => compileRule(sentence, `r${i + 1}`, 'attack'));
    const engine = createPolicyEngine(compiled);
    expect(engine.decide(first)).toEqual(decideRuleByRule(compiled, first));
    const reference = decideRuleByRule(compiled, second);
    expect(reference.decision).not.toBe('allow');
    expect(engine.decide(second)).toEqual(reference);
    expect(engine.decideWithCedar(second).decision).toBe(reference.decision);
  });
});
