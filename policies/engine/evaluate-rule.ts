/**
 * The check the engine runs for each compiled rule: a plain function of the request, its
 * measured facts and the running state, built once per rule from its parsed form. For stateless
 * rules it decides exactly what the rule's Cedar policy decides (the two are compared on every
 * pack example and on generated requests, test/policies/cedar-agreement.test.ts); for the others
 * it is the only definition.
 *
 * Invariants: a rule about an effect matches when the tools it is about did not measure the
 * effect (fail closed), unless the measurement is pending (made where the call is applied, and
 * decided there); a binding rule applies only to calls whose tool has the effect it binds, and
 * to every call of a tool that may have it without saying where (fail closed).
 */
import { normalizeArgText } from './normalize-text';
import { agentKey, isUserGiven, type Measured, type PendingFact, type PolicyRequest, type ValueSource } from './policy-request';
import { counterOf, privateReadsIn, type PolicyState } from './policy-state';
import { argumentLeaves } from './provenance';
import {
  pathRuleMatchesTree,
  reachAccessOf,
  AMOUNT_KEYS,
  EMAIL_RECIPIENT_KEYS,
  globMatch,
  legacyTagsOf,
  MESSAGE_RECIPIENT_KEYS,
  PATH_KEYS,
  PAYMENT_RECIPIENT_KEYS,
  URL_KEYS,
  type ArgCondition,
  type BoundValue,
  type ParsedRule,
  type RuleSubject,
  type ToolScope,
} from './rule-syntax';
import type { CompiledRule } from './compile-rule';
import { ellipsize } from '../../cut-text';

/** What one check looks at. `memo` is shared by every check of one decision (totals and rates computed once). */
export interface CheckContext {
  request: PolicyRequest;
  m: Measured;
  state: PolicyState;
  memo: Map<string, number>;
  /** Bound values per kind, found once per decision. */
  bound?: Map<BoundValue, ReturnType<typeof boundValues>>;
  /** Every leaf of the arguments (provenance.ts `argumentLeaves`), listed once per decision for the binding rules. */
  argumentLeaves?: { pointer: string; value: string | number }[];
  /** Argument conditions' text by pointer (normalised; null: no string or number leaf there), found once per decision. */
  leaves?: Map<string, string | null>;
  /** Per-tool aggregates of the state, computed once per decision. */
  perTool?: Map<string, Map<string, number>>;
  /** Every counter's total by tool over the whole task tree (rule-groups.ts), computed once per decision. */
  treeTotals?: Map<string, Map<string, number>>;
}

/** A detail ("measured 42 rows") when the rule matches, undefined when it does not. */
export type RuleCheck = (context: CheckContext) => string | undefined;

// ---------------------------------------------------------------------------------------------
// Scope

function subjectCovers(subject: RuleSubject, request: PolicyRequest): boolean {
  if (subject.kind === 'subagents') return request.agent.depth >= 1;
  if (subject.kind === 'agent') return request.agent.name === subject.name;
  return true;
}

/** A scope prepared for fast matching: exact names, globs and tags apart. */
interface CompiledScope {
  spawn: boolean;
  any: boolean;
  names: ReadonlySet<string>;
  globs: readonly string[];
  tags: readonly string[];
  networkWrite: boolean;
  /** Path accesses of the fs built-ins the scope names: a call that can make them anywhere in the workspace unseen is covered too. */
  reach: readonly string[];
  /** Whether a recorded tool (with the tags recorded for it) is covered, remembered. */
  recorded: Map<string, { tags: readonly string[] | undefined; covered: boolean }>;
  /**
   * What `coversTool` (bit 1 known, bit 2 covered) and `coversTool || reaches` (bits 4 and 8)
   * answered per request signature (`Measured.signature`): both depend only on what the signature
   * holds (tool, spawn, tags, workspace reach), so a request of the same signature gets the
   * remembered answer.
   */
  bySignature: Map<number, number>;
  /** A scope of one exact name of the other spawn-ness (see `only`): it covers no recorded tool. */
  none: boolean;
  /** The one tool a scope of one exact name covers (no glob, tag or "any"): `coversTool` is `tool === only` (spawn or not as the scope). */
  only: string | undefined;
}

