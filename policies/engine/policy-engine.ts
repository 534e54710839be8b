/**
 * The policy engine: compiled rules (from packs and task sentences) decide each proposed action
 * and each capability call made from inside a tool.
 *
 * A decision evaluates only the rules that can apply to its request (rule-index.ts: by tool,
 * effect tag, spawning and measured fact), each through the check built once from its parsed
 * form (evaluate-rule.ts), and asks each question once (rule-groups.ts: rules equal but for a
 * threshold, a tool list, paths or hosts share one evaluation), so its cost follows the distinct
 * questions about the call, not the size of the packs; `decideRuleByRule` is the plain definition
 * it must equal. Cedar holds the
 * reviewable, schema-validated form of every stateless rule: each engine validates its rules'
 * policies when it is built, and `decideWithCedar` decides through cedar-wasm, which the tests
 * use to check that both agree.
 *
 * Invariants:
 *  - deny beats approval beats allow; an action no rule matches is allowed (the task's grants
 *    are enforced before the engine is asked); rules in shadow mode are matched and reported
 *    (`decision.shadow`), never enforced;
 *  - a rule about an effect the tool did not measure matches for the tools it is about, unless
 *    the measurement is made where the call is applied and decided there (fail closed);
 *  - `decide` and `recordExecution` are pure functions of their inputs (the clock is the
 *    request's `now`), so decisions replay identically.
 */
import { createHash } from 'node:crypto';
import { PolicyError } from '../../errors';
import { cedar, cedarPolicies, compileRule, CompiledRuleSchema, validateCedarRules, WARDEN_CEDAR_SCHEMA, type CedarRule, type CompiledRule, type StatefulRule } from './compile-rule';
import { readPacks } from './load-pack';
import { DEFAULT_POLICY_PACKS } from '../../task/task-schema';
import { isResponseRule } from './parse-response-rule';
import {
  ExecutionOutcomeSchema,
  measureRequest,
  parsePolicyRequest,
  type ExecutionOutcome,
  type MatchedRule,
  type Measured,
  type PolicyDecision,
  type PolicyRequest,
  type PolicyRequestInput,
} from './policy-request';
import { emptyPolicyState, PolicyStateSchema, recordExecution as recordInState, type PolicyState } from './policy-state';
import { argumentLeaves } from './provenance';
import { checkOf, type RuleCheck } from './evaluate-rule';
import { normalizeArgText } from './normalize-text';
import { buildRuleGroups } from './rule-groups';
import { buildRuleIndex } from './rule-index';

export { boundArguments } from './evaluate-rule';

export interface LoadPolicyEngineOptions {
  /** Pack folders, or names of bundled packs ("foundation"). */
  packs?: readonly string[];
  /** Rule sentences, e.g. a task file's `policies:`; ids `task:1`, `task:2`, ... */
  sentences?: readonly string[];
  /** Already compiled rules (e.g. carried in a workflow input); validated again. */
  rules?: readonly CompiledRule[];
}

export interface PolicyEngine {
  /** Every rule in load order. */
  readonly rules: readonly CompiledRule[];
  /** The Cedar policy set the engine evaluates, as text. */
  readonly cedarText: string;
  /** Decides one proposed action. Throws `PolicyError` ERR_POLICY_REQUEST_INVALID on a malformed request. */
  decide(request: PolicyRequestInput, state?: PolicyState): PolicyDecision;
  /** The same decision with the stateless rules evaluated by cedar-wasm (slower; for checking the engine against Cedar). */
  decideWithCedar(request: PolicyRequestInput, state?: PolicyState): PolicyDecision;
  /** The state after the action ran (or was denied); pure. */
  recordExecution(state: PolicyState, request: PolicyRequestInput, outcome: ExecutionOutcome): PolicyState;
  /** The longest window of the engine's rate rules, in ms (0: no rate rule): no rule reads recent calls older than this. */
  readonly rateWindowMs: number;
}

const DEFAULT_PERMIT_ID = 'warden:default-permit';
const DEFAULT_PERMIT = `@id("${DEFAULT_PERMIT_ID}")\n@reason("no rule matched")\npermit (principal, action == Warden::Action::"call", resource);`;
const SCHEMA_NAME = 'warden';
/** Recent calls are kept at least this long, so a sub-agent with stricter rates still sees them. */
const MIN_RETAIN_MS = 3_600_000;
/** Beyond this many (path, host) pairs a request is checked per path and per host separately. */
const MAX_CONTEXTS = 64;

