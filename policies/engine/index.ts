/** Warden's policy engine: controlled-English rules compiled to Cedar and stateful checks. */
export { parseRule } from './parse-rule';
export { tokenizeRule, type Token } from './tokenize-rule';
export { RULE_TEMPLATES, nearestTemplates, type RuleTemplate } from './rule-templates';
export type { ParsedRule, RuleEffect, RuleForm, ToolScope } from './rule-syntax';
export {
  compileRule,
  compileParsedRule,
  describeRule,
  validateCedarRules,
  CompiledRuleSchema,
  StatefulSpecSchema,
  WARDEN_CEDAR_SCHEMA,
  type CompiledRule,
  type CedarRule,
  type StatefulRule,
  type StatefulSpec,
} from './compile-rule';
export { loadPolicyEngine, createPolicyEngine, boundArguments, type PolicyEngine, type LoadPolicyEngineOptions } from './policy-engine';
export {
  PolicyRequestSchema,
  PolicyDecisionSchema,
  ExecutionOutcomeSchema,
  ToolEffectSchema,
  ValueSourceSchema,
  measureRequest,
  agentKey,
  type PolicyRequest,
  type PolicyRequestInput,
  type PolicyDecision,
  type MatchedRule,
  type ExecutionOutcome,
  type ToolEffect,
  type ValueSource,
} from './policy-request';
export { PolicyStateSchema, emptyPolicyState, recordExecution, mergePolicyStates, type PolicyState } from './policy-state';
export { buildProvenanceIndex, classifyArguments, classifyValue, extractAtoms, type ProvenanceIndex, type ProvenanceSources } from './provenance';
export { readPacks, resolvePackFolder, PACKS_DIR } from './load-pack';
