/**
 * What the policy engine sees of a proposed action (`PolicyRequest`), what it answers
 * (`PolicyDecision`) and what the workflow reports after running it (`ExecutionOutcome`).
 *
 * Invariant: quantities a rule limits are taken from what the tool measured and declared
 * (`effect`), never from the agent's arguments. The only values derived from arguments are
 * those the tool acts on verbatim: the path of an fs tool, the host and method of http.fetch,
 * the size of fs.write's content, and "one file" for fs.write.
 */
import { z } from 'zod';
import { normalizeHost, normalizePath } from './rule-syntax';

/** Where an argument value came from: the user's intent (or task file), an earlier tool output, or neither. */
export const ValueSourceSchema = z.enum(['user', 'tool-output', 'literal']);
export type ValueSource = z.infer<typeof ValueSourceSchema>;

/**
 * The effect a tool declares before it runs, measured by the tool itself: `sql.exec` counts the
 * rows a statement changes inside a transaction it then commits or rolls back, `fs.write`
 * reports path and size, `http.fetch` host and method, a payment tool amount and currency.
 * Unknown fields are kept and ignored.
 */
export const ToolEffectSchema = z.looseObject({
  rowsChanged: z.number().int().min(0).optional(),
  /** The statement kind sql.exec ran or would run: insert, update or delete. */
  operation: z.string().optional(),
  path: z.string().optional(),
  bytes: z.number().int().min(0).optional(),
  files: z.number().int().min(0).optional(),
  host: z.string().optional(),
  method: z.string().optional(),
  amount: z.number().min(0).optional(),
  currency: z.string().optional(),
});
export type ToolEffect = z.infer<typeof ToolEffectSchema>;

export const PolicyAgentSchema = z.strictObject({
  name: z.string().min(1),
  /** 0 for the task the user started, 1 for its sub-agents, ... */
  depth: z.number().int().min(0),
  /** Names of the agents that delegated to this one, root first (empty for the root). */
  chain: z.array(z.string()).default([]),
  /** Unique id of this agent's run (its workflow id); keys its running totals. Defaults to chain/name. */
  id: z.string().min(1).optional(),
});

export const PolicyRequestSchema = z.strictObject({
  /** Tool name, or `spawn:<sub-agent>` for spawning a sub-agent. */
  tool: z.string().min(1),
  args: z.record(z.string(), z.unknown()).default({}),
  /** Resources the action touches, as Warden resolved them from the arguments. */
  resources: z
    .strictObject({
      paths: z.array(z.string()).default([]),
      hosts: z.array(z.string()).default([]),
      databases: z.array(z.string()).default([]),
    })
    .default({ paths: [], hosts: [], databases: [] }),
  agent: PolicyAgentSchema,
  effect: ToolEffectSchema.optional(),
  /** Argument JSON pointer (relative to `args`, e.g. "/to") → where its value came from. */
  provenance: z.record(z.string(), ValueSourceSchema).default({}),
  /** The decision's clock (ISO 8601), injected so decisions replay deterministically. */
  now: z.iso.datetime({ offset: true }),
});
export type PolicyRequest = z.infer<typeof PolicyRequestSchema>;
export type PolicyRequestInput = z.input<typeof PolicyRequestSchema>;

export const MatchedRuleSchema = z.strictObject({
  id: z.string(),
  sentence: z.string(),
  effect: z.enum(['allow', 'deny', 'approval']),
  reason: z.string(),
  kind: z.enum(['cedar', 'stateful']),
});
export type MatchedRule = z.infer<typeof MatchedRuleSchema>;

/** Deny beats approval beats allow; with no matching rule a (granted) action is allowed. */
export const PolicyDecisionSchema = z.strictObject({
  decision: z.enum(['allow', 'deny', 'approval']),
  matched: z.array(MatchedRuleSchema),
  /** Reasons of the rules that decided, in words. */
  reasons: z.array(z.string()),
});
export type PolicyDecision = z.infer<typeof PolicyDecisionSchema>;

/** What happened when the action ran (or did not): only executed actions count. */
export const ExecutionOutcomeSchema = z.strictObject({
  /** ok: ran and succeeded; error: ran and failed (counts as a call, changes nothing); denied: never ran. */
  status: z.enum(['ok', 'error', 'denied']),
  /** The effect the tool reported after running, when it differs from the declared one. */
  effect: ToolEffectSchema.optional(),
});
export type ExecutionOutcome = z.infer<typeof ExecutionOutcomeSchema>;

/** The measurable facts of one request, as rules see them. */
export interface Measured {
  isSpawn: boolean;
  rows?: number;
  operation?: string;
  amountCents?: number;
  currency?: string;
  files?: number;
  bytes?: number;
  paths: string[];
  hosts: string[];
  method?: string;
  nowMs: number;
  minuteOfDay: number;
}

function hostOfUrl(url: string): string | undefined {
  try {
    return normalizeHost(new URL(url).hostname);
  } catch {
    return undefined;
  }
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** The facts rules decide on; `effect` overrides what the request declared (for recording outcomes). */
export function measureRequest(request: PolicyRequest, effect: ToolEffect | undefined = request.effect): Measured {
  const { tool, args } = request;
  const e = effect ?? {};
  const nowMs = Date.parse(request.now);
  const now = new Date(nowMs);
  const measured: Measured = {
    isSpawn: tool.startsWith('spawn:'),
    paths: [],
    hosts: [],
    nowMs,
    minuteOfDay: now.getUTCHours() * 60 + now.getUTCMinutes(),
  };
  if (e.rowsChanged !== undefined) measured.rows = e.rowsChanged;
  if (e.operation !== undefined) measured.operation = e.operation.toLowerCase();
  if (e.amount !== undefined) measured.amountCents = Math.round(e.amount * 100);
  if (e.currency !== undefined) measured.currency = e.currency.toUpperCase();
  if (e.files !== undefined) measured.files = e.files;
  else if (tool === 'fs.write') measured.files = 1;
  if (e.bytes !== undefined) measured.bytes = e.bytes;
  else if (tool === 'fs.write' && typeof args.content === 'string') measured.bytes = utf8Length(args.content);

  const paths = new Set<string>();
  if (e.path !== undefined) paths.add(normalizePath(e.path));
  else if (tool.startsWith('fs.')) {
    if (typeof args.path === 'string') paths.add(normalizePath(args.path));
    else if (tool === 'fs.list' && args.path === undefined) paths.add(normalizePath('.'));
  }
  for (const p of request.resources.paths) paths.add(normalizePath(p));
  measured.paths = [...paths];

  const hosts = new Set<string>();
  if (e.host !== undefined) hosts.add(normalizeHost(e.host));
  else if (typeof args.url === 'string') {
    const host = hostOfUrl(args.url);
    if (host !== undefined) hosts.add(host);
  }
  for (const h of request.resources.hosts) hosts.add(normalizeHost(h));
  measured.hosts = [...hosts];

  if (e.method !== undefined) measured.method = e.method.toUpperCase();
  else if (tool === 'http.fetch') measured.method = typeof args.method === 'string' ? args.method.toUpperCase() : 'GET';
  return measured;
}

/** Stable key of an agent's running totals: its run id, else its delegation chain and name. */
export function agentKey(agent: PolicyRequest['agent']): string {
  return agent.id ?? [...agent.chain, agent.name].join('/');
}
