/**
 * Rules grouped by what they ask, so one decision asks each question once: rules whose parsed
 * forms are the same (say "deny file tools" from two packs) share one evaluation, and rules that
 * differ only in a threshold ("never delete more than 10 rows", "... more than 1,000 rows") share
 * one measurement (the rows, the calls in the window, the total so far) and each compare it with
 * their own limit. A decision then costs one evaluation per group met plus one comparison and one
 * reason per matched rule, whatever the number of rules that repeat a question.
 *
 * Invariant: a group decides exactly what each of its rules' own checks (evaluate-rule.ts
 * `checkOf`) decides, with the same reason text, for every request and state; rules are grouped
 * only when their parsed forms are equal but for the threshold, and a form without a threshold
 * group is evaluated by its own check. test/policies/rule-groups.test.ts compares the grouped
 * decision with every rule's own check over generated rule sets, requests and histories.
 *
 * Kept from one decision for the next, each keyed by everything it is a function of: a matched
 * rule's frozen entry per reason text (`Group.version`, `byDetail`), a path or host family
 * member's answer per path text (trees apart) or host text, a rate's or total's detail per count.
 * Never per request object or per state (test/policies/decision-reuse.test.ts).
 */
import type { CompiledRule } from './compile-rule';
import {
  callsByTool,
  checkOf,
  compileScope,
  covers,
  coversOrReaches,
  coversRequestTool,
  describeMeasure,
  formatTotal,
  metricValue,
  missing,
  perTool,
  subjectCovers,
  sumCovered,
  totalsByTool,
  METRIC_FACT,
  OTHER_OPERATION,
  type CheckContext,
  type CompiledScope,
  type RuleCheck,
} from './evaluate-rule';
import { agentKey, type MatchedRule, type MeasuredPath } from './policy-request';
import { counterOf } from './policy-state';
import { globMatch, pathRuleMatchesTree, type ParsedRule } from './rule-syntax';

type LimitRule = Extract<ParsedRule, { form: 'limit' }>;
type RateRule = Extract<ParsedRule, { form: 'rate' }>;

/** What a group's evaluation says of its members in this decision. */
const NONE = 0; // no member matches
const ALL = 1; // every member matches, with the shared detail
const ABOVE = 2; // a member matches when the measured quantity exceeds its threshold
const AT_LEAST = 3; // ... when the quantity reaches its threshold
const EACH = 4; // the shared part holds; each member asks its own part (`member`)

interface Group {
  /** Sets `mode`, `detail`, `quantity` (and `withTail`) for the decision in `context`. */
  evaluate(group: Group, context: CheckContext): void;
  /** The decision these fields belong to. */
  epoch: number;
  mode: number;
  detail: string;
  quantity: number;
  /** Whether each member's reason ends with its own limit (`tail`) after the shared detail. */
  withTail: boolean;
  /** In mode EACH: the member's detail followed by ")" ('' for none), undefined when it does not match. */
  member?: (group: Group, position: number, context: CheckContext) => string | undefined;
  /** In mode EACH: what the shared part found. */
  paths?: MeasuredPath[];
  /** Details per measured path (or host), followed by ")", built when a member first needs one. */
  pathDetails?: (string | undefined)[];
  /** In mode EACH of a path or host family: what is known of each of `paths` (`pathFamily`) or of the request's hosts (`hostFamily`). */
  pathAnswers?: PathAnswers[];
  /** A tool family (`toolFamily`): its members are decided in the loop from the answers per request signature. */
  family: boolean;
  /**
   * Numbers what the members' reasons are made of (`detail` and `withTail`): it grows when a
   * decision's differ from the last decision's that evaluated the group, so a member's entry made
   * under the same number has the reason this decision would write (see `matched`).
   */
  version: number;
  /** The decision `version` was brought up to date in, and what it numbers. */
  versionEpoch: number;
  lastDetail: string;
  lastWithTail: boolean;
}

export interface RuleGroups {
  /** The rules at the candidate positions (ascending) that match, in load order, with their reasons. */
  matched(context: CheckContext, candidates: readonly number[]): MatchedRule[];
  /** How many groups the rules form (for tests and the bench notes). */
  readonly size: number;
}

