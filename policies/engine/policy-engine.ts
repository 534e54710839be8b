/**
 * The policy engine: compiled rules (from packs and task sentences) decide each proposed action.
 * Cedar rules go to cedar-wasm as one preparsed policy set (plus a default permit); stateful
 * rules are evaluated here against the running `PolicyState`.
 *
 * Invariants:
 *  - deny beats approval beats allow; an action no rule matches is allowed (the task's grants
 *    are enforced before the engine is asked);
 *  - a Cedar policy that errors while evaluating counts as matched (fail closed), and a rule
 *    about an effect the tool did not measure matches for the tools it is about;
 *  - `decide` and `recordExecution` are pure functions of their inputs (the clock is the
 *    request's `now`), so decisions replay identically.
 */
import { createHash } from 'node:crypto';
import { PolicyError } from '../../errors';
import { cedar, cedarPolicies, compileRule, CompiledRuleSchema, validateCedarRules, WARDEN_CEDAR_SCHEMA, type CedarRule, type CompiledRule, type StatefulRule } from './compile-rule';
import { readPacks } from './load-pack';
import { isResponseRule } from './parse-response-rule';
import {
  ExecutionOutcomeSchema,
  measureRequest,
  agentKey,
  PolicyRequestSchema,
  type ExecutionOutcome,
  type MatchedRule,
  type Measured,
  type PolicyDecision,
  type PolicyRequest,
  type PolicyRequestInput,
} from './policy-request';
import { callsWithin, counterOf, emptyPolicyState, PolicyStateSchema, recordExecution as recordInState, totalOf, type PolicyState } from './policy-state';
import { argumentLeaves } from './provenance';
import { EMAIL_RECIPIENT_KEYS, PATH_KEYS, PAYMENT_RECIPIENT_KEYS, scopeCoversTool, URL_KEYS, type RuleSubject, type ToolScope } from './rule-syntax';

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
  /** The state after the action ran (or was denied); pure. */
  recordExecution(state: PolicyState, request: PolicyRequestInput, outcome: ExecutionOutcome): PolicyState;
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
 * Compiles the packs' and the given sentences into an engine. Throws `PolicyParseError`
 * (ERR_POLICY_UNREADABLE) for the first sentence that cannot be read, `PolicyError`
 * ERR_POLICY_INVALID when Cedar validation fails, ERR_POLICY_PACK_NOT_FOUND for a missing pack.
 */
export function loadPolicyEngine(options: LoadPolicyEngineOptions = {}): PolicyEngine {
  const rules: CompiledRule[] = [];
  // Response rules (parse-response-rule.ts) share the packs and the task's sentences; the monitor reads them.
  for (const s of readPacks(options.packs ?? [])) if (!isResponseRule(s.sentence)) rules.push(compileRule(s.sentence, s.id, s.source));
  (options.sentences ?? []).forEach((sentence, i) => {
    if (!isResponseRule(sentence)) rules.push(compileRule(sentence, `task:${i + 1}`, `task policies[${i}]`));
  });
  for (const rule of options.rules ?? []) rules.push(CompiledRuleSchema.parse(rule));
  return createPolicyEngine(rules);
}

/** An engine over already compiled rules. */
export function createPolicyEngine(rules: readonly CompiledRule[]): PolicyEngine {
  const ids = new Set<string>();
  for (const rule of rules) {
    if (ids.has(rule.id)) throw new PolicyError('ERR_POLICY_INVALID', `two rules share the id "${rule.id}"`, { details: { id: rule.id } });
    ids.add(rule.id);
  }
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
  const policySets: string[] = [];
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
    policySets.push(id);
  }
  const retainMs = Math.max(MIN_RETAIN_MS, ...statefulRules.map((r) => (r.spec.type === 'rate' ? r.spec.windowMs : 0)));

  const decide = (input: PolicyRequestInput, stateInput?: PolicyState): PolicyDecision => {
    const request = parseRequest(input);
    const state = stateInput ?? emptyPolicyState();
    const measured = measureRequest(request);
    const matched = new Map<string, MatchedRule>();
    if (policySets.length > 0) {
      const inputs = cedarInputs(request, argPointers, measured);
      for (const policySetId of policySets) for (const m of evaluateCedar(policySetId, cedarRules, request, inputs)) if (!matched.has(m.id)) matched.set(m.id, m);
    }
    for (const rule of statefulRules) {
      const detail = evaluateStateful(rule, request, measured, state);
      if (detail !== undefined) matched.set(rule.id, { id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: `${rule.reason} (${detail})`, kind: 'stateful' });
    }
    return decisionOf([...matched.values()]);
  };

  return {
    rules,
    cedarText,
    decide,
    recordExecution(state, input, outcomeInput) {
      const outcome = ExecutionOutcomeSchema.parse(outcomeInput);
      if (outcome.status === 'denied') return state;
      return recordInState(PolicyStateSchema.parse(state), parseRequest(input), outcome, { retainMs });
    },
  };
}