function compileScope(scope: ToolScope): CompiledScope {
  const patterns = scope.spawn === true ? scope.patterns.filter((p) => p !== 'spawn:*') : scope.patterns;
  const compiled: CompiledScope = {
    spawn: scope.spawn === true,
    any: scope.spawn === true ? patterns.length === 0 : patterns.includes('*'),
    names: new Set(patterns.filter((p) => !p.includes('*'))),
    globs: patterns.filter((p) => p.includes('*') && p !== '*'),
    tags: scope.tags ?? [],
    networkWrite: scope.networkWrite === true,
    reach: reachAccessOf(patterns),
    recorded: new Map(),
    bySignature: new Map(),
    only: undefined,
    none: false,
  };
  if (!compiled.any && compiled.tags.length === 0 && compiled.globs.length === 0 && compiled.names.size === 1) {
    const [name] = compiled.names as ReadonlySet<string>;
    // `coversTool` of another spawn-ness is false whatever the name: such a scope covers no tool.
    compiled.only = (name as string).startsWith('spawn:') === compiled.spawn ? name : undefined;
    if (compiled.only === undefined) compiled.none = true;
  }
  return compiled;
}

const TOOL_KNOWN = 1;
const TOOL_COVERED = 2;
const CALL_KNOWN = 4;
const CALL_COVERED = 8;
/** Signatures a scope remembers answers for (the distinct kinds of call a worker sees are few). */
const MAX_SIGNATURES = 1024;

function remember(scope: CompiledScope, signature: number, bits: number): void {
  if (scope.bySignature.size >= MAX_SIGNATURES) scope.bySignature.clear();
  scope.bySignature.set(signature, bits);
}

/** `coversTool` for the request's tool and tags, remembered per request signature. */
function coversRequestTool(scope: CompiledScope, request: PolicyRequest, m: Measured): boolean {
  const signature = m.signature;
  if (signature === undefined) return coversTool(scope, request.tool, m.tagSet);
  let bits = scope.bySignature.get(signature) ?? 0;
  if ((bits & TOOL_KNOWN) === 0) {
    bits |= TOOL_KNOWN | (coversTool(scope, request.tool, m.tagSet) ? TOOL_COVERED : 0);
    remember(scope, signature, bits);
  }
  return (bits & TOOL_COVERED) !== 0;
}

/** `coversTool || reaches` for the request, remembered per request signature. */
function coversOrReaches(scope: CompiledScope, request: PolicyRequest, m: Measured): boolean {
  const signature = m.signature;
  if (signature === undefined) return coversTool(scope, request.tool, m.tagSet) || reaches(scope, m);
  let bits = scope.bySignature.get(signature) ?? 0;
  if ((bits & CALL_KNOWN) === 0) {
    const covered = coversRequestTool(scope, request, m) || reaches(scope, m);
    // Read again: coversRequestTool may have remembered the tool bits meanwhile.
    bits = (scope.bySignature.get(signature) ?? 0) | CALL_KNOWN | (covered ? CALL_COVERED : 0);
    remember(scope, signature, bits);
  }
  return (bits & CALL_COVERED) !== 0;
}

/** Whether the compiled scope covers a tool with these tags (a Set, or a recorded list). */
function coversTool(scope: CompiledScope, tool: string, tags: ReadonlySet<string> | readonly string[] | undefined): boolean {
  if (tool.startsWith('spawn:') !== scope.spawn) return false;
  if (scope.any || scope.names.has(tool)) return true;
  const list = tags ?? legacyTagsOf(tool);
  for (let i = 0; i < scope.tags.length; i += 1) {
    const tag = scope.tags[i] as string;
    if (list instanceof Set ? list.has(tag) : (list as readonly string[]).includes(tag)) return true;
  }
  for (let i = 0; i < scope.globs.length; i += 1) if (globMatch(scope.globs[i] as string, tool)) return true;
  return false;
}

/** Does the scope cover this call (name, tags, and for network writes the method)? */
function covers(scope: CompiledScope, request: PolicyRequest, m: Measured): boolean {
  if (!coversOrReaches(scope, request, m)) return false;
  if (scope.networkWrite) return m.networkWrite ?? !m.pending.has('method');
  return true;
}

/** Does the call reach, unseen, the workspace with an access of an fs built-in the scope names (a program writing files is "fs.write")? */
function reaches(scope: CompiledScope, m: Measured): boolean {
  if (scope.reach.length === 0 || m.isSpawn) return false;
  for (const p of m.paths) if (p.tree === true && p.access !== undefined && scope.reach.includes(p.access)) return true;
  return false;
}

/** Does the scope cover this call? (For callers outside the engine.) */
export function scopeCovers(scope: ToolScope, request: PolicyRequest, m: Measured): boolean {
  return covers(compileScope(scope), request, m);
}

/** Whether a measurement is missing in a way that makes effect rules apply (not pending). */
function missing(m: Measured, fact: PendingFact): boolean {
  return !m.pending.has(fact);
}