/** A stable text of a parsed rule without the fields that do not change what its check asks. */
function questionKey(parsed: ParsedRule, without: readonly string[]): string {
  const skip = new Set(['sentence', 'effect', 'enforcement', ...without]);
  // Only the rule's own fields are left out (a nested field of the same name still counts); non-finite numbers would all print as null.
  return JSON.stringify(parsed, function (this: unknown, key: string, value: unknown) {
    if (this === parsed && skip.has(key)) return undefined;
    return typeof value === 'number' && !Number.isFinite(value) ? `#${String(value)}` : value;
  });
}

/** A group whose members' checks are the same function: one evaluation, one shared detail. */
function sameGroup(check: RuleCheck): Group['evaluate'] {
  return (group, context) => {
    const detail = check(context);
    group.mode = detail === undefined ? NONE : ALL;
    group.detail = detail ?? '';
    group.withTail = false;
  };
}

/** Per-call limits: the representative check at no limit says whether and why the rule applies; the measured value is compared per member. */
function callLimitGroup(parsed: LimitRule, rule: CompiledRule): Group['evaluate'] {
  const gate = checkOf({ ...rule, rule: { ...parsed, max: Number.NEGATIVE_INFINITY } });
  const metric = parsed.metric as 'rows' | 'amount' | 'files' | 'bytes';
  return (group, context) => {
    const detail = gate(context);
    group.withTail = false;
    if (detail === undefined) {
      group.mode = NONE;
      return;
    }
    group.detail = detail;
    const value = metricValue(metric, context.m, parsed.rowsOperation);
    // Not measured (and not pending): the rule applies whatever its limit (fail closed).
    if (value === undefined) group.mode = ALL;
    else {
      group.mode = ABOVE;
      group.quantity = value;
    }
  };
}

function depthGroup(parsed: Extract<ParsedRule, { form: 'subagent-depth' }>, rule: CompiledRule): Group['evaluate'] {
  const gate = checkOf({ ...rule, rule: { ...parsed, maxLevels: Number.NEGATIVE_INFINITY } });
  return (group, context) => {
    const detail = gate(context);
    group.withTail = false;
    if (detail === undefined) {
      group.mode = NONE;
      return;
    }
    group.mode = AT_LEAST;
    group.detail = detail;
    group.quantity = context.request.agent.depth;
  };
}

/**
 * `callsByTool(state, now, w, onlyAgent)` for every window `w` of `windows` (the engine's rate
 * windows, this one among them), in one pass over the recent calls, each kept in the decision's
 * `perTool` under the key evaluate-rule.ts `rateCheck` uses; returns the one for `windowMs`.
 */
function windowCallsOf(context: CheckContext, windowMs: number, onlyAgent: string | undefined, windows: readonly number[]): Map<string, number> {
  const { state, m } = context;
  const nowMs = m.nowMs;
  const slots = new Map<string, number>();
  const tools: string[] = [];
  const counts = windows.map(() => [] as number[]);
  const recent = state.recent;
  for (let i = 0; i < recent.length; i += 1) {
    const call = recent[i] as (typeof recent)[number];
    // The same tests as `callsByTool`, per window.
    if (call.at > nowMs) continue;
    if (onlyAgent !== undefined && call.agent !== onlyAgent) continue;
    let slot = slots.get(call.tool);
    if (slot === undefined) {
      slot = tools.length;
      slots.set(call.tool, slot);
      tools.push(call.tool);
      for (let w = 0; w < counts.length; w += 1) (counts[w] as number[]).push(0);
    }
    for (let w = 0; w < windows.length; w += 1) {
      if (call.at <= nowMs - (windows[w] as number)) continue;
      const row = counts[w] as number[];
      row[slot] = (row[slot] as number) + 1;
    }
  }
  const cache = (context.perTool ??= new Map());
  let wanted: Map<string, number> | undefined;
  for (let w = 0; w < windows.length; w += 1) {
    const byTool = new Map<string, number>();
    const row = counts[w] as number[];
    for (let slot = 0; slot < tools.length; slot += 1) if ((row[slot] as number) > 0) byTool.set(tools[slot] as string, row[slot] as number);
    cache.set(`w|${windows[w] as number}|${onlyAgent ?? ''}`, byTool);
    if (windows[w] === windowMs) wanted = byTool;
  }
  return wanted ?? perTool(context, `w|${windowMs}|${onlyAgent ?? ''}`, () => callsByTool(state, nowMs, windowMs, onlyAgent));
}

