/**
 * Parsed rule → `CompiledRule`, of one of two kinds:
 *  - `cedar`: stateless authorization (tools, arguments, agent, depth, measured effect of the one
 *    call, paths, hosts, time of day), rendered as a Cedar policy with @id/@decision/@reason
 *    annotations and validated against warden.cedarschema when loaded;
 *  - `stateful`: what needs history or Warden's own data (rates, running totals and budgets
 *    across the sub-agent tree, where argument values came from, where private data flows, SQL
 *    effects per table), a typed spec Warden's own evaluator runs.
 * Every compiled rule also keeps its parsed form (`rule`), from which evaluate-rule.ts builds the
 * check the engine runs; the Cedar text is the reviewable, schema-validated form of the same rule,
 * and the two are checked against each other (test/policies/cedar-agreement.test.ts).
 *
 * Invariant: every Cedar policy is written so that a missing measurement makes it match (fail
 * closed) for the tools it names, unless the measurement is pending (made where the call is
 * applied, and decided there), and every optional attribute is read behind `has`, so schema
 * validation passes and evaluation cannot error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PolicyError } from '../../errors';
import { parseRule } from './parse-rule';
import { policyDigest, prevalidatedPolicies } from './prevalidated-policies';
import { pathRuleMatchesTree, reachAccessOf, WORKSPACE_ROOT, type LimitScope, type Metric, type ParsedRule, type RuleSubject, type ToolScope } from './rule-syntax';

export const RuleEffectSchema = z.enum(['allow', 'deny', 'approval']);

export const ToolScopeSchema = z.strictObject({
  label: z.string(),
  patterns: z.array(z.string()),
  tags: z.array(z.string()).optional(),
  named: z.boolean(),
  spawn: z.boolean().optional(),
  networkWrite: z.boolean().optional(),
});

export const RuleSubjectSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('all') }),
  z.strictObject({ kind: z.literal('subagents') }),
  z.strictObject({ kind: z.literal('agent'), name: z.string() }),
]);

export const MetricSchema = z.enum(['calls', 'rows', 'amount', 'files', 'bytes']);

export const StatefulSpecSchema = z.discriminatedUnion('type', [
  /** A running total (this agent's or the whole task tree's) plus this call must stay within `max`. */
  z.strictObject({
    type: z.literal('total'),
    metric: MetricSchema,
    /** Cents for amounts, bytes for sizes. */
    max: z.number().int().min(0),
    tools: ToolScopeSchema,
    scope: z.enum(['agent', 'tree']),
    rowsOperation: z.enum(['delete', 'insert', 'update']).optional(),
    currency: z.string().optional(),
  }),
  /** At most `max` calls of `tools` in any window of `windowMs` ending now. */
  z.strictObject({
    type: z.literal('rate'),
    max: z.number().int().min(0),
    windowMs: z.number().int().positive(),
    window: z.string(),
    tools: ToolScopeSchema,
    scope: z.enum(['agent', 'tree']),
  }),
  /** The argument values of kind `value` must have come from the user (intent binding). */
  z.strictObject({
    type: z.literal('intent'),
    value: z.enum(['email', 'message', 'recipient', 'amount', 'url', 'path']),
    tools: ToolScopeSchema,
  }),
  /** After a private read anywhere in the task tree, every destination of a send must have come from the user. */
  z.strictObject({
    type: z.literal('flow'),
    destination: z.enum(['host', 'recipient', 'any']),
    tools: ToolScopeSchema,
  }),
  /** SQL effects on named tables, as the broker measured them. */
  z.strictObject({
    type: z.literal('table'),
    tables: z.array(z.string()).min(1),
    operation: z.enum(['delete', 'insert', 'update', 'write', 'read']),
    max: z.number().int().min(0).optional(),
    tools: ToolScopeSchema,
  }),
]);
export type StatefulSpec = z.infer<typeof StatefulSpecSchema>;

/** Context attribute a Cedar rule decides on, used to explain a match ("measured 42 rows"). */
export const CedarMeasureSchema = z.enum(['rows', 'amountCents', 'files', 'bytes', 'path', 'host', 'method', 'minuteOfDay', 'depth']);
export type CedarMeasure = z.infer<typeof CedarMeasureSchema>;