function parseRequest(input: PolicyRequestInput): PolicyRequest {
  const parsed = PolicyRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new PolicyError('ERR_POLICY_REQUEST_INVALID', `invalid policy request: ${issues.map((i) => `${i.path || '(top level)'}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return parsed.data;
}

function decisionOf(matched: MatchedRule[]): PolicyDecision {
  const decision = matched.some((m) => m.effect === 'deny') ? 'deny' : matched.some((m) => m.effect === 'approval') ? 'approval' : 'allow';
  const deciding = matched.filter((m) => m.effect === decision);
  return { decision, matched, reasons: deciding.length > 0 ? deciding.map((m) => m.reason) : ['no rule matched: allowed (the task grants the action)'] };
}

// ---------------------------------------------------------------------------------------------
// Cedar

/** Lower-cased string forms of the arguments rules read as tags. */
function argTags(request: PolicyRequest, pointers: readonly string[]): Record<string, string> {
  if (pointers.length === 0) return {};
  const tags: Record<string, string> = {};
  for (const leaf of argumentLeaves(request.args)) if (pointers.includes(leaf.pointer)) tags[leaf.pointer] = String(leaf.value).toLowerCase();
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
  };
  if (m.rows !== undefined) base.rows = m.rows;
  if (m.operation !== undefined) base.operation = m.operation;
  if (m.amountCents !== undefined) base.amountCents = m.amountCents;
  if (m.currency !== undefined) base.currency = m.currency;
  if (m.files !== undefined) base.files = m.files;
  if (m.bytes !== undefined) base.bytes = m.bytes;
  if (m.method !== undefined) base.method = m.method;
  const paths: (string | undefined)[] = m.paths.length > 0 ? m.paths : [undefined];
  const hosts: (string | undefined)[] = m.hosts.length > 0 ? m.hosts : [undefined];
  const withResource = (path: string | undefined, host: string | undefined): Record<string, unknown> => ({
    ...base,
    ...(path === undefined ? {} : { path }),
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

// ---------------------------------------------------------------------------------------------
// Stateful rules

function subjectCovers(subject: RuleSubject, request: PolicyRequest): boolean {
  if (subject.kind === 'subagents') return request.agent.depth >= 1;
  if (subject.kind === 'agent') return request.agent.name === subject.name;
  return true;
}

function covers(scope: ToolScope, measured: Measured | undefined, tool: string): boolean {
  if (!scopeCoversTool(scope, tool)) return false;
  if (scope.networkWrite === true && measured?.method !== undefined) return !['GET', 'HEAD', 'OPTIONS'].includes(measured.method);
  return true;
}

function measuredValue(metric: 'rows' | 'amount' | 'files' | 'bytes', m: Measured): number | undefined {
  return metric === 'rows' ? m.rows : metric === 'amount' ? m.amountCents : metric === 'files' ? m.files : m.bytes;
}

function formatTotal(metric: string, value: number): string {
  return metric === 'amount' ? `$${(value / 100).toFixed(2)}` : `${value} ${metric}`;
}

/** A detail string when the rule matches, undefined when it does not. */
function evaluateStateful(rule: StatefulRule, request: PolicyRequest, measured: Measured, state: PolicyState): string | undefined {
  if (!subjectCovers(rule.subject, request)) return undefined;
  const spec = rule.spec;
  const onlyAgent = 'scope' in spec && spec.scope === 'agent' ? agentKey(request.agent) : undefined;
  const where = onlyAgent === undefined ? 'across the task' : 'by this agent';
  switch (spec.type) {
    case 'rate': {
      if (!covers(spec.tools, measured, request.tool)) return undefined;
      const count = callsWithin(state, measured.nowMs, spec.windowMs, (t) => scopeCoversTool(spec.tools, t), onlyAgent);
      return count + 1 > spec.max ? `${count} calls ${where} in the last ${spec.window}, limit ${spec.max}` : undefined;
    }
    case 'total': {
      const inScope = covers(spec.tools, measured, request.tool);
      const countsTool = (t: string): boolean => scopeCoversTool(spec.tools, t) || !spec.tools.named;
      const counter = counterOf(spec.metric, spec.rowsOperation);
      if (spec.metric === 'calls') {
        if (!inScope) return undefined;
        const sofar = totalOf(state, 'calls', (t) => scopeCoversTool(spec.tools, t), onlyAgent);
        return sofar + 1 > spec.max ? `${sofar} ${spec.tools.spawn === true ? 'sub-agents spawned' : 'calls'} ${where} so far, limit ${spec.max}` : undefined;
      }
      const value = measuredValue(spec.metric, measured);
      if (value === undefined) return inScope ? `the tool did not declare its ${spec.metric}, so the rule applies` : undefined;
      if (!inScope && spec.tools.named) return undefined;
      if (spec.rowsOperation !== undefined && measured.operation !== undefined && measured.operation !== spec.rowsOperation) return undefined;
      const sofar = totalOf(state, counter, countsTool, onlyAgent);
      return sofar + value > spec.max ? `${formatTotal(spec.metric, sofar)} ${where} so far + ${formatTotal(spec.metric, value)} now, limit ${formatTotal(spec.metric, spec.max)}` : undefined;
    }
    case 'intent': {
      if (!covers(spec.tools, measured, request.tool)) return undefined;
      const bound = boundArguments(spec.value, request.args);
      if (bound.length === 0) return `no ${NOUNS[spec.value]} argument found to check, so the rule applies`;
      const untrusted = bound.filter((b) => request.provenance[b.pointer] !== 'user');
      if (untrusted.length === 0) return undefined;
      return untrusted
        .map((b) => {
          const source = request.provenance[b.pointer];
          const from = source === 'tool-output' ? 'came from an earlier tool output' : source === 'literal' ? 'was not given by the user' : 'has no recorded provenance';
          return `${b.pointer} = ${JSON.stringify(shorten(String(b.value)))} ${from}`;
        })
        .join('; ');
    }
  }
}

const NOUNS: Readonly<Record<'email' | 'recipient' | 'url' | 'path', string>> = { email: 'recipient address', recipient: 'recipient', url: 'URL', path: 'path' };

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function keyOf(pointer: string): string {
  const segments = pointer.split('/').filter((s) => s !== '' && !/^\d+$/.test(s));
  const last = segments[segments.length - 1] ?? '';
  return last.toLowerCase().replace(/[_-]/g, '');
}

function isEmailList(value: string): boolean {
  const parts = value.split(/[,;]/).map((p) => p.trim());
  return parts.length > 0 && parts.every((p) => p.includes('@') && !p.includes(' '));
}

/** The argument values an intent-binding rule checks, by pointer. */
export function boundArguments(value: 'email' | 'recipient' | 'url' | 'path', args: Record<string, unknown>): { pointer: string; value: string | number }[] {
  return argumentLeaves(args).filter((leaf) => {
    const key = keyOf(leaf.pointer);
    const text = String(leaf.value);
    switch (value) {
      case 'email':
        return EMAIL_RECIPIENT_KEYS.includes(key) || (typeof leaf.value === 'string' && isEmailList(text));
      case 'recipient':
        return PAYMENT_RECIPIENT_KEYS.includes(key);
      case 'url':
        return URL_KEYS.includes(key) || (typeof leaf.value === 'string' && (text.startsWith('http://') || text.startsWith('https://')));
      case 'path':
        return PATH_KEYS.includes(key);
    }
  });
}