/** Rates (evaluate-rule.ts `rateCheck`): the calls in the window are counted once per group. */
function rateGroup(parsed: RateRule, windows: readonly number[]): Group['evaluate'] {
  const scope = compileScope(parsed.tools);
  // evaluate-rule.ts `rateCheck`'s key of the calls by tool in the window (the agent's key appended for an agent's own rate).
  const treeKey = `w|${parsed.windowMs}|`;
  // The detail after the count (evaluate-rule.ts `rateCheck`'s words), built once.
  const after = ` calls ${parsed.scope === 'agent' ? 'by this agent' : 'across the task'} in the last ${parsed.window}, limit `;
  // The last detail and its count: the same count gives the same string (matched entries are reused by it, `Group.version`).
  let lastCount = Number.NaN;
  let lastDetail = '';
  return (group, context) => {
    const { request, m, state } = context;
    group.withTail = true;
    if (!subjectCovers(parsed.subject, request) || !covers(scope, request, m)) {
      group.mode = NONE;
      return;
    }
    const onlyAgent = parsed.scope === 'agent' ? agentKey(request.agent) : undefined;
    const key = onlyAgent === undefined ? treeKey : `${treeKey}${onlyAgent}`;
    let byTool = context.perTool?.get(key);
    if (byTool === undefined) byTool = windowCallsOf(context, parsed.windowMs, onlyAgent, windows);
    const count = sumCovered(scope, byTool, state);
    group.mode = ABOVE;
    group.quantity = count + 1;
    if (!(count === lastCount)) {
      lastDetail = count + after;
      lastCount = count;
    }
    group.detail = lastDetail;
  };
}

const NO_TOTALS: Map<string, number> = new Map();
/** Request signatures an engine remembers its tool families' answers for (evaluate-rule.ts keeps as many per scope). */
const MAX_SIGNATURES = 1024;

/**
 * A counter's total by tool over every agent: evaluate-rule.ts `totalsByTool(state, counter)`,
 * for all counters at once (same agents and tools, in the same order), computed once per decision.
 */
function treeTotalsOf(context: CheckContext, counter: string, wanted: ReadonlySet<string>): Map<string, number> {
  let all = context.treeTotals;
  if (all === undefined) {
    all = new Map();
    // Only the counters this engine's rules total are summed, each read as `totalsByTool` reads it.
    const names = [...wanted];
    const sums = names.map((name) => {
      const byTool = new Map<string, number>();
      (all as Map<string, Map<string, number>>).set(name, byTool);
      return byTool;
    });
    const agents = context.state.agents;
    for (const key of Object.keys(agents)) {
      const tools = (agents[key] as (typeof agents)[string]).tools;
      for (const tool of Object.keys(tools)) {
        const values = tools[tool] as Record<string, number>;
        for (let n = 0; n < names.length; n += 1) {
          const value = values[names[n] as string];
          if (value === undefined) continue;
          const byTool = sums[n] as Map<string, number>;
          byTool.set(tool, (byTool.get(tool) ?? 0) + value);
        }
      }
    }
    context.treeTotals = all;
  }
  return all.get(counter) ?? NO_TOTALS;
}