let schemaPreparsed = false;
/** Policy sets preparsed in this process, by content hash: engines over the same rules share one. */
const preparsedSets = new Set<string>();

function preparseSchemaOnce(): void {
  if (schemaPreparsed) return;
  const answer = cedar.preparseSchema(SCHEMA_NAME, WARDEN_CEDAR_SCHEMA);
  if (answer.type !== 'success') throw new PolicyError('ERR_POLICY_INVALID', `warden.cedarschema does not parse: ${answer.errors.map((e) => e.message).join('; ')}`);
  schemaPreparsed = true;
}

/**
 * The cedar-wasm policy set ids of an engine's forbids (with the default permit) and permits,
 * each preparsed once per process (engines over the same rules share one).
 * @throws PolicyError ERR_POLICY_INVALID when Cedar cannot parse the schema or a set.
 */
function preparsePolicySets(forbids: Record<string, string>, permits: Record<string, string>): string[] {
  const ids: string[] = [];
  for (const set of [forbids, permits]) {
    if (Object.keys(set).length === 0) continue;
    preparseSchemaOnce();
    const staticPolicies = set === forbids ? { ...set, [DEFAULT_PERMIT_ID]: DEFAULT_PERMIT } : set;
    const id = `warden-${createHash('sha256').update(JSON.stringify(staticPolicies)).digest('hex')}`;
    if (!preparsedSets.has(id)) {
      const answer = cedar.preparsePolicySet(id, { staticPolicies });
      if (answer.type !== 'success') throw new PolicyError('ERR_POLICY_INVALID', `Cedar policies do not parse: ${answer.errors.map((e) => e.message).join('; ')}`);
      preparsedSets.add(id);
    }
    ids.push(id);
  }
  return ids;
}

/**
 * Compiles the packs' and the given sentences into an engine. Throws `PolicyParseError`
 * (ERR_POLICY_UNREADABLE) for the first sentence that cannot be read, `PolicyError`
 * ERR_POLICY_INVALID when Cedar validation fails, ERR_POLICY_PACK_NOT_FOUND for a missing pack.
 */
export function loadPolicyEngine(options: LoadPolicyEngineOptions = {}): PolicyEngine {
  return createPolicyEngine(compilePolicyRules(options));
}

/**
 * Throws what {@link loadPolicyEngine} would throw for these rules (a sentence that does not
 * read, two rules with one id, Cedar validation), without building the engine: no Cedar policy
 * set is parsed, and Cedar itself runs only for policies this build has not validated already
 * (see prevalidated-policies.ts). For checking a task file where only a worker decides.
 */
export function checkPolicyRules(options: LoadPolicyEngineOptions = {}): void {
  const rules = compilePolicyRules(options);
  checkRuleIds(rules);
  validateCedarRules(rules);
}

function compilePolicyRules(options: LoadPolicyEngineOptions): CompiledRule[] {
  const rules: CompiledRule[] = [];
  // Response rules (parse-response-rule.ts) share the packs and the task's sentences; the monitor reads them.
  for (const s of readPacks(options.packs ?? [])) if (!isResponseRule(s.sentence)) rules.push(compileRule(s.sentence, s.id, s.source, s.enforcement));
  (options.sentences ?? []).forEach((sentence, i) => {
    if (!isResponseRule(sentence)) rules.push(compileRule(sentence, `task:${i + 1}`, `task policies[${i}]`));
  });
  for (const rule of options.rules ?? []) rules.push(CompiledRuleSchema.parse(rule));
  return rules;
}

function checkRuleIds(rules: readonly CompiledRule[]): void {
  const ids = new Set<string>();
  for (const rule of rules) {
    if (ids.has(rule.id)) throw new PolicyError('ERR_POLICY_INVALID', `two rules share the id "${rule.id}"`, { details: { id: rule.id } });
    ids.add(rule.id);
  }
}

/**
 * Does once, now, what the first engine of a process otherwise does at its first task (issue 17):
 * reads and compiles the rules of `packs` (default: the packs a task without its own gets) and
 * validates their Cedar policies, loading cedar-wasm for that when this build holds no record of
 * them (running from the sources: prevalidated-policies.ts), so the first engine over those rules
 * builds like any later one. Every check still runs, once per process, as before; the policy sets
 * are still preparsed only when an engine first decides through Cedar. For a process that waits
 * for work (the sandbox host after its probe). Throws what {@link loadPolicyEngine} throws for `packs`.
 */