// ---------------------------------------------------------------------------------------------
// Stateless forms (mirror compile-rule.ts's Cedar)

function describeMeasure(measure: string, value: number | string | undefined, m: Measured): string {
  if (value === undefined) return `the tool did not declare ${measure === 'amountCents' ? 'an amount' : `its ${measure}`}, so the rule applies`;
  switch (measure) {
    case 'amountCents':
      return `measured amount ${((value as number) / 100).toFixed(2)}${m.currency === undefined ? '' : ` ${m.currency}`}`;
    case 'minuteOfDay': {
      const minutes = value as number;
      return `at ${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')} UTC`;
    }
    case 'depth':
      return `requested at depth ${String(value)}`;
    default:
      return `measured ${measure} ${String(value)}`;
  }
}

function conditionHolds(condition: ArgCondition, context: CheckContext): boolean {
  const leaves = (context.leaves ??= new Map());
  let text = leaves.get(condition.pointer);
  if (text === undefined) {
    const value = leafAt(context.request.args, condition.pointer);
    text = value === undefined ? null : normalizeArgText(String(value), condition.pointer);
    leaves.set(condition.pointer, text);
  }
  if (text === null) return false;
  switch (condition.op) {
    case 'is':
      return text === condition.value;
    case 'contains':
      return text.includes(condition.value);
    case 'starts-with':
      return text.startsWith(condition.value);
    case 'ends-with':
      return text.endsWith(condition.value);
  }
}

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * The string or finite number `argumentLeaves(args)` lists at `pointer`, found by following the
 * pointer instead of listing every leaf: a segment names an own enumerable key whose escaped form
 * (provenance.ts `pointerSegment`: "~" as "~0", "/" as "~1") it is, or an array index in its
 * canonical decimal form; anything else is not a leaf `argumentLeaves` would list.
 */
function leafAt(args: unknown, pointer: string): string | number | undefined {
  let at: unknown = args;
  let start = 0;
  while (start < pointer.length) {
    if (pointer.charCodeAt(start) !== 0x2f) return undefined; // every listed pointer is "" or starts with "/"
    let end = pointer.indexOf('/', start + 1);
    if (end === -1) end = pointer.length;
    const segment = pointer.slice(start + 1, end);
    start = end;
    if (Array.isArray(at)) {
      if (!ARRAY_INDEX.test(segment) || Number(segment) >= at.length) return undefined;
      at = at[Number(segment)];
    } else if (at !== null && typeof at === 'object') {
      const key = segment.includes('~') ? unescapeSegment(segment) : segment;
      if (key === undefined || !Object.prototype.propertyIsEnumerable.call(at, key)) return undefined;
      at = (at as Record<string, unknown>)[key];
    } else return undefined;
  }
  return typeof at === 'string' || (typeof at === 'number' && Number.isFinite(at)) ? at : undefined;
}

/** The key whose escaped form is `segment`, or undefined when no key escapes to it ("~" not followed by 0 or 1). */
function unescapeSegment(segment: string): string | undefined {
  let out = '';
  for (let i = 0; i < segment.length; i += 1) {
    const c = segment[i] as string;
    if (c !== '~') out += c;
    else if (segment[i + 1] === '0') {
      out += '~';
      i += 1;
    } else if (segment[i + 1] === '1') {
      out += '/';
      i += 1;
    } else return undefined;
  }
  return out;
}

const METRIC_FACT: Readonly<Record<'rows' | 'amount' | 'files' | 'bytes', PendingFact | undefined>> = { rows: 'rows', amount: undefined, files: 'files', bytes: 'bytes' };

/** Marks a measurement for another rows operation than the rule's (the rule does not apply). */
const OTHER_OPERATION = -1;

/** The measured value of a per-call metric (undefined: not measured), honouring a rows operation like the Cedar text does. */
function metricValue(metric: 'rows' | 'amount' | 'files' | 'bytes', m: Measured, rowsOperation?: 'delete' | 'insert' | 'update'): number | undefined {
  if (metric === 'rows' && rowsOperation !== undefined) {
    if (m.rowsByOperation !== undefined) return m.rowsByOperation[rowsOperation];
    if (m.rows !== undefined) return m.operation === undefined || m.operation === rowsOperation ? m.rows : OTHER_OPERATION;
    return undefined;
  }
  return metric === 'rows' ? m.rows : metric === 'amount' ? m.amountCents : metric === 'files' ? m.files : m.bytes;
}