/** Running totals (evaluate-rule.ts `totalCheck`): the total so far is summed once per group. */
function totalGroup(parsed: LimitRule, wanted: Set<string>): Group['evaluate'] {
  const scope: CompiledScope = compileScope(parsed.tools);
  const counter = counterOf(parsed.metric, parsed.rowsOperation);
  wanted.add(counter);
  // evaluate-rule.ts `totalCheck`'s words after a count of calls, built once.
  const afterCalls = ` ${parsed.tools.spawn === true ? 'sub-agents spawned' : 'calls'} ${parsed.scope === 'agent' ? 'by this agent' : 'across the task'} so far, limit `;
  // The last detail and the numbers it was written from (the words around them are the group's own): equal numbers, the same string.
  let lastSofar = Number.NaN;
  let lastValue = Number.NaN;
  let lastDetail = '';
  return (group, context) => {
    const { request, m, state } = context;
    group.withTail = true;
    group.mode = NONE;
    if (!subjectCovers(parsed.subject, request)) return;
    const onlyAgent = parsed.scope === 'agent' ? agentKey(request.agent) : undefined;
    const where = onlyAgent === undefined ? 'across the task' : 'by this agent';
    const inScope = covers(scope, request, m);
    if (parsed.metric === 'calls') {
      if (!inScope) return;
      const byTool = onlyAgent === undefined ? treeTotalsOf(context, 'calls', wanted) : perTool(context, `t|calls|${onlyAgent}`, () => totalsByTool(state, 'calls', onlyAgent));
      const sofar = sumCovered(scope, byTool, state);
      group.mode = ABOVE;
      group.quantity = sofar + 1;
      if (!(sofar === lastSofar && Number.isNaN(lastValue))) {
        lastDetail = sofar + afterCalls;
        lastSofar = sofar;
        lastValue = Number.NaN;
      }
      group.detail = lastDetail;
      return;
    }
    const metric = parsed.metric;
    const value = metricValue(metric, m, parsed.rowsOperation);
    if (value === OTHER_OPERATION) return;
    const fact = METRIC_FACT[metric];
    if (value === undefined) {
      if (inScope && (fact === undefined || missing(m, fact))) {
        group.mode = ALL;
        group.withTail = false;
        group.detail = `the tool did not declare its ${metric}, so the rule applies`;
      }
      return;
    }
    if (!inScope && parsed.tools.named) return;
    // A verb's default tools: every tool's measured amount counts towards the total.
    const byTool = onlyAgent === undefined ? treeTotalsOf(context, counter, wanted) : perTool(context, `t|${counter}|${onlyAgent}`, () => totalsByTool(state, counter, onlyAgent));
    const sofar = sumCovered(scope, byTool, state, !parsed.tools.named);
    group.mode = ABOVE;
    group.quantity = sofar + value;
    if (!(sofar === lastSofar && value === lastValue)) {
      lastDetail = `${formatTotal(metric, sofar)} ${where} so far + ${formatTotal(metric, value)} now, limit `;
      lastSofar = sofar;
      lastValue = value;
    }
    group.detail = lastDetail;
  };
}

/** Tool rules without an argument condition that differ only in their tools: the subject once, each member's scope on its own. */
function toolFamily(parsed: Extract<ParsedRule, { form: 'tool' }>, scopes: readonly (CompiledScope | undefined)[]): Group['evaluate'] {
  const member: Group['member'] = parsed.only
    ? (_group, position, { request, m }) => {
        return coversRequestTool(scopes[position] as CompiledScope, request, m) ? undefined : '';
      }
    : (_group, position, { request, m }) => {
        return covers(scopes[position] as CompiledScope, request, m) ? '' : undefined;
      };
  return (group, context) => {
    group.withTail = false;
    // evaluate-rule.ts `toolCheck`: "allow only" never applies to spawns.
    if ((parsed.only && context.m.isSpawn) || !subjectCovers(parsed.subject, context.request)) {
      group.mode = NONE;
      return;
    }
    group.mode = EACH;
    group.member = member;
  };
}

/** A path (or host) family's members' answers for one measured path (or host), and the detail naming it (undefined for a tree). */
interface PathAnswers {
  answers: Int8Array;
  detail: string | undefined;
}
/** Path (or host) texts a family remembers answers for (one byte per rule each: at most 256 KB per family at 1,000 rules). */
const MAX_PATHS = 256;

/** A path rule's folders and globs, prepared as evaluate-rule.ts `pathCheck` prepares them. */
interface PathMatcher {
  /** Whether `path` is one of the folders or under one (`folders` holds the path and each folder above it), or matches a glob. */
  inside(path: string, folders: ReadonlySet<string>): boolean;
  tree(root: string): boolean;
}

