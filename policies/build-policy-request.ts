/**
 * The policy request of one action, built the same way when the workflow asks before a call, when
 * the sandbox host asks before a capability call made from inside a tool, and when a backtest
 * replays recorded calls under another pack: the tool's descriptor says which arguments carry
 * which effects (tools/call-effects.ts), the provenance index says where each value came from.
 *
 * Pure (no Node APIs): the sandbox host and workflow-side code may import it.
 */
import { parseScope } from '../identity/call-scope';
import type { Task } from '../task/task-schema';
import { callEffectsOf, hostOfUrl, type CallEffects } from '../tools/call-effects';
import { scopeOfCall } from '../tools/call-scope';
import { resolveTool } from '../tools/tool-catalog';
import { isCapabilityBound, isSandboxConfined, workspaceReachOf, type ToolDescriptor } from '../tools/tool-descriptor';
import { parsePolicyRequest, type PendingFact, type PolicyRequest, type ToolEffect, type ToolSummary, type ValueSource } from './engine/policy-request';
import { buildProvenanceIndex, classifyArguments, classifyAs, type IndexedTexts, type ProvenanceIndex } from './engine/provenance';
import { userValuesOf, type ProvenanceSeed } from './provenance-seed';
import { paymentKeysOf, type PolicyState } from './engine/policy-state';

export interface PolicyRequestContext {
  task: Task;
  workflowId: string;
  depth: number;
  /** Agent names from the root down to this agent's parent. */
  chain: string[];
  tool: string;
  args: Record<string, unknown>;
  /** Outputs of earlier steps from untrusted sources: values found only there did not come from the user. */
  priorOutputs: unknown[];
  /** Outputs of earlier steps the task marks as the user's own (trusted). */
  trustedOutputs?: unknown[];
  /** More untrusted outputs, indexed beforehand (the data flow's large outputs, indexed once per worker). */
  priorOutputIndexes?: readonly IndexedTexts[];
  /** A sub-agent's inherited provenance: the root user's values and the atoms its parent had from trusted data. */
  seed?: ProvenanceSeed;
  /**
   * The provenance index of the fields above, when the caller keeps one (a worker extends its
   * task's index step by step: policies/engine/incremental-provenance.ts); built from them otherwise.
   */
  provenanceIndex?: ProvenanceIndex;
  /** What the call does or did, as Warden measured it (never the agent's claim), merged over what the descriptor declares. */
  effect: ToolEffect | undefined;
  now: string;
  /** The task's policy state: a payment already made (`paid`) no longer binds to what the user gave. */
  state?: PolicyState;
}

/** What rules need of a descriptor. */
export function toolSummaryOf(descriptor: ToolDescriptor): ToolSummary {
  const p = descriptor.profile;
  const e = descriptor.effects;
  const declares = (['recipients', 'payees', 'amounts', 'urls', 'hosts', 'paths', 'sql'] as const).filter((k) => e[k].length > 0);
  return {
    executor: descriptor.executor.kind,
    ...(isSandboxConfined(descriptor) ? { confined: true } : {}),
    capabilityBound: isCapabilityBound(descriptor.executor),
    capabilities: [...descriptor.capabilities],
    families: [...p.families],
    declared: p.declared,
    readOnly: p.readOnly,
    destructive: p.destructive,
    openWorld: p.openWorld,
    undoable: p.undoable,
    readsPrivate: p.readsPrivate,
    declares,
  };
}

/**
 * Facts of a call of `descriptor` that are measured only where it is applied: the SQL effect of
 * the sql.exec capability (rows, operation, tables), and for tools acting through capabilities,
 * whatever those capabilities measure that the tool does not declare by argument.
 */
export function pendingFactsOf(descriptor: ToolDescriptor): PendingFact[] {
  if (!isCapabilityBound(descriptor.executor)) return [];
  const pending = new Set<PendingFact>();
  const caps = descriptor.capabilities;
  const e = descriptor.effects;
  if (caps.includes('sql.exec')) for (const f of ['rows', 'operation', 'tables'] as const) pending.add(f);
  if (caps.includes('sql.query') && descriptor.executor.kind !== 'builtin') pending.add('tables');
  if (descriptor.executor.kind === 'isolate') {
    if (caps.some((c) => c.startsWith('fs.')) && e.paths.length === 0) pending.add('path');
    if (caps.includes('fs.write') && e.paths.length === 0) for (const f of ['bytes', 'files'] as const) pending.add(f);
    if (caps.includes('http.fetch') && e.urls.length === 0 && e.hosts.length === 0) for (const f of ['host', 'url', 'method'] as const) pending.add(f);
  }
  return [...pending];
}