function limitCheck(rule: Extract<ParsedRule, { form: 'limit' }>): RuleCheck {
  const metric = rule.metric as 'rows' | 'amount' | 'files' | 'bytes';
  const fact = METRIC_FACT[metric];
  const measure = metric === 'amount' ? 'amountCents' : metric;
  const scope = compileScope(rule.tools);
  return ({ request, m }) => {
    if (!subjectCovers(rule.subject, request)) return undefined;
    const value = metricValue(metric, m, rule.rowsOperation);
    if (value === OTHER_OPERATION) return undefined;
    const over = value === undefined ? fact === undefined || missing(m, fact) : value > rule.max;
    if (!over) return undefined;
    const inScope = covers(scope, request, m);
    if (inScope || (!rule.tools.named && value !== undefined)) return describeMeasure(measure, value, m);
    return undefined;
  };
}


function pathCheck(rule: Extract<ParsedRule, { form: 'path' }>): RuleCheck {
  const scope = compileScope(rule.tools);
  const globs = rule.paths.filter((p) => p.includes('*'));
  const folders = rule.paths.filter((p) => !p.includes('*'));
  const anywhere = folders.includes('/');
  const prefixes = folders.map((p) => `${p}/`);
  const inside = (path: string): boolean => {
    if (anywhere) return true;
    for (let i = 0; i < folders.length; i += 1) if (path === folders[i] || path.startsWith(prefixes[i] as string)) return true;
    for (const g of globs) if (globMatch(g, path)) return true;
    return false;
  };
  // A call that can touch every path under a folder (its workspace reach) matches when some path there would.
  const treeMatches = (root: string): boolean => pathRuleMatchesTree(rule.paths, rule.mode, root);
  return ({ request, m }) => {
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    if (m.paths.length === 0) return missing(m, 'path') ? describeMeasure('path', undefined, m) : undefined;
    for (const { path, access, tree } of m.paths) {
      if (rule.access !== undefined && access !== undefined && access !== rule.access) continue;
      if (tree === true) {
        if (treeMatches(path)) return `the tool can ${access ?? 'touch'} any path under ${path} without Warden seeing which, so the rule applies`;
        continue;
      }
      if (rule.mode === 'outside' ? !inside(path) : inside(path)) return describeMeasure('path', path, m);
    }
    return undefined;
  };
}

function hostCheck(rule: Extract<ParsedRule, { form: 'host' }>): RuleCheck {
  const exact = new Set(rule.hosts.filter((h) => !h.includes('*')));
  const globs = rule.hosts.filter((h) => h.includes('*'));
  const listed = (host: string): boolean => {
    if (exact.has(host)) return true;
    for (const g of globs) if (globMatch(g, host)) return true;
    return false;
  };
  const scope = compileScope(rule.tools);
  return ({ request, m }) => {
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    if (m.hosts.length === 0) return missing(m, 'host') ? describeMeasure('host', undefined, m) : undefined;
    for (const host of m.hosts) if (rule.mode === 'allow-list' ? !listed(host) : listed(host)) return describeMeasure('host', host, m);
    return undefined;
  };
}

function timeWindowCheck(rule: Extract<ParsedRule, { form: 'time-window' }>): RuleCheck {
  const from = (((rule.fromMinute - rule.offsetMinutes) % 1440) + 1440) % 1440;
  const to = (((rule.toMinute - rule.offsetMinutes) % 1440) + 1440) % 1440;
  const inside = (minute: number) => (from < to ? minute >= from && minute < to : minute >= from || minute < to);
  const scope = compileScope(rule.tools);
  return ({ request, m }) => {
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    return inside(m.minuteOfDay) ? undefined : describeMeasure('minuteOfDay', m.minuteOfDay, m);
  };
}

function toolCheck(rule: Extract<ParsedRule, { form: 'tool' }>): RuleCheck {
  const scope = compileScope(rule.tools);
  if (rule.only) {
    return ({ request, m }) => {
      if (m.isSpawn || !subjectCovers(rule.subject, request)) return undefined;
      return coversRequestTool(scope, request, m) ? undefined : '';
    };
  }
  return (context) => {
    const { request, m } = context;
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    if (rule.condition !== undefined && !conditionHolds(rule.condition, context)) return undefined;
    return '';
  };
}

function depthCheck(rule: Extract<ParsedRule, { form: 'subagent-depth' }>): RuleCheck {
  return ({ request, m }) => (m.isSpawn && request.agent.depth >= rule.maxLevels && subjectCovers(rule.subject, request) ? describeMeasure('depth', request.agent.depth, m) : undefined);
}

// ---------------------------------------------------------------------------------------------
// Stateful forms