function pathMatcher(parsed: Extract<ParsedRule, { form: 'path' }>): PathMatcher {
  const globs = parsed.paths.filter((p) => p.includes('*'));
  const folders = parsed.paths.filter((p) => !p.includes('*'));
  const anywhere = folders.includes('/');
  return {
    inside(path, above) {
      if (anywhere) return true;
      // `path === folder || path.startsWith(folder + '/')`, as one lookup per folder.
      for (let i = 0; i < folders.length; i += 1) if (above.has(folders[i] as string)) return true;
      for (const g of globs) if (globMatch(g, path)) return true;
      return false;
    },
    tree: (root) => pathRuleMatchesTree(parsed.paths, parsed.mode, root),
  };
}

/** A path and every prefix of it that ends before a "/" (the folders it is under), except the empty one. */
const foldersAbove = new WeakMap<MeasuredPath, ReadonlySet<string>>();
function foldersOf(measured: MeasuredPath): ReadonlySet<string> {
  let set = foldersAbove.get(measured);
  if (set === undefined) {
    const path = measured.path;
    const out = new Set<string>([path]);
    for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) out.add(path.slice(0, i));
    foldersAbove.set(measured, (set = out));
  }
  return set;
}

/** Path rules that differ only in their paths: scope, subject and the measured paths once; each member's folders on their own; details per path shared. */
function pathFamily(parsed: Extract<ParsedRule, { form: 'path' }>, matchers: readonly (PathMatcher | undefined)[]): Group['evaluate'] {
  const scope = compileScope(parsed.tools);
  const outside = parsed.mode === 'outside';
  /**
   * Per path text (trees apart): each member's answer to "does this path make the rule match"
   * (0 not asked yet, 1 no, 2 yes) and the detail naming the path. Both are functions of the path
   * text, the tree flag and the member's own folders (`matcher.inside`, `matcher.tree`, and the
   * group's mode): nothing of the request, the state or the clock, so a path met again is answered
   * from here.
   */
  const known: Map<string, PathAnswers>[] = [new Map(), new Map()];
  const answersOf = (measured: MeasuredPath, m: CheckContext['m']): PathAnswers => {
    const byPath = known[measured.tree === true ? 1 : 0] as Map<string, PathAnswers>;
    let found = byPath.get(measured.path);
    if (found === undefined) {
      if (byPath.size >= MAX_PATHS) byPath.clear();
      found = { answers: new Int8Array(matchers.length), detail: measured.tree === true ? undefined : `${describeMeasure('path', measured.path, m)})` };
      byPath.set(measured.path, found);
    }
    return found;
  };
  const detailAt = (group: Group, k: number): string => {
    const found = (group.pathAnswers as PathAnswers[])[k] as PathAnswers;
    if (found.detail !== undefined) return found.detail;
    // A tree's detail names its access too: built per decision.
    const details = group.pathDetails as (string | undefined)[];
    let detail = details[k];
    if (detail === undefined) {
      const { path, access } = (group.paths as MeasuredPath[])[k] as MeasuredPath;
      detail = `the tool can ${access ?? 'touch'} any path under ${path} without Warden seeing which, so the rule applies)`;
      details[k] = detail;
    }
    return detail;
  };
  const member: Group['member'] = (group, position) => {
    const paths = group.paths as MeasuredPath[];
    const pathAnswers = group.pathAnswers as PathAnswers[];
    for (let k = 0; k < paths.length; k += 1) {
      const answers = (pathAnswers[k] as PathAnswers).answers;
      let answer = answers[position] as number;
      if (answer === 0) {
        const matcher = matchers[position] as PathMatcher;
        const measured = paths[k] as MeasuredPath;
        let matches: boolean;
        if (measured.tree === true) matches = matcher.tree(measured.path);
        else {
          const inside = matcher.inside(measured.path, foldersOf(measured));
          matches = outside ? !inside : inside;
        }
        answer = matches ? 2 : 1;
        answers[position] = answer;
      }
      if (answer === 2) return detailAt(group, k);
    }
    return undefined;
  };
  return (group, context) => {
    const { request, m } = context;
    group.withTail = false;
    group.mode = NONE;
    if (!subjectCovers(parsed.subject, request) || !covers(scope, request, m)) return;
    if (m.paths.length === 0) {
      if (missing(m, 'path')) {
        group.mode = ALL;
        group.detail = describeMeasure('path', undefined, m);
      }
      return;
    }
    // The paths of another access than the rule's are not its business.
    const paths = parsed.access === undefined ? m.paths : m.paths.filter((p) => p.access === undefined || p.access === parsed.access);
    group.mode = EACH;
    group.paths = paths;
    group.pathDetails = new Array<string | undefined>(paths.length);
    group.pathAnswers = paths.map((p) => answersOf(p, m));
    group.member = member;
  };
}

