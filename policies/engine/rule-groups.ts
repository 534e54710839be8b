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
 */
import type { CompiledRule } from './compile-rule';
import {
  callsByTool,
  checkOf,
  compileScope,
  covers,
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
import { agentKey, type MatchedRule } from './policy-request';
import { counterOf } from './policy-state';
import type { ParsedRule } from './rule-syntax';

type LimitRule = Extract<ParsedRule, { form: 'limit' }>;
type RateRule = Extract<ParsedRule, { form: 'rate' }>;

/** What a group's evaluation says of its members in this decision. */
const NONE = 0; // no member matches
const ALL = 1; // every member matches, with the shared detail
const ABOVE = 2; // a member matches when the measured quantity exceeds its threshold
const AT_LEAST = 3; // ... when the quantity reaches its threshold

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
  // Non-finite numbers would all print as null; keep them apart.
  return JSON.stringify(parsed, (key, value: unknown) => (skip.has(key) ? undefined : typeof value === 'number' && !Number.isFinite(value) ? `#${String(value)}` : value));
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

/** Rates (evaluate-rule.ts `rateCheck`): the calls in the window are counted once per group. */
function rateGroup(parsed: RateRule): Group['evaluate'] {
  const scope = compileScope(parsed.tools);
  return (group, context) => {
    const { request, m, state } = context;
    group.withTail = true;
    if (!subjectCovers(parsed.subject, request) || !covers(scope, request, m)) {
      group.mode = NONE;
      return;
    }
    const onlyAgent = parsed.scope === 'agent' ? agentKey(request.agent) : undefined;
    const byTool = perTool(context, `w|${parsed.windowMs}|${onlyAgent ?? ''}`, () => callsByTool(state, m.nowMs, parsed.windowMs, onlyAgent));
    const count = sumCovered(scope, byTool, state);
    const where = onlyAgent === undefined ? 'across the task' : 'by this agent';
    group.mode = ABOVE;
    group.quantity = count + 1;
    group.detail = `${count} calls ${where} in the last ${parsed.window}, limit `;
  };
}

/** Running totals (evaluate-rule.ts `totalCheck`): the total so far is summed once per group. */
function totalGroup(parsed: LimitRule): Group['evaluate'] {
  const scope: CompiledScope = compileScope(parsed.tools);
  const counter = counterOf(parsed.metric, parsed.rowsOperation);
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
      const sofar = sumCovered(scope, perTool(context, `t|calls|${onlyAgent ?? ''}`, () => totalsByTool(state, 'calls', onlyAgent)), state);
      group.mode = ABOVE;
      group.quantity = sofar + 1;
      group.detail = `${sofar} ${parsed.tools.spawn === true ? 'sub-agents spawned' : 'calls'} ${where} so far, limit `;
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
    const sofar = sumCovered(scope, perTool(context, `t|${counter}|${onlyAgent ?? ''}`, () => totalsByTool(state, counter, onlyAgent)), state, !parsed.tools.named);
    group.mode = ABOVE;
    group.quantity = sofar + value;
    group.detail = `${formatTotal(metric, sofar)} ${where} so far + ${formatTotal(metric, value)} now, limit `;
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
  /** Each rule's entry when it matches with its reason as written (no detail): built once, frozen, shared by every decision. */
  const plain: MatchedRule[] = rules.map((rule) => Object.freeze({ id: rule.id, sentence: rule.sentence, effect: rule.effect, reason: rule.reason, kind: rule.kind }));

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
        make = () => totalGroup(parsed);
      }
    } else if (parsed.form === 'rate') {
      threshold[position] = parsed.max;
      tail.push(`${parsed.max})`);
      key = `rate:${questionKey(parsed, ['max'])}`;
      make = () => rateGroup(parsed);
    } else if (parsed.form === 'subagent-depth') {
      threshold[position] = parsed.maxLevels;
      tail.push('');
      key = `depth:${questionKey(parsed, ['maxLevels'])}`;
      make = () => depthGroup(parsed, rule);
    } else {
      tail.push('');
      key = `same:${questionKey(parsed, [])}`;
      make = () => sameGroup(checkOf(rule));
    }
    let index = byKey.get(key);
    if (index === undefined) {
      index = groups.length;
      byKey.set(key, index);
      groups.push({ evaluate: make(), epoch: 0, mode: NONE, detail: '', quantity: 0, withTail: false });
    }
    groupOf[position] = index;
  });

  let epoch = 0;
  return {
    size: groups.length,
    matched(context, candidates) {
      // Decisions never interleave (decide is synchronous), so one counter marks what this one evaluated.
      epoch = epoch >= 0x3fffffff ? 1 : epoch + 1;
      if (epoch === 1) for (const g of groups) g.epoch = 0;
      const out: MatchedRule[] = [];
      for (let i = 0; i < candidates.length; i += 1) {
        const position = candidates[i] as number;
        const group = groups[groupOf[position] as number] as Group;
        if (group.epoch !== epoch) {
          group.evaluate(group, context);
          group.epoch = epoch;
        }
        const mode = group.mode;
        if (mode === NONE) continue;
        if (mode === ABOVE ? !(group.quantity > (threshold[position] as number)) : mode === AT_LEAST ? !(group.quantity >= (threshold[position] as number)) : false) continue;
        if (!group.withTail && group.detail === '') {
          out.push(plain[position] as MatchedRule);
          continue;
        }
        const rule = rules[position] as CompiledRule;
        const reason = group.withTail ? (head[position] as string) + group.detail + (tail[position] as string) : `${head[position] as string}${group.detail})`;
        out.push({ id: rule.id, sentence: rule.sentence, effect: rule.effect, reason, kind: rule.kind });
      }
      return out;
    },
  };
}