function formatTotal(metric: string, value: number): string {
  return metric === 'amount' ? `$${(value / 100).toFixed(2)}` : `${value} ${metric}`;
}

/** A stable key of a scope, for memoising totals and rates within one decision. */
function scopeKey(scope: ToolScope): string {
  return `${scope.patterns.join(',')}|${(scope.tags ?? []).join(',')}|${scope.spawn === true ? 's' : ''}`;
}


/** Per tool, what the state holds (calls in a window, or a counter's total), computed once per decision and shared by every rule. */
function perTool(context: CheckContext, key: string, compute: () => Map<string, number>): Map<string, number> {
  const cache = (context.perTool ??= new Map());
  let map = cache.get(key);
  if (map === undefined) {
    map = compute();
    cache.set(key, map);
  }
  return map;
}

/** Calls in the window ending now, by tool. */
function callsByTool(state: PolicyState, nowMs: number, windowMs: number, onlyAgent: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const call of state.recent) {
    if (call.at <= nowMs - windowMs || call.at > nowMs) continue;
    if (onlyAgent !== undefined && call.agent !== onlyAgent) continue;
    out.set(call.tool, (out.get(call.tool) ?? 0) + 1);
  }
  return out;
}

/** A counter's total, by tool, over every agent (or one). */
function totalsByTool(state: PolicyState, counter: string, onlyAgent: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, agent] of Object.entries(state.agents)) {
    if (onlyAgent !== undefined && key !== onlyAgent) continue;
    for (const [tool, values] of Object.entries(agent.tools)) {
      const value = values[counter];
      if (value !== undefined) out.set(tool, (out.get(tool) ?? 0) + value);
    }
  }
  return out;
}

/** The sum over the tools a scope covers (each tool judged with the tags recorded for it, remembered per scope). */
function sumCovered(scope: CompiledScope, byTool: Map<string, number>, state: PolicyState, everyTool = false): number {
  // One exact name: the loop below would add that tool's entry alone (to 0), whatever its recorded tags.
  if (!everyTool) {
    if (scope.only !== undefined) return 0 + (byTool.get(scope.only) ?? 0);
    if (scope.none) return 0;
  }
  let sum = 0;
  for (const [tool, count] of byTool) {
    if (everyTool) {
      sum += count;
      continue;
    }
    const tags = state.toolTags?.[tool];
    const known = scope.recorded.get(tool);
    let covered: boolean;
    if (known !== undefined && known.tags === tags) covered = known.covered;
    else {
      covered = coversTool(scope, tool, tags);
      if (scope.recorded.size < 4096) scope.recorded.set(tool, { tags, covered });
    }
    if (covered) sum += count;
  }
  return sum;
}

function rateCheck(rule: Extract<ParsedRule, { form: 'rate' }>): RuleCheck {
  const scope = compileScope(rule.tools);
  const memoKey = `rate|${scopeKey(rule.tools)}|${rule.windowMs}|`;
  return (context) => {
    const { request, m, state } = context;
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    const onlyAgent = rule.scope === 'agent' ? agentKey(request.agent) : undefined;
    const key = onlyAgent === undefined ? memoKey : memoKey + onlyAgent;
    let count = context.memo.get(key);
    if (count === undefined) {
      const byTool = perTool(context, `w|${rule.windowMs}|${onlyAgent ?? ''}`, () => callsByTool(state, m.nowMs, rule.windowMs, onlyAgent));
      count = sumCovered(scope, byTool, state);
      context.memo.set(key, count);
    }
    const where = onlyAgent === undefined ? 'across the task' : 'by this agent';
    return count + 1 > rule.max ? `${count} calls ${where} in the last ${rule.window}, limit ${rule.max}` : undefined;
  };
}

