/**
 * Cedar validation once per process (policies/engine/compile-rule.ts `validateCedarRules`) and
 * `warmPolicyEngine` (issue 17: a worker's and its sandbox host's first task): a policy text that
 * validated under the schema in use is not sent to Cedar's validator again in the same process;
 * one that failed is, and fails again; and after warming, an engine over the default packs is
 * built without validating or preparsing anything.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileRule, type CompiledRule } from '../../policies/engine/compile-rule';
import { createPolicyEngine, loadPolicyEngine, warmPolicyEngine } from '../../policies/engine/policy-engine';
import { DEFAULT_POLICY_PACKS } from '../../task/task-schema';

/** The cedar-wasm module compile-rule.ts loads (the same CommonJS instance). */
const cedarWasm = createRequire(__filename)('@cedar-policy/cedar-wasm/nodejs') as Record<'validate' | 'preparsePolicySet', (...args: unknown[]) => unknown>;

/** A rule no other test builds (its own host name), so this process has not validated it yet. */
function freshRule(id: string): CompiledRule {
  return compileRule(`never fetch from ${id.replace(/[^a-z0-9]/g, '')}.validated-once.example`, id);
}

/** Strict validation refuses this rule (an attribute warden.cedarschema does not have). */
function refusedRule(id: string): CompiledRule {
  return { ...compileRule('deny fs.write', id), cedar: `@id("${id}")\nforbid (principal, action, resource) when { context.notInTheSchema == 2 };` } as CompiledRule;
}

afterEach(() => vi.restoreAllMocks());

describe('Cedar validation once per process', () => {
  it('a rule validated once is not validated again by the next engine over it', () => {
    const rules = [freshRule('once:1')];
    const validate = vi.spyOn(cedarWasm, 'validate');
    createPolicyEngine(rules);
    expect(validate).toHaveBeenCalledTimes(1);
    createPolicyEngine(rules);
    createPolicyEngine([compileRule(rules[0]!.sentence, 'once:1')]);
    expect(validate).toHaveBeenCalledTimes(1);
    // Another text is validated.
    createPolicyEngine([freshRule('once:2')]);
    expect(validate).toHaveBeenCalledTimes(2);
  });

  it('a rule Cedar refused is refused again, every time, with the rules beside it', () => {
    const good = freshRule('once:3');
    for (let i = 0; i < 3; i++) {
      expect(() => createPolicyEngine([good, refusedRule('refused:1')])).toThrow(/failed Cedar validation:\n {2}refused:1/);
    }
    // The good rule of a refused set was not recorded either: validated when built alone.
    const validate = vi.spyOn(cedarWasm, 'validate');
    createPolicyEngine([good]);
    expect(validate).toHaveBeenCalledTimes(1);
  });

  it('after warmPolicyEngine an engine over the default packs validates and preparses nothing', () => {
    warmPolicyEngine();
    const validate = vi.spyOn(cedarWasm, 'validate');
    const preparse = vi.spyOn(cedarWasm, 'preparsePolicySet');
    const engine = loadPolicyEngine({ packs: [...DEFAULT_POLICY_PACKS] });
    expect(engine.rules.length).toBeGreaterThan(0);
    expect(validate).not.toHaveBeenCalled();
    expect(preparse).not.toHaveBeenCalled();
  });
});
