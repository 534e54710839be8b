/**
 * The running counters stateful rules decide on, kept by the workflow between decisions: totals
 * per agent and tool (calls, rows, amounts, files, bytes) and the timestamps of recent calls for
 * rates. Plain JSON, updated by pure functions, so it can live in workflow state and history.
 *
 * Invariant: each agent's counters are written only by that agent's own decisions (keyed by its
 * run id) and only grow, so states copied into sub-agents and back merge by taking maxima without
 * double counting.
 */
import { z } from 'zod';
import { sharedOnce } from '../../workflows/shared-modules';
import type { RowsOperation } from './rule-syntax';
import { agentKey, measureRequest, type ExecutionOutcome, type Measured, type PolicyRequest } from './policy-request';

/** Counter names: calls, rows (also by operation), amountCents, files, bytes. */
export const COUNTERS = ['calls', 'rows', 'rows:delete', 'rows:insert', 'rows:update', 'amountCents', 'files', 'bytes'] as const;
export type Counter = (typeof COUNTERS)[number];

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('policies/engine/policy-state', () => {
  const RecentCallSchema = z.strictObject({
    agent: z.string(),
    /** The agent's call number (1-based); with `agent`, identifies the call when states merge. */
    seq: z.number().int().min(1),
    tool: z.string(),
    /** Epoch milliseconds. */
    at: z.number(),
  });
  const AgentCountersSchema = z.strictObject({
    name: z.string(),
    depth: z.number().int().min(0),
    calls: z.number().int().min(0),
    /** tool → counter → total. */
    tools: z.record(z.string(), z.record(z.string(), z.number())),
  });
  const PolicyStateSchema = z.strictObject({
    version: z.literal(1),
    /** agent key (its run id, else chain/name) → its counters. */
    agents: z.record(z.string(), AgentCountersSchema),
    /** Calls recent enough to matter to a rate rule, oldest first. */
    recent: z.array(RecentCallSchema),
    /** Effect tags of each tool called so far (family scopes count totals and rates by tag). */
    toolTags: z.record(z.string(), z.array(z.string())).optional(),
    /**
     * Private data read so far: agent key → what it read ("fs.read /workspace/notes.txt"), at most
     * a few entries each. Flow rules hold sends after any private read in the task tree.
     */
    privateReads: z.record(z.string(), z.array(z.string())).optional(),
    /** Workspace paths and tables written so far in the task tree: what they hold now is no longer the user's own. */
    written: z.strictObject({ paths: z.array(z.string()), tables: z.array(z.string()) }).optional(),
    /**
     * Payments made so far in the task tree, as `paymentKeysOf` keys (payee, amount, currency): a
     * payment the user asked for binds once; paying it again needs what any other amount needs.
     */
    paid: z.array(z.string()).optional(),
  });
  return { RecentCallSchema, AgentCountersSchema, PolicyStateSchema };
});

export const { RecentCallSchema, AgentCountersSchema, PolicyStateSchema } = schemas;
export type PolicyState = z.infer<typeof PolicyStateSchema>;
export type AgentCounters = z.infer<typeof AgentCountersSchema>;

export function emptyPolicyState(): PolicyState {
  return { version: 1, agents: {}, recent: [] };
}

/** Counter increments of one executed call. */
function increments(measured: Measured): Partial<Record<Counter, number>> {
  const inc: Partial<Record<Counter, number>> = {};
  if (measured.rowsByOperation !== undefined) {
    const byOp = measured.rowsByOperation;
    inc.rows = measured.rows ?? byOp.delete + byOp.insert + byOp.update;
    for (const o of ['delete', 'insert', 'update'] as const) if (byOp[o] > 0) inc[`rows:${o}`] = byOp[o];
  } else if (measured.rows !== undefined) {
    inc.rows = measured.rows;
    const op = measured.operation;
    // A statement of unknown kind counts against every per-operation total: fail closed.
    for (const o of ['delete', 'insert', 'update'] as const) if (op === undefined || op === o) inc[`rows:${o}`] = measured.rows;
  }
  if (measured.amountCents !== undefined) inc.amountCents = measured.amountCents;
  if (measured.files !== undefined) inc.files = measured.files;
  if (measured.bytes !== undefined) inc.bytes = measured.bytes;
  return inc;
}

/**
 * The state after `request` ran with `outcome`. Pure: returns a new state. Denied actions change
 * nothing; failed ones count as calls only; successful ones add their measured effect (the
 * outcome's effect if the tool reported one, else the declared one). Recent calls older than
 * `retainMs` before this request are dropped.
 */