/** The effect a descriptor declares for a call, as the request carries it. */
export function declaredEffectOf(descriptor: ToolDescriptor, args: Record<string, unknown>, effects: CallEffects = callEffectsOf(descriptor, args)): ToolEffect {
  const effect: ToolEffect = {};
  if (effects.recipients.length > 0) effect.recipients = effects.recipients;
  if (effects.payees.length > 0) effect.payees = effects.payees;
  if (effects.amounts.length > 0) effect.amounts = effects.amounts;
  if (effects.urls.length > 0) effect.urls = effects.urls;
  if (effects.hosts.length > 0) effect.hosts = effects.hosts;
  if (effects.paths.length > 0) effect.paths = effects.paths;
  if (effects.sql.length > 0) effect.sql = effects.sql;
  if (effects.unreadable.length > 0) effect.unreadable = effects.unreadable;
  // A program or an MCP server that sees the workspace can touch any path of it, whatever it declares.
  const reach = workspaceReachOf(descriptor);
  if (reach !== 'none') effect.workspace = reach;
  const pending = pendingFactsOf(descriptor);
  if (pending.length > 0) effect.pending = pending;
  return effect;
}

/**
 * The destinations of a call and where each came from, each judged as its kind (a host only
 * against hosts the user named or listed, a recipient or payee only against recipients the user
 * gave: provenance.ts `classifyAs`); a declared host, recipient or payee no better than the
 * source its argument inherited.
 */
export function destinationsOf(effects: CallEffects, inherited: Record<string, ValueSource>, index: ProvenanceIndex): PolicyRequest['destinations'] {
  const out: PolicyRequest['destinations'] = [];
  // A URL's host is judged by itself: a URL the user did not give may still go to a host they did.
  for (const u of effects.urls) out.push({ kind: 'host', value: u.host, source: classifyAs(index, { kind: 'host' }, u.host) });
  for (const h of effects.hosts) out.push({ kind: 'host', value: h.host, source: worse(classifyAs(index, { kind: 'host' }, h.host), inherited[h.pointer]) });
  for (const r of effects.recipients) out.push({ kind: 'recipient', value: r.value, source: worse(classifyAs(index, { kind: 'party', as: r.kind }, r.value), inherited[r.pointer]) });
  for (const p of effects.payees) out.push({ kind: 'payee', value: p.value, source: worse(classifyAs(index, { kind: 'party', as: p.kind }, p.value), inherited[p.pointer]) });
  return out;
}

/** The less trusted of two sources (an absent one does not count). */
function worse(a: ValueSource, b: ValueSource | undefined): ValueSource {
  return b !== undefined && RANK[b] < RANK[a] ? b : a;
}

/**
 * The sources of the arguments a descriptor declares as amounts, recipients, payees, hosts and paths,
 * each value judged as its kind (a pointer holding several recipients: its least trusted one),
 * never better than a source already recorded for the pointer (`inherited`: a capability call's
 * values from its tool's arguments). A declared amount in minor units is judged as the amount it
 * stands for, in the currency the call states.
 */
function typedSourcesOf(effects: CallEffects, index: ProvenanceIndex, inherited: Record<string, ValueSource>, present: Record<string, ValueSource>): Record<string, ValueSource> {
  const out: Record<string, ValueSource> = {};
  const put = (pointer: string, source: ValueSource) => {
    out[pointer] = worse(worse(source, out[pointer]), inherited[pointer]);
  };
  for (const a of effects.amounts) put(a.pointer, classifyAs(index, { kind: 'amount', ...(a.currency === undefined ? {} : { currency: a.currency }) }, a.value));
  for (const r of effects.recipients) put(r.pointer, classifyAs(index, { kind: 'party', as: r.kind }, r.value));
  for (const p of effects.payees) put(p.pointer, classifyAs(index, { kind: 'party', as: p.kind }, p.value));
  for (const h of effects.hosts) put(h.pointer, classifyAs(index, { kind: 'host' }, h.host));
  // A path the descriptor fills in by default (`fs.list` of the workspace) is no value of the agent's.
  for (const p of effects.paths) if (present[p.pointer] !== undefined) put(p.pointer, classifyAs(index, { kind: 'path' }, p.path));
  return out;
}

function resourcesOf(tool: string, args: Record<string, unknown>) {
  const resources = { paths: [] as string[], hosts: [] as string[], databases: [] as string[] };
  if (tool.startsWith('spawn:')) return resources;
  try {
    for (const scope of scopeOfCall(tool, args)) {
      const parsed = parseScope(scope);
      if (parsed.database !== undefined) resources.databases.push(parsed.database);
    }
  } catch {
    // Arguments that name no valid resource are rejected when the tool runs.
  }
  return resources;
}

/** The provenance index of a task's decisions: user values (root's for a sub-agent), trusted outputs and atoms, other outputs. */
export function provenanceIndexOf(context: Pick<PolicyRequestContext, 'task' | 'seed' | 'priorOutputs' | 'trustedOutputs' | 'priorOutputIndexes'>): ProvenanceIndex {
  const user = context.seed?.userTexts ?? userValuesOf(context.task);
  return buildProvenanceIndex({
    intent: user[0] ?? '',
    taskValues: user.slice(1),
    trusted: context.trustedOutputs ?? [],
    trustedAtoms: context.seed?.trustedAtoms ?? [],
    toolOutputs: context.priorOutputs,
    ...(context.priorOutputIndexes === undefined ? {} : { toolOutputIndexes: context.priorOutputIndexes }),
  });
}