export function warmPolicyEngine(packs: readonly string[] = DEFAULT_POLICY_PACKS): void {
  loadPolicyEngine({ packs: [...packs] });
}

/** An engine over already compiled rules. */
export function createPolicyEngine(rules: readonly CompiledRule[]): PolicyEngine {
  checkRuleIds(rules);
  validateCedarRules(rules);
  const cedarRules = new Map<string, CedarRule>();
  const statefulRules: StatefulRule[] = [];
  for (const rule of rules) {
    if (rule.kind === 'cedar') cedarRules.set(rule.id, rule);
    else statefulRules.push(rule);
  }
  // Two policy sets: the forbids (deny and approval rules) with a default permit, which decides;
  // and the permits (allow rules), evaluated separately so they are reported even when a forbid wins.
  const all = cedarPolicies(rules);
  const forbids: Record<string, string> = {};
  const permits: Record<string, string> = {};
  for (const [id, text] of Object.entries(all)) (cedarRules.get(id)?.effect === 'allow' ? permits : forbids)[id] = text;
  const cedarText = [...Object.values(all), DEFAULT_PERMIT].join('\n\n');
  const argPointers = [...new Set([...cedarRules.values()].flatMap((r) => r.argPointers))];
  // Preparsed for cedar-wasm when first needed (decideWithCedar), not here: `decide` never reads
  // them, and the parse (cold WebAssembly, a few hundred ms in a new process) was on the path of
  // every process's first engine: the worker's precheck and the sandbox host's first tool call of
  // a `warden run` (issue 17). The policies were validated above (or by the build), so they parse.
  let policySets: string[] | undefined;
  const cedarPolicySets = (): string[] => (policySets ??= preparsePolicySets(forbids, permits));
  const retainMs = Math.max(MIN_RETAIN_MS, ...statefulRules.map((r) => (r.spec.type === 'rate' ? r.spec.windowMs : 0)));

  const checks: RuleCheck[] = rules.map((rule) => checkOf(rule));
  const index = buildRuleIndex(rules);
  const groups = buildRuleGroups(rules);
  const shadowIds = new Set(rules.filter((r) => r.enforcement === 'shadow').map((r) => r.id));

  const decide = (input: PolicyRequestInput, stateInput?: PolicyState): PolicyDecision => {
    const request = parsePolicyRequest(input);
    const state = stateInput ?? emptyPolicyState();
    const measured = measureRequest(request);
    const context = { request, m: measured, state, memo: new Map<string, number>() };
    return decisionOf(groups.matched(context, index.candidates(request, measured)), shadowIds);
  };

  const decideWithCedar = (input: PolicyRequestInput, stateInput?: PolicyState): PolicyDecision => {
    const request = parsePolicyRequest(input);
    const state = stateInput ?? emptyPolicyState();
    const measured = measureRequest(request);
    const matched = new Map<string, MatchedRule>();
    const sets = cedarPolicySets();
    if (sets.length > 0) {
      const inputs = cedarInputs(request, argPointers, measured);
      for (const policySetId of sets) for (const m of evaluateCedar(policySetId, cedarRules, request, inputs)) if (!matched.has(m.id)) matched.set(m.id, m);
    }
    const context = { request, m: measured, state, memo: new Map<string, number>() };
    rules.forEach((rule, position) => {
      if (rule.kind !== 'stateful') return;
      const detail = (checks[position] as RuleCheck)(context);
      if (detail !== undefined) matched.set(rule.id, { id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: `${rule.reason} (${detail})`, kind: 'stateful' });
    });
    const order = new Map(rules.map((r, i) => [r.id, i]));
    return decisionOf(
      [...matched.values()].sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0)),
      shadowIds,
    );
  };

  return {
    rules,
    cedarText,
    decide,
    decideWithCedar,
    rateWindowMs: Math.max(0, ...statefulRules.map((r) => (r.spec.type === 'rate' ? r.spec.windowMs : 0))),
    recordExecution(state, input, outcomeInput) {
      const outcome = ExecutionOutcomeSchema.parse(outcomeInput);
      if (outcome.status === 'denied') return state;
      return recordInState(PolicyStateSchema.parse(state), parsePolicyRequest(input), outcome, { retainMs });
    },
  };
}