const RuleCommonShape = {
  /** Stable id: `<pack>:<line>` for pack rules, `task:<n>` for task sentences. */
  id: z.string().min(1),
  sentence: z.string(),
  form: z.enum(['tool', 'limit', 'rate', 'path', 'host', 'time-window', 'subagent-depth', 'intent', 'flow', 'table']),
  effect: RuleEffectSchema,
  /** Why the rule exists, in words; reported with every decision it takes part in. */
  reason: z.string(),
  subject: RuleSubjectSchema,
  /** Where the sentence was written, e.g. "policies/foundation/rules.txt:4". */
  source: z.string().optional(),
  /** `shadow`: matched and recorded (step, custody, backtests), never held or denied. Absent: enforced. */
  enforcement: z.enum(['enforce', 'shadow']).optional(),
  /** The parsed sentence, from which the engine's check is built (rule-syntax.ts `ParsedRule`). */
  rule: z.custom<ParsedRule>((value) => typeof value === 'object' && value !== null && typeof (value as { form?: unknown }).form === 'string').optional(),
};

export const CedarRuleSchema = z.strictObject({
  ...RuleCommonShape,
  kind: z.literal('cedar'),
  /** One Cedar policy, annotated with @id, @decision, @reason and @sentence. */
  cedar: z.string(),
  measure: CedarMeasureSchema.optional(),
  /** Argument pointers the policy reads as tags of the Tool entity. */
  argPointers: z.array(z.string()),
});

export const StatefulRuleSchema = z.strictObject({
  ...RuleCommonShape,
  kind: z.literal('stateful'),
  spec: StatefulSpecSchema,
});

export const CompiledRuleSchema = z.discriminatedUnion('kind', [CedarRuleSchema, StatefulRuleSchema]);
export type CompiledRule = z.infer<typeof CompiledRuleSchema>;
export type CedarRule = z.infer<typeof CedarRuleSchema>;
export type StatefulRule = z.infer<typeof StatefulRuleSchema>;

// ---------------------------------------------------------------------------------------------
// Cedar text

/** The Cedar schema every compiled policy is validated against. */
export const WARDEN_CEDAR_SCHEMA: string = readFileSync(join(__dirname, 'warden.cedarschema'), 'utf8');

/** A Cedar string literal. */
export function cedarString(text: string): string {
  let out = '"';
  for (const c of text) {
    if (c === '\\' || c === '"') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else out += c;
  }
  return `${out}"`;
}

const WILDCARD = Symbol('*');

/** A `like` pattern from literal pieces and wildcards: literal `*`, `"` and `\` are escaped. */
function likeOf(...parts: ReadonlyArray<string | typeof WILDCARD>): string {
  let out = '"';
  for (const part of parts) {
    if (part === WILDCARD) {
      out += '*';
      continue;
    }
    for (const c of part) out += c === '*' || c === '"' || c === '\\' ? `\\${c}` : c === '\n' ? '\\n' : c;
  }
  return `${out}"`;
}

/** A Cedar `like` pattern from a glob: `*` stays a wildcard, everything else is literal. */
function likePattern(glob: string): string {
  const parts: (string | typeof WILDCARD)[] = [];
  glob.split('*').forEach((piece, i) => {
    if (i > 0) parts.push(WILDCARD);
    if (piece !== '') parts.push(piece);
  });
  return likeOf(...parts);
}

function anyOf(parts: readonly string[]): string {
  if (parts.length === 1) return parts[0] as string;
  return `(${parts.join(' || ')})`;
}

/** Negation; `expr` is parenthesised unless it already is one group. */
function not(expr: string): string {
  return expr.startsWith('(') && expr.endsWith(')') && balancedGroup(expr) ? `!${expr}` : `!(${expr})`;
}

function balancedGroup(expr: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < expr.length; i += 1) {
    const c = expr[i];
    if (inString) {
      if (c === '\\') i += 1;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '(') depth += 1;
    else if (c === ')') {
      depth -= 1;
      if (depth === 0 && i < expr.length - 1) return false;
    }
  }
  return depth === 0;
}

function allOf(parts: readonly string[]): string {
  const kept = parts.filter((p) => p !== 'true');
  if (kept.length === 0) return 'true';
  return kept.join(' && ');
}

function toolPatternMatches(pattern: string): string {
  return pattern.includes('*') ? `context.tool like ${likePattern(pattern)}` : `context.tool == ${cedarString(pattern)}`;
}