/** Host rules that differ only in their hosts: scope and subject once; each member's list on its own; details per host shared (evaluate-rule.ts `hostCheck`). */
function hostFamily(parsed: Extract<ParsedRule, { form: 'host' }>, lists: readonly (((host: string) => boolean) | undefined)[]): Group['evaluate'] {
  const scope = compileScope(parsed.tools);
  const allowList = parsed.mode === 'allow-list';
  /** Per host text: each member's answer (0 not asked yet, 1 no, 2 yes: a function of the host and the member's list only) and the detail naming the host. */
  const known = new Map<string, PathAnswers>();
  const answersOf = (host: string, m: CheckContext['m']): PathAnswers => {
    let found = known.get(host);
    if (found === undefined) {
      if (known.size >= MAX_PATHS) known.clear();
      found = { answers: new Int8Array(lists.length), detail: `${describeMeasure('host', host, m)})` };
      known.set(host, found);
    }
    return found;
  };
  const member: Group['member'] = (group, position, { m }) => {
    const hostAnswers = group.pathAnswers as PathAnswers[];
    for (let k = 0; k < hostAnswers.length; k += 1) {
      const found = hostAnswers[k] as PathAnswers;
      let answer = found.answers[position] as number;
      if (answer === 0) {
        const listed = (lists[position] as (host: string) => boolean)(m.hosts[k] as string);
        answer = (allowList ? !listed : listed) ? 2 : 1;
        found.answers[position] = answer;
      }
      if (answer === 2) return found.detail;
    }
    return undefined;
  };
  return (group, context) => {
    const { request, m } = context;
    group.withTail = false;
    group.mode = NONE;
    if (!subjectCovers(parsed.subject, request) || !covers(scope, request, m)) return;
    if (m.hosts.length === 0) {
      if (missing(m, 'host')) {
        group.mode = ALL;
        group.detail = describeMeasure('host', undefined, m);
      }
      return;
    }
    group.mode = EACH;
    group.pathAnswers = m.hosts.map((host) => answersOf(host, m));
    group.member = member;
  };
}

function hostList(parsed: Extract<ParsedRule, { form: 'host' }>): (host: string) => boolean {
  const exact = new Set(parsed.hosts.filter((h) => !h.includes('*')));
  const globs = parsed.hosts.filter((h) => h.includes('*'));
  return (host) => {
    if (exact.has(host)) return true;
    for (const g of globs) if (globMatch(g, host)) return true;
    return false;
  };
}

/**
 * Groups the rules (in load order) by the question they ask. Throws TypeError, like `checkOf`,
 * for a rule without a parsed form.
 */