export function recordExecution(state: PolicyState, request: PolicyRequest, outcome: ExecutionOutcome, options: { retainMs: number }): PolicyState {
  if (outcome.status === 'denied') return state;
  const key = agentKey(request.agent);
  const measured = measureRequest(request, outcome.effect ?? request.effect);
  const extra: Pick<PolicyState, 'toolTags' | 'privateReads' | 'written' | 'paid'> = {};
  const known = state.toolTags?.[request.tool];
  extra.toolTags = known !== undefined && known.length === measured.tags.length && known.every((t) => measured.tags.includes(t as never)) ? state.toolTags : { ...(state.toolTags ?? {}), [request.tool]: [...new Set([...(known ?? []), ...measured.tags])].sort() };
  if (state.privateReads !== undefined) extra.privateReads = state.privateReads;
  if (outcome.status === 'ok' && readsPrivateData(request, measured)) {
    const what = `${request.via === undefined ? '' : `${request.via} > `}${request.tool}${measured.paths[0] === undefined ? '' : ` ${measured.paths[0].path}`}`;
    const seen = state.privateReads?.[key] ?? [];
    // A few examples per agent say what was read; one is enough to hold later sends.
    if (seen.length === 0 || (!seen.includes(what) && seen.length < 8)) extra.privateReads = { ...(state.privateReads ?? {}), [key]: [...seen, what] };
  }
  const writtenPaths = measured.paths.filter((p) => p.access === 'write' || p.access === 'delete').map((p) => p.path);
  const writtenTables = measured.tables.map((t) => (t.database === undefined ? t.table : `${t.database}.${t.table}`).toLowerCase());
  if (state.written !== undefined || writtenPaths.length > 0 || writtenTables.length > 0) {
    const paths = [...new Set([...(state.written?.paths ?? []), ...writtenPaths])].sort();
    const tables = [...new Set([...(state.written?.tables ?? []), ...writtenTables])].sort();
    extra.written = { paths, tables };
  }
  if (state.paid !== undefined) extra.paid = state.paid;
  if (outcome.status === 'ok') {
    const keys = paymentKeysOf(outcome.effect ?? request.effect);
    if (keys.length > 0) extra.paid = [...new Set([...(state.paid ?? []), ...keys])].sort();
  }
  const previous = state.agents[key];
  const calls = (previous?.calls ?? 0) + 1;
  const toolCounters: Record<string, number> = { ...(previous?.tools[request.tool] ?? {}) };
  toolCounters.calls = (toolCounters.calls ?? 0) + 1;
  if (outcome.status === 'ok') {
    for (const [counter, value] of Object.entries(increments(measured))) toolCounters[counter] = (toolCounters[counter] ?? 0) + (value as number);
  }
  const agent: AgentCounters = {
    name: request.agent.name,
    depth: request.agent.depth,
    calls,
    tools: { ...(previous?.tools ?? {}), [request.tool]: toolCounters },
  };
  const cutoff = measured.nowMs - options.retainMs;
  const recent = state.recent.filter((r) => r.at > cutoff);
  if (options.retainMs > 0) recent.push({ agent: key, seq: calls, tool: request.tool, at: measured.nowMs });
  return { version: 1, agents: { ...state.agents, [key]: agent }, recent, ...definedOnly(extra) };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Whether a call that ran handed private data to the agent: its tool reads private data and it is not a write. */
function readsPrivateData(request: PolicyRequest, measured: Measured): boolean {
  if (measured.isSpawn) return false;
  if (request.descriptor !== undefined) {
    if (!request.descriptor.readsPrivate) return false;
    // A write's answer (path and size, rows changed) is not the data it wrote.
    const writesOnly = measured.paths.length > 0 && measured.paths.every((p) => p.access === 'write' || p.access === 'delete');
    return !writesOnly && !(request.tool === 'sql.exec');
  }
  return ['fs.read', 'fs.list', 'sql.query'].includes(request.tool);
}

/** What was read from private sources anywhere in the task tree the state covers. */
export function privateReadsIn(state: PolicyState): string[] {
  return Object.values(state.privateReads ?? {}).flat();
}

/**
 * Combines states that diverged from a common one (a parent's and its sub-agents'): per agent and
 * counter the larger total, recent calls united. Commutative, associative and idempotent.
 */
export function mergePolicyStates(...states: readonly PolicyState[]): PolicyState {
  const agents: Record<string, AgentCounters> = {};
  const recent = new Map<string, z.infer<typeof RecentCallSchema>>();
  for (const state of states) {
    for (const [key, counters] of Object.entries(state.agents)) {
      const current = agents[key];
      if (current === undefined) {
        agents[key] = { ...counters, tools: Object.fromEntries(Object.entries(counters.tools).map(([t, c]) => [t, { ...c }])) };
        continue;
      }
      current.calls = Math.max(current.calls, counters.calls);
      for (const [tool, values] of Object.entries(counters.tools)) {
        const into = (current.tools[tool] ??= {});
        for (const [counter, value] of Object.entries(values)) into[counter] = Math.max(into[counter] ?? 0, value);
      }
    }
    for (const call of state.recent) recent.set(`${call.agent}#${call.seq}`, call);
  }
  const merged = [...recent.values()].sort((a, b) => a.at - b.at || a.agent.localeCompare(b.agent) || a.seq - b.seq);
  const toolTags: Record<string, string[]> = {};
  const privateReads: Record<string, string[]> = {};
  const paths = new Set<string>();
  const tables = new Set<string>();
  const paid = new Set<string>();
  for (const state of states) {
    for (const k of state.paid ?? []) paid.add(k);
    for (const [tool, tags] of Object.entries(state.toolTags ?? {})) toolTags[tool] = [...new Set([...(toolTags[tool] ?? []), ...tags])].sort();
    for (const [agent, reads] of Object.entries(state.privateReads ?? {})) privateReads[agent] = [...new Set([...(privateReads[agent] ?? []), ...reads])].slice(0, 8);
    for (const p of state.written?.paths ?? []) paths.add(p);
    for (const t of state.written?.tables ?? []) tables.add(t);
  }
  return {
    version: 1,
    agents,
    recent: merged,
    ...(Object.keys(toolTags).length > 0 ? { toolTags } : {}),
    ...(Object.keys(privateReads).length > 0 ? { privateReads } : {}),
    ...(paths.size > 0 || tables.size > 0 ? { written: { paths: [...paths].sort(), tables: [...tables].sort() } } : {}),
    ...(paid.size > 0 ? { paid: [...paid].sort() } : {}),
  };
}

/**
 * The keys of the payments a call's effect makes: one per payee and declared amount,
 * `<payee>|<amount>|<currency>` (payee lower case without spaces or dashes, `?` for no currency,
 * `-` for no declared payee). Empty for a call with no declared amount.
 */
export function paymentKeysOf(effect: { amounts?: readonly { value: number; currency?: string }[]; payees?: readonly { value: string }[] } | undefined): string[] {
  const amounts = effect?.amounts ?? [];
  if (amounts.length === 0) return [];
  const payees = (effect?.payees ?? []).map((p) => p.value.replace(/[\s-]/g, '').toLowerCase());
  const keys: string[] = [];
  for (const payee of payees.length === 0 ? ['-'] : payees) for (const a of amounts) keys.push(`${payee}|${a.value}|${a.currency?.toUpperCase() ?? '?'}`);
  return keys;
}

/** A tool's effect tags as recorded, else by its name. */
function tagsRecorded(state: PolicyState, tool: string): readonly string[] | undefined {
  return state.toolTags?.[tool];
}

/** The counter's total over the agents in scope and the tools `covers` accepts (given each tool's recorded tags). */
export function totalOf(state: PolicyState, counter: Counter, covers: (tool: string, tags?: readonly string[]) => boolean, onlyAgent?: string): number {
  let total = 0;
  for (const [key, agent] of Object.entries(state.agents)) {
    if (onlyAgent !== undefined && key !== onlyAgent) continue;
    for (const [tool, values] of Object.entries(agent.tools)) if (covers(tool, tagsRecorded(state, tool))) total += values[counter] ?? 0;
  }
  return total;
}

/** Calls in (now - windowMs, now] by tools `covers` accepts. */
export function callsWithin(state: PolicyState, nowMs: number, windowMs: number, covers: (tool: string, tags?: readonly string[]) => boolean, onlyAgent?: string): number {
  let count = 0;
  const verdicts = new Map<string, boolean>();
  for (const call of state.recent) {
    if (call.at <= nowMs - windowMs || call.at > nowMs) continue;
    if (onlyAgent !== undefined && call.agent !== onlyAgent) continue;
    let covered = verdicts.get(call.tool);
    if (covered === undefined) {
      covered = covers(call.tool, tagsRecorded(state, call.tool));
      verdicts.set(call.tool, covered);
    }
    if (covered) count += 1;
  }
  return count;
}

/** The counter a limit on `metric` reads. */
export function counterOf(metric: 'calls' | 'rows' | 'amount' | 'files' | 'bytes', rowsOperation?: RowsOperation): Counter {
  if (metric === 'rows') return rowsOperation === undefined ? 'rows' : `rows:${rowsOperation}`;
  if (metric === 'amount') return 'amountCents';
  return metric;
}