function toolCondition(scope: ToolScope): string {
  if (scope.spawn === true) {
    const specific = scope.patterns.filter((p) => p !== 'spawn:*');
    return allOf(['context.kind == "spawn"', specific.length > 0 ? anyOf(specific.map((p) => `context.tool like ${likePattern(p)}`)) : 'true']);
  }
  const parts = ['context.kind == "tool"'];
  if (!scope.patterns.includes('*')) {
    const alternatives = [...scope.patterns.map(toolPatternMatches)];
    if (scope.tags !== undefined && scope.tags.length > 0) alternatives.push(`context.tags.containsAny([${scope.tags.map(cedarString).join(', ')}])`);
    // An fs built-in named: a call reaching the whole workspace unseen with that access is covered too.
    for (const access of reachAccessOf(scope.patterns)) alternatives.push(`(context has pathTree && context has pathAccess && context.pathAccess == ${cedarString(access)})`);
    parts.push(alternatives.length === 0 ? 'false' : anyOf(alternatives));
  }
  if (scope.networkWrite === true) parts.push('(if context has networkWrite then context.networkWrite else !context.pending.contains("method"))');
  return allOf(parts);
}

/** The measured value, else fail closed unless it is measured where the call is applied. */
function measuredOr(attribute: string, test: string, pending: string): string {
  return `(if context has ${attribute} then ${test} else !context.pending.contains(${cedarString(pending)}))`;
}

function subjectCondition(subject: RuleSubject): string {
  if (subject.kind === 'subagents') return 'context.depth >= 1';
  if (subject.kind === 'agent') return `context.agent == ${cedarString(subject.name)}`;
  return 'true';
}

const PENDING_OF: Readonly<Record<string, string>> = { rows: 'rows', amountCents: 'amount', files: 'files', bytes: 'bytes' };

function pathMatches(path: string): string {
  if (path.includes('*')) return `context.path like ${likePattern(path)}`;
  if (path === '/') return 'true';
  return `(context.path == ${cedarString(path)} || context.path like ${likeOf(`${path}/`, WILDCARD)})`;
}

function hostMatches(host: string): string {
  return host.includes('*') ? `context.host like ${likePattern(host)}` : `context.host == ${cedarString(host)}`;
}

const METRIC_ATTRIBUTE: Readonly<Record<Exclude<Metric, 'calls'>, CedarMeasure>> = {
  rows: 'rows',
  amount: 'amountCents',
  files: 'files',
  bytes: 'bytes',
};