/**
 * The decision every rule's own check makes, one rule after the other in load order, with no
 * index and no grouping: the plain definition `decide` must equal (test/policies/rule-groups.test.ts).
 * Slow by design; throws like `decide`.
 */
export function decideRuleByRule(rules: readonly CompiledRule[], input: PolicyRequestInput, stateInput?: PolicyState): PolicyDecision {
  const request = parsePolicyRequest(input);
  const state = stateInput ?? emptyPolicyState();
  const context = { request, m: measureRequest(request), state, memo: new Map<string, number>() };
  const matched: MatchedRule[] = [];
  for (const rule of rules) {
    const detail = checkOf(rule)(context);
    if (detail !== undefined) matched.push({ id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: detail === '' ? rule.reason : `${rule.reason} (${detail})`, kind: rule.kind });
  }
  return decisionOf(matched, new Set(rules.filter((r) => r.enforcement === 'shadow').map((r) => r.id)));
}

function verdictOf(matched: readonly MatchedRule[]): PolicyDecision['decision'] {
  let approval = false;
  for (let i = 0; i < matched.length; i += 1) {
    const effect = (matched[i] as MatchedRule).effect;
    if (effect === 'deny') return 'deny';
    if (effect === 'approval') approval = true;
  }
  return approval ? 'approval' : 'allow';
}

const NO_RULE_MATCHED = ['no rule matched: allowed (the task grants the action)'];