function totalCheck(rule: Extract<ParsedRule, { form: 'limit' }>): RuleCheck {
  const key = scopeKey(rule.tools);
  const counter = counterOf(rule.metric, rule.rowsOperation);
  const scope = compileScope(rule.tools);
  const callsKey = `total|calls|${key}|`;
  const metricKey = `total|${counter}|${rule.tools.named ? key : '*'}|`;
  return (context) => {
    const { request, m, state } = context;
    if (!subjectCovers(rule.subject, request)) return undefined;
    const onlyAgent = rule.scope === 'agent' ? agentKey(request.agent) : undefined;
    const where = onlyAgent === undefined ? 'across the task' : 'by this agent';
    const inScope = covers(scope, request, m);
    if (rule.metric === 'calls') {
      if (!inScope) return undefined;
      const memoKey = onlyAgent === undefined ? callsKey : callsKey + onlyAgent;
      let sofar = context.memo.get(memoKey);
      if (sofar === undefined) {
        sofar = sumCovered(scope, perTool(context, `t|calls|${onlyAgent ?? ''}`, () => totalsByTool(state, 'calls', onlyAgent)), state);
        context.memo.set(memoKey, sofar);
      }
      return sofar + 1 > rule.max ? `${sofar} ${rule.tools.spawn === true ? 'sub-agents spawned' : 'calls'} ${where} so far, limit ${rule.max}` : undefined;
    }
    const metric = rule.metric;
    const value = metricValue(metric, m, rule.rowsOperation);
    if (value === OTHER_OPERATION) return undefined;
    const fact = METRIC_FACT[metric];
    if (value === undefined) return inScope && (fact === undefined || missing(m, fact)) ? `the tool did not declare its ${metric}, so the rule applies` : undefined;
    if (!inScope && rule.tools.named) return undefined;
    // A verb's default tools: every tool's measured amount counts towards the total (sumCovered's last argument).
    const memoKey = onlyAgent === undefined ? metricKey : metricKey + onlyAgent;
    let sofar = context.memo.get(memoKey);
    if (sofar === undefined) {
      sofar = sumCovered(scope, perTool(context, `t|${counter}|${onlyAgent ?? ''}`, () => totalsByTool(state, counter, onlyAgent)), state, !rule.tools.named);
      context.memo.set(memoKey, sofar);
    }
    return sofar + value > rule.max ? `${formatTotal(metric, sofar)} ${where} so far + ${formatTotal(metric, value)} now, limit ${formatTotal(metric, rule.max)}` : undefined;
  };
}

const NOUNS: Readonly<Record<BoundValue, string>> = { email: 'recipient address', message: 'recipient', recipient: 'payee', amount: 'amount', url: 'URL', path: 'path' };

/** keyOf's answers by pointer (a pure function of it; pointers repeat across calls). */
const keysOfPointers = new Map<string, string>();

function keyOf(pointer: string): string {
  let key = keysOfPointers.get(pointer);
  if (key === undefined) {
    key = keyOfUncached(pointer);
    if (keysOfPointers.size >= 4096) keysOfPointers.clear();
    keysOfPointers.set(pointer, key);
  }
  return key;
}

function keyOfUncached(pointer: string): string {
  const segments = pointer.split('/').filter((s) => s !== '' && !/^\d+$/.test(s));
  const last = segments[segments.length - 1] ?? '';
  return last.toLowerCase().replace(/[_-]/g, '');
}

function isEmailList(value: string): boolean {
  const parts = value.split(/[,;]/).map((p) => p.trim());
  return parts.length > 0 && parts.every((p) => p.includes('@') && !p.includes(' '));
}

/** The argument values a binding rule checks, found by argument name and shape (tools that do not say); `leaves`: the arguments' leaves when already listed. */
export function boundArguments(value: BoundValue, args: Record<string, unknown>, leaves: readonly { pointer: string; value: string | number }[] = argumentLeaves(args)): { pointer: string; value: string | number }[] {
  return leaves.filter((leaf) => {
    const key = keyOf(leaf.pointer);
    const text = String(leaf.value);
    switch (value) {
      case 'email':
        return EMAIL_RECIPIENT_KEYS.includes(key) || (typeof leaf.value === 'string' && isEmailList(text));
      case 'message':
        return MESSAGE_RECIPIENT_KEYS.includes(key) || (typeof leaf.value === 'string' && isEmailList(text));
      case 'recipient':
        return PAYMENT_RECIPIENT_KEYS.includes(key);
      case 'amount':
        return AMOUNT_KEYS.includes(key) && (typeof leaf.value === 'number' || /^[$€£]?\d/.test(text));
      case 'url':
        return URL_KEYS.includes(key) || (typeof leaf.value === 'string' && (text.startsWith('http://') || text.startsWith('https://')));
      case 'path':
        return PATH_KEYS.includes(key);
    }
  });
}

const DECLARED_KIND: Readonly<Record<BoundValue, string>> = { email: 'recipients', message: 'recipients', recipient: 'payees', amount: 'amounts', url: 'urls', path: 'paths' };