function minutesText(m: number): string {
  const h = Math.floor(m / 60);
  const min = m % 60;
  return `${String(h).padStart(2, '0')}:${String(min).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Reasons

function amountText(metric: Metric, max: number, currency?: string): string {
  if (metric === 'amount') {
    const value = (max / 100).toFixed(max % 100 === 0 ? 0 : 2);
    return currency === 'USD' || currency === undefined ? `$${value}` : currency === 'EUR' ? `€${value}` : currency === 'GBP' ? `£${value}` : `${value} ${currency}`;
  }
  if (metric === 'bytes') return `${max} bytes`;
  return `${max} ${metric === 'calls' ? 'calls' : metric}`;
}

function scopeText(scope: LimitScope): string {
  return scope === 'call' ? 'in one call' : scope === 'agent' ? 'by one agent' : 'across the task and its sub-agents';
}

function subjectText(subject: RuleSubject): string {
  return subject.kind === 'subagents' ? ' by a sub-agent' : subject.kind === 'agent' ? ` by agent "${subject.name}"` : '';
}

function effectText(effect: ParsedRule['effect']): string {
  return effect === 'deny' ? 'is denied' : effect === 'approval' ? 'needs approval' : 'is allowed';
}

/** The rule in words: what it covers and what it does. */
export function describeRule(rule: ParsedRule): string {
  const who = subjectText(rule.subject);
  const does = effectText(rule.effect);
  switch (rule.form) {
    case 'tool': {
      if (rule.only) return `calling any tool other than ${rule.tools.label}${who} is denied`;
      const what = rule.tools.spawn === true ? 'spawning sub-agents' : `calling ${rule.tools.label}`;
      const when = rule.condition === undefined ? '' : ` when argument ${rule.condition.pointer} ${rule.condition.op.replace('-', ' ')} "${rule.condition.value}"`;
      return `${what}${who}${when} ${does}`;
    }
    case 'limit': {
      const verb = rule.rowsOperation === 'delete' ? 'deleting' : rule.rowsOperation === 'insert' ? 'inserting' : rule.rowsOperation === 'update' ? 'updating' : METRIC_VERB[rule.metric];
      const what =
        rule.metric === 'calls'
          ? rule.tools.spawn === true
            ? `spawning more than ${rule.max} sub-agents`
            : `making more than ${rule.max} calls of ${rule.tools.label}`
          : `${verb} more than ${amountText(rule.metric, rule.max, rule.currency)} with ${rule.tools.label}`;
      return `${what} ${scopeText(rule.scope)}${who} ${does}`;
    }
    case 'rate':
      return `making more than ${rule.max} calls of ${rule.tools.label} per ${rule.window}${rule.scope === 'agent' ? ' by one agent' : ' across the task'}${who} ${does}`;
    case 'path':
      return `calling ${rule.tools.label}${who} on a path ${rule.mode === 'outside' ? 'outside' : 'inside'} ${rule.paths.join(' or ')} ${does}`;
    case 'host':
      return `calling ${rule.tools.label}${who} ${rule.mode === 'allow-list' ? `on any host other than ${rule.hosts.join(', ')}` : `on ${rule.hosts.join(', ')}`} ${does}`;
    case 'time-window':
      return `calling ${rule.tools.label}${who} outside ${minutesText(rule.fromMinute)}-${minutesText(rule.toMinute)} ${rule.zone} ${does}`;
    case 'subagent-depth':
      return `spawning sub-agents more than ${rule.maxLevels} levels deep${who} ${does}`;
    case 'intent': {
      const noun = rule.value === 'email' ? 'an email address' : rule.value === 'message' ? 'a message recipient' : rule.value === 'recipient' ? 'a payee' : rule.value === 'amount' ? 'an amount' : rule.value === 'url' ? 'a URL' : 'a path';
      return `calling ${rule.tools.label}${who} with ${noun} the user did not give ${does}`;
    }
    case 'flow': {
      const to = rule.destination === 'host' ? 'a host' : rule.destination === 'recipient' ? 'a recipient' : 'a host or recipient';
      return `sending data${who}, after private data was read, to ${to} the user did not give ${does}`;
    }
    case 'table': {
      const verb = rule.operation === 'read' ? 'reading' : rule.operation === 'write' ? 'changing' : `${rule.operation === 'delete' ? 'deleting' : rule.operation === 'insert' ? 'inserting' : 'updating'}`;
      const amount = rule.max === undefined ? (rule.operation === 'read' ? '' : ' rows') : ` more than ${rule.max} rows`;
      return `${verb}${amount} ${rule.operation === 'read' ? '' : rule.operation === 'insert' ? 'into ' : 'in '}table ${rule.tables.join(', ')}${who} ${does}`.replace('  ', ' ');
    }
  }
}

const METRIC_VERB: Readonly<Record<Metric, string>> = { calls: 'making', rows: 'changing', amount: 'spending', files: 'writing', bytes: 'writing' };

// ---------------------------------------------------------------------------------------------
// Compile

function annotated(id: string, rule: ParsedRule, reason: string, body: string): string {
  const verb = rule.effect === 'allow' ? 'permit' : 'forbid';
  return [
    `@id(${cedarString(id)})`,
    `@decision(${cedarString(rule.effect)})`,
    `@reason(${cedarString(reason)})`,
    `@sentence(${cedarString(rule.sentence)})`,
    `${verb} (principal, action == Warden::Action::"call", resource)`,
    `when { ${body} };`,
  ].join('\n');
}

/**
 * A metric over the limit, for the tools in scope; a missing measurement counts as over (fail
 * closed) unless it is pending. For a verb's default tools, any call that measured the metric
 * counts too.
 */
function overLimit(attribute: string, max: number, tools: ToolScope, rowsOperation?: string): string {
  let value: string;
  let present: string;
  if (attribute === 'rows' && rowsOperation !== undefined) {
    const byOp = `rows${rowsOperation[0]!.toUpperCase()}${rowsOperation.slice(1)}`;
    value = `(if context has ${byOp} then context.${byOp} > ${max} else ${measuredOr('rows', `context.rows > ${max} && (if context has operation then context.operation == ${cedarString(rowsOperation)} else true)`, 'rows')})`;
    present = `(context has ${byOp} || context has rows)`;
  } else {
    value = measuredOr(attribute, `context.${attribute} > ${max}`, PENDING_OF[attribute] ?? attribute);
    present = `context has ${attribute}`;
  }
  const inScope = `(${toolCondition(tools)} && ${value})`;
  if (tools.named) return inScope;
  return `(${inScope} || (${present} && ${value}))`;
}

function timeWindowInside(rule: Extract<ParsedRule, { form: 'time-window' }>): string {
  const from = (((rule.fromMinute - rule.offsetMinutes) % 1440) + 1440) % 1440;
  const to = (((rule.toMinute - rule.offsetMinutes) % 1440) + 1440) % 1440;
  if (from < to) return `(context.minuteOfDay >= ${from} && context.minuteOfDay < ${to})`;
  return `(context.minuteOfDay >= ${from} || context.minuteOfDay < ${to})`;
}

/** Compiles one parsed rule under the given id. */
export function compileParsedRule(rule: ParsedRule, id: string, source?: string): CompiledRule {
  const reason = describeRule(rule);
  const common = {
    id,
    sentence: rule.sentence,
    form: rule.form,
    effect: rule.effect,
    reason,
    subject: rule.subject,
    ...(source === undefined ? {} : { source }),
    ...(rule.enforcement === 'shadow' ? { enforcement: 'shadow' as const } : {}),
    rule,
  };
  const cedar = (body: string, measure?: CedarMeasure, argPointers: string[] = []): CompiledRule => ({
    ...common,
    kind: 'cedar',
    cedar: annotated(id, rule, reason, body),
    ...(measure === undefined ? {} : { measure }),
    argPointers,
  });
  const subject = subjectCondition(rule.subject);

  switch (rule.form) {
    case 'tool': {
      if (rule.only) {
        const allowed = [...rule.tools.patterns.map(toolPatternMatches), ...(rule.tools.tags ?? []).length > 0 ? [`context.tags.containsAny([${(rule.tools.tags ?? []).map(cedarString).join(', ')}])`] : []];
        return cedar(allOf(['context.kind == "tool"', allowed.length === 0 ? 'true' : not(anyOf(allowed)), subject]));
      }
      if (rule.condition === undefined) return cedar(allOf([toolCondition(rule.tools), subject]));
      const { pointer, op, value } = rule.condition;
      const tag = `resource.getTag(${cedarString(pointer)})`;
      const test =
        op === 'is'
          ? `${tag} == ${cedarString(value)}`
          : op === 'contains'
            ? `${tag} like ${likeOf(WILDCARD, value, WILDCARD)}`
            : op === 'starts-with'
              ? `${tag} like ${likeOf(value, WILDCARD)}`
              : `${tag} like ${likeOf(WILDCARD, value)}`;
      return cedar(allOf([toolCondition(rule.tools), subject, `resource.hasTag(${cedarString(pointer)})`, test]), undefined, [pointer]);
    }
    case 'limit': {
      if (rule.scope === 'call') {
        if (rule.metric === 'calls') throw new TypeError('a per-call limit on calls cannot be compiled');
        const attribute = METRIC_ATTRIBUTE[rule.metric];
        return cedar(allOf([overLimit(attribute, rule.max, rule.tools, rule.rowsOperation), subject]), attribute);
      }
      return {
        ...common,
        kind: 'stateful',
        spec: {
          type: 'total',
          metric: rule.metric,
          max: rule.max,
          tools: rule.tools,
          scope: rule.scope,
          ...(rule.rowsOperation === undefined ? {} : { rowsOperation: rule.rowsOperation }),
          ...(rule.currency === undefined ? {} : { currency: rule.currency }),
        },
      };
    }
    case 'rate':
      return { ...common, kind: 'stateful', spec: { type: 'rate', max: rule.max, windowMs: rule.windowMs, window: rule.window, tools: rule.tools, scope: rule.scope } };
    case 'intent':
      return { ...common, kind: 'stateful', spec: { type: 'intent', value: rule.value, tools: rule.tools } };
    case 'flow':
      return { ...common, kind: 'stateful', spec: { type: 'flow', destination: rule.destination, tools: rule.tools } };
    case 'table':
      return { ...common, kind: 'stateful', spec: { type: 'table', tables: rule.tables, operation: rule.operation, ...(rule.max === undefined ? {} : { max: rule.max }), tools: rule.tools } };
    case 'path': {
      const inside = anyOf(rule.paths.map(pathMatches));
      // A call that reaches every path of the workspace: whether some path there is one the rule is about, decided here.
      const where = `(if context has pathTree then ${pathRuleMatchesTree(rule.paths, rule.mode, WORKSPACE_ROOT)} else ${rule.mode === 'outside' ? not(inside) : inside})`;
      // Each context holds one path and the access the call has to it.
      const access = rule.access === undefined ? where : `(if context has pathAccess then context.pathAccess == ${cedarString(rule.access)} else true) && ${where}`;
      return cedar(allOf([toolCondition(rule.tools), subject, measuredOr('path', access, 'path')]), 'path');
    }
    case 'host': {
      const listed = anyOf(rule.hosts.map(hostMatches));
      const test = rule.mode === 'allow-list' ? not(listed) : listed;
      return cedar(allOf([toolCondition(rule.tools), subject, measuredOr('host', test, 'host')]), 'host');
    }
    case 'time-window':
      return cedar(allOf([toolCondition(rule.tools), subject, not(timeWindowInside(rule))]), 'minuteOfDay');
    case 'subagent-depth':
      return cedar(allOf(['context.kind == "spawn"', `context.depth >= ${rule.maxLevels}`, subject]), 'depth');
  }
}

/** Reads and compiles one sentence (`shadow: ...` or `enforcement: 'shadow'` to record only). Throws `PolicyParseError` when it cannot be read. */
export function compileRule(sentence: string, id: string, source?: string, enforcement?: 'enforce' | 'shadow'): CompiledRule {
  return compileParsedRule(parseRule(sentence, { ...(source === undefined ? {} : { source }), ...(enforcement === undefined ? {} : { mode: enforcement }) }), id, source);
}

// ---------------------------------------------------------------------------------------------
// Validation

// cedar-wasm ships CommonJS for Node under its `nodejs` folder; the package root is ESM.
// Loaded on first use: a process that only checks rules this build validated already (e.g.
// `warden run` as a client, see prevalidated-policies.ts) never loads the WebAssembly module.
type CedarWasm = typeof import('@cedar-policy/cedar-wasm/nodejs');
let cedarModule: CedarWasm | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadCedar = (): CedarWasm => (cedarModule ??= require('@cedar-policy/cedar-wasm/nodejs') as CedarWasm);
export const cedar: CedarWasm = new Proxy({} as CedarWasm, { get: (_target, key) => loadCedar()[key as keyof CedarWasm] });

/** The Cedar policies of `rules` by id, for a policy set. */
export function cedarPolicies(rules: readonly CompiledRule[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rule of rules) if (rule.kind === 'cedar') out[rule.id] = rule.cedar;
  return out;
}

/**
 * Validates the Cedar policies of `rules` against warden.cedarschema (strict mode). Throws
 * `PolicyError` ERR_POLICY_INVALID naming each rule and Cedar's complaint.
 */
export function validateCedarRules(rules: readonly CompiledRule[]): void {
  // Policies this build validated already (the bundled packs, see prevalidated-policies.ts), or
  // this process did (validatedHere), are not validated again: the same text under the same
  // schema gets the same answer from the same Cedar release.
  const known = prevalidatedPolicies(WARDEN_CEDAR_SCHEMA);
  const unvalidated = Object.entries(cedarPolicies(rules))
    .map(([id, text]) => ({ id, text, digest: policyDigest(WARDEN_CEDAR_SCHEMA, text) }))
    .filter(({ digest }) => !known.has(digest) && !validatedHere.has(digest));
  if (unvalidated.length === 0) return;
  const policies = Object.fromEntries(unvalidated.map(({ id, text }) => [id, text]));
  const answer = cedar.validate({ schema: WARDEN_CEDAR_SCHEMA, policies: { staticPolicies: policies }, validationSettings: { mode: 'strict' } });
  const problems: { id: string; sentence: string; message: string }[] = [];
  if (answer.type === 'failure') {
    for (const e of answer.errors) problems.push({ id: '(policy set)', sentence: '', message: e.message });
  } else {
    for (const e of answer.validationErrors) {
      const rule = rules.find((r) => r.id === e.policyId);
      problems.push({ id: e.policyId, sentence: rule?.sentence ?? '', message: e.error.message });
    }
  }
  if (problems.length > 0) {
    throw new PolicyError('ERR_POLICY_INVALID', `compiled policies failed Cedar validation:\n${problems.map((p) => `  ${p.id} "${p.sentence}": ${p.message}`).join('\n')}`, {
      details: { problems },
    });
  }
  // Only a set with no problem at all is recorded: a failing one is validated again (and fails again).
  for (const { digest } of unvalidated) validatedHere.add(digest);
}

/**
 * Digests ({@link policyDigest}) of the policies this process validated under WARDEN_CEDAR_SCHEMA
 * with its own cedar-wasm: a worker validates a task's rules once, not once per engine (every task,
 * every sandbox call's gate), and a warmed process (warmPolicyEngine) not again at its first task.
 */
const validatedHere = new Set<string>();
