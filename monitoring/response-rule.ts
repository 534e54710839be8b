/**
 * Response rules: what Warden does when an agent departs from normal, written in the policies'
 * controlled English ("block the task and roll it back when it is denied 5 times in a minute";
 * grammar: policies/engine/grammar.md, parser: policies/engine/parse-response-rule.ts) and
 * evaluated here, in the workflow, after each action is scored.
 *
 * Responses, weakest to strongest: `alert` (a structured event on stdout, OpenTelemetry, the
 * alert webhook and the state store), `step-up` (this and every later action of the agent is held
 * for a human's approval), `block` (the agent stops issuing actions and its credentials, and its
 * sub-agents', stop verifying; the task waits for a human to remediate with `warden kill`, and
 * remediates by itself when nobody does within its approval timeout), `remediate` (block, then
 * run the task's compensations at once). Every response includes the weaker ones' alert.
 *
 * Deterministic and free of Node imports: workflow code evaluates the rules.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import type { ActionFeatures } from './action-features';
import type { AgentBaseline } from './baseline';
import { countWithin, eventsWithin, identicalRun, rowsWithin, type MonitorHistory } from './monitor-history';
import { SIGNALS, usableBaseline, type ScoreReason, type ScoringOptions } from './score-action';

export const RESPONSES = ['alert', 'step-up', 'block', 'remediate'] as const;
export type Response = z.infer<typeof ResponseSchema>;

/** The stronger of two responses. */
export function strongerResponse(a: Response | undefined, b: Response | undefined): Response | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return RESPONSES.indexOf(a) >= RESPONSES.indexOf(b) ? a : b;
}

export type ResponseTrigger = z.infer<typeof ResponseTriggerSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('monitoring/response-rule', () => {
  const Count = z.number().int().min(1).max(1_000_000);
  const WindowMs = z.number().int().min(1).max(7 * 24 * 3_600_000).optional();
  const ResponseSchema = z.enum(RESPONSES);
  const ResponseTriggerSchema = z.discriminatedUnion('kind', [
    /** The action's anomaly score is above `above`. */
    z.strictObject({ kind: z.literal('score'), above: z.number().min(0).max(100) }),
    /** At least `count` actions refused (by grants, policies, approvers) within the window (or the whole run). */
    z.strictObject({ kind: z.literal('denied'), count: Count, windowMs: WindowMs }),
    /** At least `count` actions that ran and failed within the window. */
    z.strictObject({ kind: z.literal('failed'), count: Count, windowMs: WindowMs }),
    /**
     * The action's score has a reason of this signal (`new-host`, `new-tool`, ...) or of one of
     * `also`. "its credentials are revoked" is `credentials-revoked` also `grant-unknown`: a grant
     * the worker has no record of is refused as firmly, and may be a revoked grant since pruned.
     * Rules recorded without `also` (in histories from before it) match their one signal only.
     */
    z.strictObject({ kind: z.literal('signal'), signal: z.enum(SIGNALS), also: z.array(z.enum(SIGNALS)).optional() }),
    /** The same call (tool and arguments) at least `count` times in a row. */
    z.strictObject({ kind: z.literal('identical-calls'), count: Count }),
    /** More than `more` sub-agents spawned within the window (or the whole run). */
    z.strictObject({ kind: z.literal('spawns'), more: z.number().int().min(0), windowMs: WindowMs }),
    /** More than `more` actions (of `tools`, when given) within the window (or the whole run). */
    z.strictObject({ kind: z.literal('calls'), more: z.number().int().min(0), windowMs: WindowMs, tools: z.array(z.string()).optional() }),
    /** More than `more` rows changed (by `operation` when given), summed within the window (or the whole run). */
    z.strictObject({ kind: z.literal('rows'), more: z.number().int().min(0), operation: z.enum(['delete', 'update', 'insert']).optional(), windowMs: WindowMs }),
    /** One call's rows or bytes more than `factor` times the most the baseline learnt for the tool. */
    z.strictObject({ kind: z.literal('usual'), metric: z.enum(['rows', 'bytes']), factor: z.number().min(1), operation: z.enum(['delete', 'update', 'insert']).optional() }),
  ]);
  const ResponseRuleSchema = z.strictObject({
    /** `<pack>:<line>` or `task:<n>`, as for policy rules. */
    id: z.string().min(1),
    sentence: z.string().min(1),
    source: z.string().optional(),
    response: ResponseSchema,
    trigger: ResponseTriggerSchema,
  });
  return { ResponseSchema, ResponseTriggerSchema, ResponseRuleSchema };
});

export const { ResponseSchema, ResponseTriggerSchema, ResponseRuleSchema } = schemas;
export type ResponseRule = z.infer<typeof ResponseRuleSchema>;

/** What the rules see of one moment: the run so far, the action and its score. */
export interface ResponseContext {
  history: MonitorHistory;
  baseline: AgentBaseline | undefined;
  features: ActionFeatures;
  score: number;
  reasons: readonly ScoreReason[];
  /** Workflow time, epoch ms. */
  now: number;
  options?: ScoringOptions;
}

/** A rule that fired, with what it saw. */
export interface FiredRule {
  id: string;
  sentence: string;
  response: Response;
  /** The figure that crossed the rule's threshold, in words. */
  detail: string;
}