/** The values a binding rule checks: what the descriptor declares, else by name and shape; `undefined` when the rule does not apply. */
function boundValues(value: BoundValue, request: PolicyRequest, context?: CheckContext): { pointer: string; value: string }[] | 'unknown' | undefined {
  const d = request.descriptor;
  const e = request.effect ?? {};
  const kind = DECLARED_KIND[value];
  if (d !== undefined && d.declares.includes(kind)) {
    if ((e.unreadable ?? []).some((u) => u.startsWith(`${kind} `))) return 'unknown';
    const found =
      value === 'email'
        ? (e.recipients ?? []).filter((r) => r.kind === 'email' || r.kind === 'any').map((r) => ({ pointer: r.pointer ?? '', value: r.value }))
        : value === 'message'
          ? (e.recipients ?? []).map((r) => ({ pointer: r.pointer ?? '', value: r.value }))
          : value === 'recipient'
            ? (e.payees ?? []).map((p) => ({ pointer: p.pointer ?? '', value: p.value }))
            : value === 'amount'
              ? (e.amounts ?? []).map((a) => ({ pointer: a.pointer ?? '', value: String(a.value) }))
            : value === 'url'
              ? (e.urls ?? []).map((u) => ({ pointer: u.pointer ?? '', value: u.url }))
              : (e.paths ?? []).map((p) => ({ pointer: p.pointer ?? '', value: p.path }));
    return found.length === 0 ? undefined : found;
  }
  const leaves = context === undefined ? argumentLeaves(request.args) : (context.argumentLeaves ??= argumentLeaves(request.args));
  const found = boundArguments(value, request.args, leaves).map((b) => ({ pointer: b.pointer, value: String(b.value) }));
  // A declared tool that does not have this kind of effect: the rule is not about it.
  if (found.length === 0 && d !== undefined && d.declared) return undefined;
  return found.length === 0 ? 'unknown' : found;
}

function shorten(text: string): string {
  return ellipsize(text, 80, '...');
}

function fromWhere(source: string | undefined): string {
  return source === 'tool-output' ? 'came from an earlier tool output' : source === 'literal' ? 'was not given by the user' : 'has no recorded provenance';
}

function intentCheck(rule: Extract<ParsedRule, { form: 'intent' }>): RuleCheck {
  const scope = compileScope(rule.tools);
  return (context) => {
    const { request, m } = context;
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    if (rule.value === 'url' && m.pending.has('url')) return undefined;
    if (rule.value === 'path' && m.pending.has('path')) return undefined;
    const cache = (context.bound ??= new Map());
    let bound = cache.get(rule.value);
    if (bound === undefined && !cache.has(rule.value)) {
      bound = boundValues(rule.value, request, context);
      cache.set(rule.value, bound);
    }
    if (bound === undefined) return undefined;
    if (bound === 'unknown') return `no ${NOUNS[rule.value]} argument found to check, so the rule applies`;
    const sourceOf = (b: { pointer: string; value: string }) => boundSource(rule.value, b, request);
    const untrusted = bound.filter((b: { pointer: string; value: string }) => !isUserGiven(sourceOf(b)));
    if (untrusted.length === 0) return undefined;
    return untrusted.map((b: { pointer: string; value: string }) => `${b.pointer} = ${JSON.stringify(shorten(b.value))} ${fromWhere(sourceOf(b))}`).join('; ');
  };
}

const SOURCE_RANK: Readonly<Record<ValueSource, number>> = { 'tool-output': 0, literal: 1, trusted: 2, user: 3 };

/**
 * Where a bound value came from: its argument's source, or, for a recipient the request lists
 * among its destinations, that recipient's own source (judged as a recipient, value by value, so
 * in "@carol, mallory" each is judged alone and the reason names only the one not given).
 */
function boundSource(value: BoundValue, b: { pointer: string; value: string }, request: PolicyRequest): ValueSource | undefined {
  const whole = request.provenance[b.pointer];
  if (value !== 'email' && value !== 'message') return whole;
  const own = request.destinations.find((d) => d.kind === 'recipient' && d.value === b.value)?.source;
  if (own === undefined || whole === undefined) return own ?? whole;
  // An argument holding several recipients has the source of its least trusted one: judge each alone.
  const shared = (request.effect?.recipients ?? []).filter((r) => r.pointer === b.pointer).length > 1;
  return shared || SOURCE_RANK[own] <= SOURCE_RANK[whole] ? own : whole;
}