/** Enforced rules decide; shadow rules are reported apart with what they would have decided. */
function decisionOf(all: MatchedRule[], shadowIds: ReadonlySet<string>): PolicyDecision {
  const matched = shadowIds.size === 0 ? all : all.filter((m) => !shadowIds.has(m.id));
  // verdictOf and the count of the winning effect's reasons, in one pass.
  let denies = 0;
  let approvals = 0;
  for (let i = 0; i < matched.length; i += 1) {
    const effect = (matched[i] as MatchedRule).effect;
    if (effect === 'deny') denies += 1;
    else if (effect === 'approval') approvals += 1;
  }
  const decision: PolicyDecision['decision'] = denies > 0 ? 'deny' : approvals > 0 ? 'approval' : 'allow';
  const count = denies > 0 ? denies : approvals > 0 ? approvals : matched.length - denies - approvals;
  // Sized once: a decision often gives a hundred reasons.
  const reasons: string[] = count === 0 ? [...NO_RULE_MATCHED] : new Array<string>(count);
  if (count > 0) for (let i = 0, k = 0; i < matched.length; i += 1) if ((matched[i] as MatchedRule).effect === decision) reasons[k++] = (matched[i] as MatchedRule).reason;
  const out: PolicyDecision = { decision, matched, reasons };
  if (shadowIds.size > 0) {
    const shadow = all.filter((m) => shadowIds.has(m.id));
    if (shadow.length > 0) out.shadow = { decision: verdictOf(shadow), matched: shadow };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cedar

/** Lower-cased string forms of the arguments rules read as tags. */
function argTags(request: PolicyRequest, pointers: readonly string[]): Record<string, string> {
  if (pointers.length === 0) return {};
  const tags: Record<string, string> = {};
  for (const leaf of argumentLeaves(request.args)) if (pointers.includes(leaf.pointer)) tags[leaf.pointer] = normalizeArgText(String(leaf.value), leaf.pointer);
  return tags;
}

function cedarContexts(request: PolicyRequest, m: Measured): Record<string, unknown>[] {
  const base: Record<string, unknown> = {
    tool: request.tool,
    kind: m.isSpawn ? 'spawn' : 'tool',
    agent: request.agent.name,
    depth: request.agent.depth,
    chain: request.agent.chain,
    minuteOfDay: m.minuteOfDay,
    tags: [...m.tags],
    pending: [...m.pending],
  };
  if (m.rows !== undefined) base.rows = m.rows;
  if (m.rowsByOperation !== undefined) {
    base.rowsDelete = m.rowsByOperation.delete;
    base.rowsInsert = m.rowsByOperation.insert;
    base.rowsUpdate = m.rowsByOperation.update;
  }
  if (m.operation !== undefined) base.operation = m.operation;
  if (m.amountCents !== undefined) base.amountCents = m.amountCents;
  if (m.currency !== undefined) base.currency = m.currency;
  if (m.files !== undefined) base.files = m.files;
  if (m.bytes !== undefined) base.bytes = m.bytes;
  if (m.method !== undefined) base.method = m.method;
  if (m.networkWrite !== undefined) base.networkWrite = m.networkWrite;
  const paths: ({ path: string; access?: string; tree?: true } | undefined)[] = m.paths.length > 0 ? m.paths : [undefined];
  const hosts: (string | undefined)[] = m.hosts.length > 0 ? m.hosts : [undefined];
  const withResource = (path: { path: string; access?: string; tree?: true } | undefined, host: string | undefined): Record<string, unknown> => ({
    ...base,
    ...(path === undefined ? {} : { path: path.path, ...(path.access === undefined ? {} : { pathAccess: path.access }), ...(path.tree === true ? { pathTree: true } : {}) }),
    ...(host === undefined ? {} : { host }),
  });
  if (paths.length * hosts.length <= MAX_CONTEXTS) return paths.flatMap((p) => hosts.map((h) => withResource(p, h)));
  return [...paths.map((p) => withResource(p, hosts[0])), ...hosts.map((h) => withResource(paths[0], h))];
}

function describeMeasure(rule: CedarRule, context: Record<string, unknown>): string | undefined {
  const measure = rule.measure;
  if (measure === undefined) return undefined;
  const value = context[measure];
  if (value === undefined) return `the tool did not declare ${measure === 'amountCents' ? 'an amount' : `its ${measure}`}, so the rule applies`;
  switch (measure) {
    case 'amountCents':
      return `measured amount ${((value as number) / 100).toFixed(2)}${context.currency === undefined ? '' : ` ${String(context.currency)}`}`;
    case 'minuteOfDay': {
      const m = value as number;
      return `at ${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')} UTC`;
    }
    case 'depth':
      return `requested at depth ${String(value)}`;
    default:
      return `measured ${measure} ${String(value)}`;
  }
}

/** The Cedar principal, resource, entities and contexts (one per touched path/host pair) of a request. */
export function cedarInputs(request: PolicyRequest, argPointers: readonly string[] = [], measured: Measured = measureRequest(request)): CedarInputs {
  const principal = { type: 'Warden::Agent', id: request.agent.name };
  const resource = { type: 'Warden::Tool', id: request.tool };
  const entities = [
    { uid: principal, attrs: { name: request.agent.name, depth: request.agent.depth }, parents: [] },
    { uid: resource, attrs: {}, parents: [], tags: argTags(request, argPointers) },
  ];
  return { principal, action: { type: 'Warden::Action', id: 'call' }, resource, entities, contexts: cedarContexts(request, measured) };
}

export interface CedarInputs {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  entities: { uid: { type: string; id: string }; attrs: Record<string, unknown>; parents: never[]; tags?: Record<string, string> }[];
  contexts: Record<string, unknown>[];
}

function evaluateCedar(policySetId: string, rules: ReadonlyMap<string, CedarRule>, request: PolicyRequest, inputs: CedarInputs): MatchedRule[] {
  const { principal, action, resource, entities } = inputs;
  const out: MatchedRule[] = [];
  for (const context of inputs.contexts) {
    const answer = cedar.statefulIsAuthorized({
      principal,
      action,
      resource,
      context: context as never,
      preparsedSchemaName: SCHEMA_NAME,
      validateRequest: true,
      preparsedPolicySetId: policySetId,
      entities: entities as never,
    });
    if (answer.type !== 'success') {
      throw new PolicyError('ERR_POLICY_REQUEST_INVALID', `Cedar rejected the request: ${answer.errors.map((e) => e.message).join('; ')}`, { details: { tool: request.tool } });
    }
    const { reason, errors } = answer.response.diagnostics;
    for (const id of reason) {
      const rule = rules.get(id);
      if (rule === undefined) continue; // the default permit
      const detail = describeMeasure(rule, context);
      out.push({ id, sentence: rule.sentence, effect: rule.effect, reason: detail === undefined ? rule.reason : `${rule.reason} (${detail})`, kind: 'cedar' });
    }
    for (const e of errors) {
      const rule = rules.get(e.policyId);
      if (rule === undefined || rule.effect === 'allow') continue;
      out.push({ id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: `${rule.reason} (the rule could not be evaluated: ${e.error.message}; failing closed)`, kind: 'cedar' });
    }
  }
  return out;
}