export interface RequestParts {
  tool: string;
  args: Record<string, unknown>;
  descriptor?: ToolDescriptor;
  agent: PolicyRequest['agent'];
  now: string;
  index: ProvenanceIndex;
  /** Sources already known for argument pointers (a capability call's values inherited from its tool's arguments). */
  argSources?: Record<string, ValueSource>;
  /** Measured where the call is applied; replaces the matching pending facts. */
  measured?: ToolEffect;
  via?: string;
  /** Payments made so far in the task (policy state `paid`). */
  paid?: readonly string[];
}

const RANK: Readonly<Record<ValueSource, number>> = { 'tool-output': 0, literal: 1, trusted: 2, user: 3 };

/**
 * A payment the user gave binds once per task: an amount bound to the user's (or trusted) words
 * whose payment (same payee, amount and currency) was already made is judged `literal`, so
 * `never pay an amount the user did not give` holds the repeat ("payment failed, retry") for a
 * human. A payment that failed is not counted (policy-state.ts `paymentKeysOf`).
 */
function spendGivenPayments(effects: CallEffects, provenance: Record<string, ValueSource>, paid: readonly string[]): void {
  if (paid.length === 0) return;
  const done = new Set(paid);
  for (const a of effects.amounts) {
    const source = provenance[a.pointer];
    if (source !== 'user' && source !== 'trusted') continue;
    if (paymentKeysOf({ amounts: [a], payees: effects.payees }).some((k) => done.has(k))) provenance[a.pointer] = 'literal';
  }
}

/** A validated policy request from its parts (see `buildPolicyRequest` for a step of a task). */
export function policyRequestOf(parts: RequestParts): PolicyRequest {
  const { tool, args, descriptor } = parts;
  const provenance = { ...classifyArguments(args, parts.index), ...(parts.argSources ?? {}) };
  let effect: ToolEffect | undefined;
  let destinations: PolicyRequest['destinations'] = [];
  if (descriptor !== undefined) {
    const effects = callEffectsOf(descriptor, args);
    effect = declaredEffectOf(descriptor, args, effects);
    // Declared amounts, recipients, payees, hosts and paths bind only to values the user gave as that kind.
    Object.assign(provenance, typedSourcesOf(effects, parts.index, parts.argSources ?? {}, provenance));
    spendGivenPayments(effects, provenance, parts.paid ?? []);
    destinations = destinationsOf(effects, parts.argSources ?? {}, parts.index);
  }
  if (parts.measured !== undefined) {
    const measuredKeys = Object.keys(parts.measured);
    const pending = (effect?.pending ?? []).filter((f) => !measuredFacts(parts.measured as ToolEffect).includes(f));
    effect = { ...(effect ?? {}), ...parts.measured };
    if (pending.length > 0) effect.pending = pending;
    else delete effect.pending;
    if (measuredKeys.length === 0) effect = effect ?? {};
  }
  return parsePolicyRequest({
    tool,
    ...(descriptor === undefined ? {} : { descriptor: toolSummaryOf(descriptor) }),
    ...(parts.via === undefined ? {} : { via: parts.via }),
    destinations,
    args,
    resources: resourcesOf(tool, args),
    agent: parts.agent,
    ...(effect === undefined ? {} : { effect }),
    provenance,
    now: parts.now,
  });
}

/** The facts a measured effect settles. */
function measuredFacts(effect: ToolEffect): PendingFact[] {
  const facts: PendingFact[] = [];
  if (effect.rowsChanged !== undefined || effect.rowsByOperation !== undefined) facts.push('rows', 'operation');
  if (effect.tables !== undefined || effect.tablesRead !== undefined) facts.push('tables');
  if (effect.paths !== undefined || effect.path !== undefined) facts.push('path');
  if (effect.urls !== undefined || effect.host !== undefined || effect.hosts !== undefined) facts.push('host', 'url');
  if (effect.method !== undefined || effect.urls !== undefined) facts.push('method');
  if (effect.bytes !== undefined) facts.push('bytes');
  if (effect.files !== undefined) facts.push('files');
  return facts;
}

/** The request for a proposed step of a task (before the call), or a recorded one (a backtest). */
export function buildPolicyRequest(context: PolicyRequestContext): PolicyRequest {
  const descriptor = context.tool.startsWith('spawn:') ? undefined : resolveTool(context.task, context.tool);
  return policyRequestOf({
    tool: context.tool,
    args: context.args,
    ...(descriptor === undefined ? {} : { descriptor }),
    agent: { name: context.task.agent.name, depth: context.depth, chain: context.chain, id: context.workflowId },
    now: context.now,
    index: context.provenanceIndex ?? provenanceIndexOf(context),
    ...(context.effect === undefined ? {} : { measured: context.effect }),
    ...(context.state?.paid === undefined ? {} : { paid: context.state.paid }),
  });
}

/** The URL's host, for callers that only have the request module. */
export { hostOfUrl };