function flowCheck(rule: Extract<ParsedRule, { form: 'flow' }>): RuleCheck {
  const kinds = rule.destination === 'host' ? ['host'] : rule.destination === 'recipient' ? ['recipient', 'payee'] : ['host', 'recipient', 'payee'];
  const scope = compileScope(rule.tools);
  return ({ request, m, state }) => {
    if (m.isSpawn || !subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    const reads = privateReadsIn(state);
    if (reads.length === 0) return undefined;
    const destinations = request.destinations.filter((d) => kinds.includes(d.kind));
    const after = `after reading private data (${reads.slice(0, 3).join(', ')}${reads.length > 3 ? ', ...' : ''})`;
    if (destinations.length === 0) {
      // A send whose destination Warden cannot see, unless it is measured where the call is applied.
      if (rule.destination !== 'recipient' && m.pending.has('host')) return undefined;
      return request.descriptor?.declared === true && !request.descriptor.declares.some((k) => ['urls', 'hosts', 'recipients', 'payees'].includes(k)) && m.hosts.length === 0
        ? `${after}, a send whose destination the tool does not declare, so the rule applies`
        : m.hosts.length > 0 && kinds.includes('host')
          ? undefined
          : `${after}, a send whose destination the tool does not declare, so the rule applies`;
    }
    const untrusted = destinations.filter((d) => !isUserGiven(d.source));
    if (untrusted.length === 0) return undefined;
    return `${after}: ${untrusted.map((d) => `${d.kind} ${JSON.stringify(shorten(d.value))} ${fromWhere(d.source)}`).join('; ')}`;
  };
}

function tableMatches(ruleTable: string, table: string, database: string | undefined): boolean {
  const dot = ruleTable.indexOf('.');
  if (dot < 0) return ruleTable === table.toLowerCase();
  return ruleTable.slice(0, dot) === (database ?? '').toLowerCase() && ruleTable.slice(dot + 1) === table.toLowerCase();
}

function tableCheck(rule: Extract<ParsedRule, { form: 'table' }>): RuleCheck {
  const scope = compileScope(rule.tools);
  return ({ request, m }) => {
    if (!subjectCovers(rule.subject, request) || !covers(scope, request, m)) return undefined;
    if (m.pending.has('tables')) return undefined;
    const effect = request.effect ?? {};
    if (rule.operation === 'read') {
      if (effect.tablesRead === undefined && effect.tables === undefined) return 'the tables it reads were not measured, so the rule applies';
      const hit = m.tablesRead.find((t) => rule.tables.some((r) => tableMatches(r, t.includes('.') ? t.slice(t.indexOf('.') + 1) : t, t.includes('.') ? t.slice(0, t.indexOf('.')) : undefined)));
      return hit === undefined ? undefined : `reads table ${hit}`;
    }
    if (effect.tables === undefined) {
      // Only a write can change a table; SQL that only reads is not in scope.
      if ((effect.sql ?? []).length > 0 && (effect.sql ?? []).every((s) => s.access === 'read')) return undefined;
      return 'the tables it changes were not measured, so the rule applies';
    }
    const rows = m.tables
      .filter((t) => rule.tables.some((r) => tableMatches(r, t.table, t.database)))
      .filter((t) => rule.operation === 'write' || t.op === rule.operation)
      .reduce((sum, t) => sum + t.rows, 0);
    if (rule.max === undefined ? rows === 0 : rows <= rule.max) return undefined;
    return `measured ${rows} row${rows === 1 ? '' : 's'} ${rule.operation === 'write' ? 'changed' : `${rule.operation}d`.replace('deleted', 'deleted')} in ${rule.tables.join(', ')}`;
  };
}

// ---------------------------------------------------------------------------------------------

/** The check of a compiled rule (from its parsed form). Throws TypeError for a rule compiled without one. */
export function checkOf(rule: CompiledRule): RuleCheck {
  const parsed = rule.rule;
  if (parsed === undefined) throw new TypeError(`rule ${rule.id} has no parsed form; recompile it from its sentence`);
  switch (parsed.form) {
    case 'tool':
      return toolCheck(parsed);
    case 'limit':
      return parsed.scope === 'call' ? limitCheck(parsed) : totalCheck(parsed);
    case 'rate':
      return rateCheck(parsed);
    case 'path':
      return pathCheck(parsed);
    case 'host':
      return hostCheck(parsed);
    case 'time-window':
      return timeWindowCheck(parsed);
    case 'subagent-depth':
      return depthCheck(parsed);
    case 'intent':
      return intentCheck(parsed);
    case 'flow':
      return flowCheck(parsed);
    case 'table':
      return tableCheck(parsed);
  }
}

/** The pieces rule-groups.ts shares with the checks above, so a group of rules decides exactly as each of its rules would. */
export { callsByTool, compileScope, covers, coversOrReaches, coversRequestTool, coversTool, describeMeasure, formatTotal, metricValue, missing, perTool, subjectCovers, sumCovered, totalsByTool, METRIC_FACT, OTHER_OPERATION, type CompiledScope };