export function buildRuleGroups(rules: readonly CompiledRule[]): RuleGroups {
  const groups: Group[] = [];
  const byKey = new Map<string, number>();
  const groupOf = new Int32Array(rules.length);
  const threshold = new Float64Array(rules.length);
  /** `reason (` and, for rules whose reason ends with their limit, `limit)`. */
  const head: string[] = [];
  const tail: string[] = [];
  /** Per member of a tool or path family: its own scope or folders. */
  const scopes: (CompiledScope | undefined)[] = new Array(rules.length);
  const matchers: (PathMatcher | undefined)[] = new Array(rules.length);
  const hostLists: (((host: string) => boolean) | undefined)[] = new Array(rules.length);
  /** Per member of a tool family: 1 for "allow only" (matches when its scope does not cover the tool). */
  const onlyMember = new Uint8Array(rules.length);
  /**
   * Per request signature, what each tool family member's scope answers (0 not asked yet, 1 no,
   * 2 yes: `coversRequestTool` for "allow only", `coversOrReaches` for the others). Both read only
   * what the signature holds (evaluate-rule.ts `CompiledScope.bySignature`), so a member is one
   * array read per decision instead of a lookup in its scope's map.
   */
  const coverage = new Map<number, Int8Array>();
  /** The windows of this engine's rate rules, counted in one pass (`windowCallsOf`). */
  const windows: number[] = [];
  /** The counters this engine's running totals read. */
  const totalled = new Set<string>();
  /** Each rule's entry when it matches with its reason as written (no detail): built once, frozen, shared by every decision. */
  const plain: MatchedRule[] = rules.map((rule) => Object.freeze({ id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: rule.reason, kind: rule.kind }));
  // The fields of each rule's entry, in arrays of one shape each (read per match without touching the rule objects, whose shapes differ by kind).
  const ids = rules.map((r) => r.id);
  const sentences = rules.map((r) => r.sentence);
  const effects = rules.map((r) => r.effect);
  const kinds = rules.map((r) => r.kind);

  rules.forEach((rule, position) => {
    const parsed = rule.rule;
    if (parsed === undefined) throw new TypeError(`rule ${rule.id} has no parsed form; recompile it from its sentence`);
    head.push(`${rule.reason} (`);
    let key: string;
    let make: () => Group['evaluate'];
    if (parsed.form === 'limit') {
      threshold[position] = parsed.max;
      key = `limit:${questionKey(parsed, ['max'])}`;
      if (parsed.scope === 'call') {
        tail.push('');
        make = () => callLimitGroup(parsed, rule);
      } else {
        tail.push(`${parsed.metric === 'calls' ? String(parsed.max) : formatTotal(parsed.metric, parsed.max)})`);
        make = () => totalGroup(parsed, totalled);
      }
    } else if (parsed.form === 'rate') {
      threshold[position] = parsed.max;
      tail.push(`${parsed.max})`);
      key = `rate:${questionKey(parsed, ['max'])}`;
      if (!windows.includes(parsed.windowMs)) windows.push(parsed.windowMs);
      make = () => rateGroup(parsed, windows);
    } else if (parsed.form === 'subagent-depth') {
      threshold[position] = parsed.maxLevels;
      tail.push('');
      key = `depth:${questionKey(parsed, ['maxLevels'])}`;
      make = () => depthGroup(parsed, rule);
    } else if (parsed.form === 'tool' && parsed.condition === undefined) {
      tail.push('');
      scopes[position] = compileScope(parsed.tools);
      onlyMember[position] = parsed.only ? 1 : 0;
      key = `tool:${questionKey(parsed, ['tools'])}`;
      make = () => toolFamily(parsed, scopes);
    } else if (parsed.form === 'path') {
      tail.push('');
      matchers[position] = pathMatcher(parsed);
      key = `path:${questionKey(parsed, ['paths'])}`;
      make = () => pathFamily(parsed, matchers);
    } else if (parsed.form === 'host') {
      tail.push('');
      hostLists[position] = hostList(parsed);
      key = `host:${questionKey(parsed, ['hosts'])}`;
      make = () => hostFamily(parsed, hostLists);
    } else {
      tail.push('');
      key = `same:${questionKey(parsed, [])}`;
      make = () => sameGroup(checkOf(rule));
    }
    let index = byKey.get(key);
    if (index === undefined) {
      index = groups.length;
      byKey.set(key, index);
      groups.push({ evaluate: make(), epoch: 0, mode: NONE, detail: '', quantity: 0, withTail: false, version: 0, versionEpoch: 0, lastDetail: '', lastWithTail: false, family: key.startsWith('tool:') });
    }
    groupOf[position] = index;
  });

  let epoch = 0;
  const scratch: MatchedRule[] = [];
  /** A matched rule's entry with its own reason, frozen: it is handed to every later decision that gives the rule the same reason. */
  const entry = (position: number, reason: string): MatchedRule =>
    Object.freeze({
      id: ids[position] as string,
      sentence: sentences[position] as string,
      effect: effects[position] as MatchedRule['effect'],
      reason,
      kind: kinds[position] as MatchedRule['kind'],
    });
  /**
   * Entries made with a detail, kept per rule for the next decisions that give the same reason: a
   * reason is the rule's own words around its group's detail, so the same detail (as a string:
   * equal text) makes the same entry, and the state, clock and request that made the detail need
   * not be compared. `byVersion*`: for the group's shared detail (`Group.version`); `byDetail*`:
   * for a member's own detail (paths, hosts).
   */
  const byVersionEntry: (MatchedRule | undefined)[] = new Array(rules.length);
  const byVersion = new Float64Array(rules.length);
  const byDetailEntry: (MatchedRule | undefined)[] = new Array(rules.length);
  const byDetail: (string | undefined)[] = new Array(rules.length);
  return {
    size: groups.length,
    matched(context, candidates) {
      // Decisions never interleave (decide is synchronous), so one counter marks what this one evaluated.
      epoch = epoch >= 0x3fffffff ? 1 : epoch + 1;
      if (epoch === 1) for (const g of groups) g.epoch = g.versionEpoch = 0;
      // Built in one array kept by the engine (decisions never interleave), then copied out at its exact size.
      const out = scratch;
      let n = 0;
      const { request, m } = context;
      const signature = m.signature;
      let answers: Int8Array | undefined;
      if (signature !== undefined) {
        answers = coverage.get(signature);
        if (answers === undefined) {
          if (coverage.size >= MAX_SIGNATURES) coverage.clear();
          coverage.set(signature, (answers = new Int8Array(rules.length)));
        }
      }
      for (let i = 0; i < candidates.length; i += 1) {
        const position = candidates[i] as number;
        const group = groups[groupOf[position] as number] as Group;
        if (group.epoch !== epoch) {
          group.evaluate(group, context);
          group.epoch = epoch;
        }
        const mode = group.mode;
        if (mode === NONE) continue;
        if (mode === EACH) {
          if (group.family && answers !== undefined) {
            let answer = answers[position] as number;
            const scope = scopes[position] as CompiledScope;
            const only = onlyMember[position] === 1;
            if (answer === 0) {
              answer = (only ? coversRequestTool(scope, request, m) : coversOrReaches(scope, request, m)) ? 2 : 1;
              answers[position] = answer;
            }
            // evaluate-rule.ts `toolCheck`: "allow only" matches what its scope does not cover; the others `covers` the call (network writes: the method too).
            if (only ? answer === 2 : answer === 1 || (scope.networkWrite && !(m.networkWrite ?? !m.pending.has('method')))) continue;
            out[n++] = plain[position] as MatchedRule;
            continue;
          }
          const detail = (group.member as NonNullable<Group['member']>)(group, position, context);
          if (detail === undefined) continue;
          if (detail === '') {
            out[n++] = plain[position] as MatchedRule;
            continue;
          }
          if (byDetail[position] !== detail) {
            byDetailEntry[position] = entry(position, (head[position] as string) + detail);
            byDetail[position] = detail;
          }
          out[n++] = byDetailEntry[position] as MatchedRule;
          continue;
        }
        if (mode === ABOVE ? !(group.quantity > (threshold[position] as number)) : mode === AT_LEAST ? !(group.quantity >= (threshold[position] as number)) : false) continue;
        if (!group.withTail && group.detail === '') {
          out[n++] = plain[position] as MatchedRule;
          continue;
        }
        if (group.versionEpoch !== epoch) {
          if (group.version === 0 || group.detail !== group.lastDetail || group.withTail !== group.lastWithTail) {
            group.version += 1;
            group.lastDetail = group.detail;
            group.lastWithTail = group.withTail;
          }
          group.versionEpoch = epoch;
        }
        if (byVersion[position] !== group.version) {
          byVersionEntry[position] = entry(position, (head[position] as string) + group.detail + (group.withTail ? (tail[position] as string) : ')'));
          byVersion[position] = group.version;
        }
        out[n++] = byVersionEntry[position] as MatchedRule;
      }
      return out.slice(0, n);
    },
  };
}