function matchesTool(patterns: readonly string[] | undefined, tool: string): boolean {
  if (patterns === undefined) return true;
  return patterns.some((p) => (p.includes('*') ? new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(tool) : p === tool));
}

const windowText = (windowMs: number | undefined) => (windowMs === undefined ? 'in this run' : `within ${windowMs >= 60_000 ? `${windowMs / 60_000} min` : `${windowMs / 1000} s`}`);

/** The figure the trigger reads, in words, when it holds; undefined when it does not. */
export function triggerHolds(trigger: ResponseTrigger, ctx: ResponseContext): string | undefined {
  const { history, now, features } = ctx;
  switch (trigger.kind) {
    case 'score':
      return ctx.score > trigger.above ? `anomaly score ${ctx.score} > ${trigger.above}` : undefined;
    case 'denied': {
      const n = countWithin(history, now, trigger.windowMs, 'refused');
      return n >= trigger.count ? `${n} refused ${windowText(trigger.windowMs)}` : undefined;
    }
    case 'failed': {
      const n = countWithin(history, now, trigger.windowMs, 'failed');
      return n >= trigger.count ? `${n} failed ${windowText(trigger.windowMs)}` : undefined;
    }
    case 'signal': {
      const reason = ctx.reasons.find((r) => r.signal === trigger.signal || trigger.also?.includes(r.signal) === true);
      return reason === undefined ? undefined : reason.detail;
    }
    case 'identical-calls': {
      const n = identicalRun(history);
      return n >= trigger.count ? `the same call ${n} times in a row` : undefined;
    }
    case 'spawns': {
      if (features.kind !== 'spawn') return undefined;
      const n = trigger.windowMs === undefined ? history.spawns : eventsWithin(history, now, trigger.windowMs).filter((e) => e.spawn).length;
      return n > trigger.more ? `${n} sub-agents spawned ${windowText(trigger.windowMs)}` : undefined;
    }
    case 'calls': {
      if (!matchesTool(trigger.tools, features.tool)) return undefined;
      // The whole run's count comes from the running totals (they hold the folded events too).
      const n =
        trigger.windowMs !== undefined
          ? eventsWithin(history, now, trigger.windowMs).filter((e) => matchesTool(trigger.tools, e.tool)).length
          : trigger.tools === undefined
            ? history.calls
            : Object.entries(history.callsByTool).reduce((sum, [tool, calls]) => sum + (matchesTool(trigger.tools, tool) ? calls : 0), 0);
      return n > trigger.more ? `${n} actions ${windowText(trigger.windowMs)}` : undefined;
    }
    case 'rows': {
      if (features.rows === undefined) return undefined;
      // Refused actions changed nothing; the action about to run counts with its measured rows.
      const n = rowsWithin(history, now, trigger.windowMs, trigger.operation);
      return n > trigger.more ? `${n} rows${trigger.operation === undefined ? '' : ` (${trigger.operation})`} ${windowText(trigger.windowMs)}` : undefined;
    }
    case 'usual': {
      const tool = usableBaseline(ctx.baseline, ctx.options)?.tools[features.tool];
      if (tool === undefined) return undefined;
      if (trigger.operation !== undefined && features.operation !== trigger.operation) return undefined;
      const value = trigger.metric === 'rows' ? features.rows : features.bytesOut;
      const stat = trigger.metric === 'rows' ? ((features.operation === undefined ? undefined : tool.rowsByOperation[features.operation]) ?? tool.rows) : tool.bytesOut;
      if (value === undefined || stat === undefined || stat.n === 0) return undefined;
      const usual = Math.max(stat.max, 1);
      return value > trigger.factor * usual ? `${value} ${trigger.metric}, ${Math.round((value / usual) * 10) / 10}x the most learnt (${stat.max})` : undefined;
    }
  }
}

/**
 * Triggers about counts (in a window, in the run, in a row) fire when they become true, not again
 * while they stay true; triggers about the action itself (its score, a signal, its size) fire for
 * every action they hold for.
 */
function isLevel(trigger: ResponseTrigger): boolean {
  return trigger.kind !== 'score' && trigger.kind !== 'signal' && trigger.kind !== 'usual';
}

/**
 * The rules that fire now. `armed` remembers, per rule id, whether a window-count rule has reset
 * since it last fired (updated in place); `firedThisStep` holds rules that already fired for this
 * action (each rule fires at most once per action).
 */
export function fireRules(rules: readonly ResponseRule[], ctx: ResponseContext, armed: Record<string, boolean>, firedThisStep: ReadonlySet<string>): FiredRule[] {
  const fired: FiredRule[] = [];
  for (const rule of rules) {
    const detail = triggerHolds(rule.trigger, ctx);
    if (isLevel(rule.trigger)) {
      if (detail === undefined) {
        armed[rule.id] = true;
        continue;
      }
      if (armed[rule.id] === false) continue;
      armed[rule.id] = false;
    } else if (detail === undefined) continue;
    if (firedThisStep.has(rule.id)) continue;
    fired.push({ id: rule.id, sentence: rule.sentence, response: rule.response, detail });
  }
  return fired;
}
