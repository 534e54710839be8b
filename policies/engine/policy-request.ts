/**
 * What the policy engine sees of a proposed action (`PolicyRequest`), what it answers
 * (`PolicyDecision`) and what the workflow reports after running it (`ExecutionOutcome`).
 *
 * Invariant: quantities a rule limits are taken from what Warden measured (`effect`), never from
 * what the agent says it will do. Values a tool acts on verbatim are read from its arguments
 * through the tool's descriptor (the recipients, payees, amounts, URLs, hosts and paths it
 * declares, tools/call-effects.ts); rows, operations and tables of SQL are measured by the broker
 * where the statement is applied, and are `pending` until then.
 */
import { z } from 'zod';
import { sharedOnce } from '../../workflows/shared-modules';
import { PolicyError } from '../../errors';
import { globMatch, legacyTagsOf, normalizeHost, normalizePath, WORKSPACE_ROOT, type EffectTag, type PathAccess } from './rule-syntax';
export type ValueSource = z.infer<typeof ValueSourceSchema>;

/** Sources a binding rule accepts as given by the user. */
export function isUserGiven(source: ValueSource | undefined): boolean {
  return source === 'user' || source === 'trusted';
}

export type ToolEffect = z.infer<typeof ToolEffectSchema>;
export type PendingFact = NonNullable<ToolEffect['pending']>[number];
export type ToolSummary = z.infer<typeof ToolSummarySchema>;
export type PolicyRequest = z.infer<typeof PolicyRequestSchema>;
export type PolicyRequestInput = z.input<typeof PolicyRequestSchema>;
export type MatchedRule = z.infer<typeof MatchedRuleSchema>;
export type PolicyDecision = z.infer<typeof PolicyDecisionSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('policies/engine/policy-request', () => {
  const PointedString = { pointer: z.string().optional() };
  /**
   * Where an argument value came from: the user's words or declared values (`user`), data the task
   * marks as the user's own and trusted (`trusted`), an earlier tool output from outside, where
   * injected instructions live (`tool-output`), or neither: the agent made it up (`literal`).
   */
  const ValueSourceSchema = z.enum(['user', 'trusted', 'tool-output', 'literal']);
  /**
   * The effect of a call as Warden measured it: read off the arguments through the tool's
   * descriptor before the call (recipients, payees, amounts, URLs, hosts, paths, SQL statements),
   * and measured where it is applied (rows and tables a statement changes, with cascades and
   * triggers). Unknown fields are kept and ignored; the legacy single-value fields (`amount`,
   * `host`, `path`, ...) still work for requests written by hand.
   */
  const ToolEffectSchema = z.looseObject({
    /** Rows changed in all, by the statement and the cascades and triggers it set off. */
    rowsChanged: z.number().int().min(0).optional(),
    /** Rows deleted, inserted and updated, over every table. */
    rowsByOperation: z.strictObject({ delete: z.number().int().min(0), insert: z.number().int().min(0), update: z.number().int().min(0) }).optional(),
    /** The statement kind sql.exec ran or would run (insert, update, delete), or `mixed`. */
    operation: z.string().optional(),
    /** Tables a statement changed (with cascades and triggers) and read, by the broker's measurement. */
    tables: z.array(z.strictObject({ table: z.string(), database: z.string().optional(), op: z.enum(['insert', 'update', 'delete']), rows: z.number().int().min(0) })).optional(),
    tablesRead: z.array(z.string()).optional(),
    /** sql.query: every result column was read as-is from a table column (no literal, expression or compound), as the broker measured it. */
    columnsFromTables: z.boolean().optional(),
    path: z.string().optional(),
    bytes: z.number().int().min(0).optional(),
    files: z.number().int().min(0).optional(),
    host: z.string().optional(),
    method: z.string().optional(),
    amount: z.number().min(0).optional(),
    currency: z.string().optional(),
    recipients: z.array(z.strictObject({ value: z.string(), kind: z.string(), ...PointedString })).optional(),
    payees: z.array(z.strictObject({ value: z.string(), kind: z.string(), ...PointedString })).optional(),
    amounts: z.array(z.strictObject({ value: z.number().min(0), currency: z.string().optional(), ...PointedString })).optional(),
    urls: z.array(z.strictObject({ url: z.string(), host: z.string(), method: z.string(), ...PointedString })).optional(),
    hosts: z.array(z.strictObject({ host: z.string(), ...PointedString })).optional(),
    paths: z.array(z.strictObject({ path: z.string(), access: z.enum(['read', 'write', 'list', 'delete']), ...PointedString })).optional(),
    sql: z.array(z.strictObject({ database: z.string(), statement: z.string(), access: z.enum(['read', 'write']), ...PointedString })).optional(),
    /** Declared effects whose arguments could not be read: rules about them apply (fail closed). */
    unreadable: z.array(z.string()).optional(),
    /**
     * The call can reach every path of the workspace without Warden seeing which (a program, an MCP
     * server that sees the workspace): `read`, or `write` (read, list, write and delete). Path rules
     * judge it as touching every path under /workspace.
     */
    workspace: z.enum(['read', 'write']).optional(),
    /**
     * Facts measured only where the call is applied (in the sandbox host): rules that need them are
     * decided there, with the measurement, not before the call.
     */
    pending: z.array(z.enum(['rows', 'operation', 'tables', 'host', 'path', 'method', 'bytes', 'files', 'url'])).optional(),
  });
  /** What the tool's descriptor says it is (tools/tool-descriptor.ts), as rules need it. */
  const ToolSummarySchema = z.strictObject({
    executor: z.enum(['builtin', 'isolate', 'process', 'mcp']),
    /** Built-in and isolate tools act only through host capabilities. */
    capabilityBound: z.boolean(),
    /** Everything a call can change stays in Warden's sandbox (a program; a stdio MCP server without hosts): not a destructive tool. */
    confined: z.boolean().optional(),
    capabilities: z.array(z.string()),
    families: z.array(z.string()),
    declared: z.boolean(),
    readOnly: z.boolean(),
    destructive: z.boolean(),
    openWorld: z.boolean(),
    undoable: z.boolean(),
    readsPrivate: z.boolean(),
    /** Declared kinds of effect (recipients, payees, amounts, urls, hosts, paths, sql), so rules know what the tool can do. */
    declares: z.array(z.string()),
  });
  /** A destination a call sends to, and where that value came from (flow rules). */
  const DestinationSchema = z.strictObject({
    kind: z.enum(['host', 'recipient', 'payee']),
    value: z.string(),
    source: ValueSourceSchema,
  });
  const PolicyAgentSchema = z.strictObject({
    name: z.string().min(1),
    /** 0 for the task the user started, 1 for its sub-agents, ... */
    depth: z.number().int().min(0),
    /** Names of the agents that delegated to this one, root first (empty for the root). */
    chain: z.array(z.string()).default([]),
    /** Unique id of this agent's run (its workflow id); keys its running totals. Defaults to chain/name. */
    id: z.string().min(1).optional(),
  });
  const PolicyRequestSchema = z.strictObject({
    /** Tool name, or `spawn:<sub-agent>` for spawning a sub-agent; a capability name for a call made from inside a tool. */
    tool: z.string().min(1),
    /** What the tool's descriptor says it is; absent for requests written by hand (the tool's name decides). */
    descriptor: ToolSummarySchema.optional(),
    /** For a capability call made from inside a tool: that tool's name. */
    via: z.string().optional(),
    /** Where the call's destinations (hosts, recipients, payees) came from. */
    destinations: z.array(DestinationSchema).default([]),
    args: z.record(z.string(), z.unknown()).default({}),
    /** Resources the action touches, as Warden resolved them from the arguments. */
    resources: z
      .strictObject({
        paths: z.array(z.string()).default([]),
        hosts: z.array(z.string()).default([]),
        databases: z.array(z.string()).default([]),
      })
      // a function: zod copies an object default only shallowly, and these schemas are shared by every run
    .default(() => ({ paths: [], hosts: [], databases: [] })),
    agent: PolicyAgentSchema,
    effect: ToolEffectSchema.optional(),
    /** Argument JSON pointer (relative to `args`, e.g. "/to") → where its value came from. */
    provenance: z.record(z.string(), ValueSourceSchema).default({}),
    /** The decision's clock (ISO 8601), injected so decisions replay deterministically. */
    now: z.iso.datetime({ offset: true }),
  });
  const MatchedRuleSchema = z.strictObject({
    id: z.string(),
    sentence: z.string(),
    effect: z.enum(['allow', 'deny', 'approval']),
    reason: z.string(),
    kind: z.enum(['cedar', 'stateful']),
  });
  /**
   * Deny beats approval beats allow; with no matching rule a (granted) action is allowed. Rules in
   * shadow mode never decide: what they would have decided is `shadow`.
   */
  const PolicyDecisionSchema = z.strictObject({
    decision: z.enum(['allow', 'deny', 'approval']),
    matched: z.array(MatchedRuleSchema),
    /** Reasons of the rules that decided, in words. */
    reasons: z.array(z.string()),
    /** What the shadow-mode rules would have decided, and which matched (recorded, never enforced). */
    shadow: z.strictObject({ decision: z.enum(['allow', 'deny', 'approval']), matched: z.array(MatchedRuleSchema) }).optional(),
  });
  /** What happened when the action ran (or did not): only executed actions count. */
  const ExecutionOutcomeSchema = z.strictObject({
    /** ok: ran and succeeded; error: ran and failed (counts as a call, changes nothing); denied: never ran. */
    status: z.enum(['ok', 'error', 'denied']),
    /** The effect the tool reported after running, when it differs from the declared one. */
    effect: ToolEffectSchema.optional(),
  });
  return { ValueSourceSchema, ToolEffectSchema, ToolSummarySchema, DestinationSchema, PolicyAgentSchema, PolicyRequestSchema, MatchedRuleSchema, PolicyDecisionSchema, ExecutionOutcomeSchema };
});

export const { ValueSourceSchema, ToolEffectSchema, ToolSummarySchema, DestinationSchema, PolicyAgentSchema, PolicyRequestSchema, MatchedRuleSchema, PolicyDecisionSchema, ExecutionOutcomeSchema } = schemas;
export type ExecutionOutcome = z.infer<typeof ExecutionOutcomeSchema>;

/** One path a call touches and how. */
export interface MeasuredPath {
  path: string;
  /** `undefined` for paths known only as resources (a legacy request). */
  access?: PathAccess;
  /** The call can touch every path under `path` (its whole workspace reach), not only `path`. */
  tree?: true;
}

/** The measurable facts of one request, as rules see them. */
export interface Measured {
  isSpawn: boolean;
  /** Effect tags of the call (rule-syntax.ts `EFFECT_TAGS`). */
  tags: EffectTag[];
  /** The same tags, for lookups. */
  tagSet: ReadonlySet<string>;
  rows?: number;
  rowsByOperation?: { delete: number; insert: number; update: number };
  operation?: string;
  amountCents?: number;
  currency?: string;
  files?: number;
  bytes?: number;
  paths: MeasuredPath[];
  hosts: string[];
  method?: string;
  /** A network call that may change something: a method other than GET/HEAD/OPTIONS, or a non-read-only tool. */
  networkWrite?: boolean;
  tables: { table: string; database?: string; op: 'insert' | 'update' | 'delete'; rows: number }[];
  tablesRead: string[];
  pending: Set<PendingFact>;
  /** Declared effects that could not be read from the arguments. */
  unreadable: string[];
  nowMs: number;
  minuteOfDay: number;
  /**
   * Set by the engine's rule index (rule-index.ts): a number naming what the index reads of the
   * request (spawn or tool, tool name, tags, measured facts, workspace reach). Two requests with
   * the same number agree on all of it, so answers that depend only on it are remembered under it.
   */
  signature?: number;
}

/** UTF-8 length without allocating (workflow code has no Buffer). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/** The effect tags of a request: from its descriptor and effect, else from the tool's name. */
export function tagsOf(request: PolicyRequest): EffectTag[] {
  const d = request.descriptor;
  if (d === undefined) return [...legacyTagsOf(request.tool)];
  const e = request.effect ?? {};
  const tags = new Set<EffectTag>(d.families as EffectTag[]);
  // Undeclared and not bounded by capabilities: could be anything.
  const anything = !d.declared && !d.capabilityBound;
  const caps = d.capabilities;
  const accesses = new Set<string>((e.paths ?? []).map((p) => p.access));
  for (const access of e.workspace === undefined ? [] : WORKSPACE_ACCESS[e.workspace]) accesses.add(access);
  const fsCaps = caps.filter((c) => c.startsWith('fs.'));
  if (anything || accesses.size > 0 || fsCaps.length > 0 || d.declares.includes('paths')) tags.add('file');
  for (const access of ['read', 'list', 'write', 'delete'] as const) {
    if (anything || accesses.has(access) || caps.includes(`fs.${access}`)) tags.add(`file-${access}`);
  }
  if (anything || (e.sql ?? []).length > 0 || caps.some((c) => c.startsWith('sql.')) || d.declares.includes('sql')) tags.add('database');
  if (anything || (e.sql ?? []).some((q) => q.access === 'write') || caps.includes('sql.exec') || (d.declares.includes('sql') && (e.sql ?? []).length === 0 && !d.readOnly)) tags.add('sql-write');
  if (tags.has('messaging')) {
    const kinds = (e.recipients ?? []).map((r) => r.kind);
    if (!d.declares.includes('recipients') || kinds.length === 0 || kinds.some((k) => k === 'email' || k === 'any')) tags.add('email');
  }
  // A program's or sandboxed server's reach is the sandbox: files in the task's overlay (path
  // rules, workspace reach) and the hosts granted; it is judged by those, not denied as destructive.
  if (d.destructive && !d.undoable && !d.capabilityBound && d.confined !== true) tags.add('destructive');
  if (d.readOnly) {
    // A tool that changes nothing pays and sends nothing, whatever family its data is about.
    // (Except the files it can reach unseen: a server's hint does not bound what its process writes.)
    for (const tag of ['payment', 'messaging', 'email', 'sql-write', ...(e.workspace === 'write' ? [] : (['file-write', 'file-delete'] as const))] as const) tags.delete(tag);
    tags.add('read-only');
  }
  return [...tags];
}

/** The facts rules decide on; `effect` overrides what the request declared (for recording outcomes). */
export function measureRequest(request: PolicyRequest, effect: ToolEffect | undefined = request.effect): Measured {
  const { tool, args } = request;
  const e = effect ?? {};
  const nowMs = parseNow(request.now);
  const tags = tagsOf(effect === request.effect ? request : { ...request, effect });
  const measured: Measured = {
    isSpawn: tool.startsWith('spawn:'),
    tags,
    tagSet: new Set(tags),
    paths: [],
    hosts: [],
    tables: e.tables ?? [],
    tablesRead: (e.tablesRead ?? []).map((t) => t.toLowerCase()),
    pending: new Set(e.pending ?? []),
    unreadable: e.unreadable ?? [],
    nowMs,
    minuteOfDay: Math.floor((((nowMs % 86_400_000) + 86_400_000) % 86_400_000) / 60_000),
  };
  const legacy = request.descriptor === undefined;
  if (e.rowsChanged !== undefined) measured.rows = e.rowsChanged;
  if (e.rowsByOperation !== undefined) measured.rowsByOperation = e.rowsByOperation;
  if (e.operation !== undefined) measured.operation = e.operation.toLowerCase();
  if (e.amounts !== undefined && e.amounts.length > 0) {
    measured.amountCents = e.amounts.reduce((sum, a) => sum + Math.round(a.value * 100), 0);
    const currencies = [...new Set(e.amounts.flatMap((a) => (a.currency === undefined ? [] : [a.currency.toUpperCase()])))];
    if (currencies.length === 1) measured.currency = currencies[0];
  } else if (e.amount !== undefined) measured.amountCents = Math.round(e.amount * 100);
  if (e.currency !== undefined) measured.currency = e.currency.toUpperCase();

  const writes = (e.paths ?? []).filter((p) => p.access === 'write');
  if (e.files !== undefined) measured.files = e.files;
  else if (writes.length > 0) measured.files = writes.length;
  else if (legacy && tool === 'fs.write') measured.files = 1;
  if (e.bytes !== undefined) measured.bytes = e.bytes;
  else if ((tool === 'fs.write' || (request.descriptor !== undefined && writes.length > 0)) && typeof args.content === 'string') measured.bytes = utf8Length(args.content);

  const raw: { path: string; access?: PathAccess }[] = [];
  for (const p of e.paths ?? []) raw.push({ path: p.path, access: p.access });
  if (e.path !== undefined) raw.push({ path: e.path, ...accessOf(legacyAccess(tool)) });
  if (legacy && e.path === undefined && tool.startsWith('fs.')) {
    if (typeof args.path === 'string') raw.push({ path: args.path, ...accessOf(legacyAccess(tool)) });
    else if (tool === 'fs.list' && args.path === undefined) raw.push({ path: '.', access: 'list' });
  }
  if (legacy) for (const p of request.resources.paths) raw.push({ path: p, ...accessOf(legacyAccess(tool)) });
  const seenPaths = new Set<string>();
  if (e.workspace !== undefined) {
    for (const access of WORKSPACE_ACCESS[e.workspace]) {
      seenPaths.add(`tree:${access}`);
      measured.paths.push({ path: WORKSPACE_ROOT, access, tree: true });
    }
  }
  for (const p of raw) {
    const path = normalizePath(p.path);
    const key = `${p.access ?? ''}:${path}`;
    if (seenPaths.has(key)) continue;
    seenPaths.add(key);
    measured.paths.push(p.access === undefined ? { path } : { path, access: p.access });
  }

  const hosts = new Set<string>();
  for (const u of e.urls ?? []) hosts.add(normalizeHost(u.host));
  for (const h of e.hosts ?? []) hosts.add(normalizeHost(h.host));
  if (e.host !== undefined) hosts.add(normalizeHost(e.host));
  else if (legacy && typeof args.url === 'string') {
    const host = urlHost(args.url);
    if (host !== undefined) hosts.add(normalizeHost(host));
  }
  for (const h of request.resources.hosts) hosts.add(normalizeHost(h));
  measured.hosts = [...hosts];

  const methods = (e.urls ?? []).map((u) => u.method.toUpperCase());
  if (e.method !== undefined) measured.method = e.method.toUpperCase();
  else if (methods.length > 0) measured.method = methods.find((m) => !READ_METHODS.includes(m)) ?? methods[0];
  else if (tool === 'http.fetch') measured.method = typeof args.method === 'string' ? args.method.toUpperCase() : 'GET';
  if (measured.method !== undefined) measured.networkWrite = !READ_METHODS.includes(measured.method);
  else if (request.descriptor !== undefined && measured.tags.includes('network') && !measured.pending.has('method')) measured.networkWrite = !request.descriptor.readOnly;
  return measured;
}

const WORKSPACE_ACCESS: Readonly<Record<'read' | 'write', readonly PathAccess[]>> = { read: ['read', 'list'], write: ['read', 'list', 'write', 'delete'] };

function accessOf(access: PathAccess | undefined): { access?: PathAccess } {
  return access === undefined ? {} : { access };
}

/** The host of an http(s) URL, read without a full URL parse (the authority between "//" and the path). */
function urlHost(url: string): string | undefined {
  const match = /^https?:\/\/(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)/i.exec(url);
  return match === null || match[1] === '' ? undefined : (match[1] as string);
}

let lastNow = '';
let lastNowMs = Number.NaN;

/** `Date.parse` of the request clock, remembered for the last value (decisions come in bursts at one time). */
function parseNow(now: string): number {
  if (now !== lastNow) {
    lastNowMs = Date.parse(now);
    lastNow = now;
  }
  return lastNowMs;
}

function legacyAccess(tool: string): PathAccess | undefined {
  if (tool === 'fs.read') return 'read';
  if (tool === 'fs.write') return 'write';
  if (tool === 'fs.list') return 'list';
  if (['fs.delete', 'fs.remove', 'fs.rm'].includes(tool)) return 'delete';
  return undefined;
}

/** Whether the tool name matches a glob (re-exported for callers that only import the request module). */
export { globMatch };

const parsedRequests = new WeakSet<object>();

/**
 * Validates a request (`PolicyRequestSchema`), once: a request this function returned is
 * recognised and not parsed again. Throws PolicyError ERR_POLICY_REQUEST_INVALID naming each problem.
 */
export function parsePolicyRequest(input: PolicyRequestInput): PolicyRequest {
  if (typeof input === 'object' && input !== null && parsedRequests.has(input)) return input as PolicyRequest;
  const parsed = PolicyRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new PolicyError('ERR_POLICY_REQUEST_INVALID', `invalid policy request: ${issues.map((i) => `${i.path || '(top level)'}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  // Frozen, so what was validated is what is decided on.
  const request = deepFreezeRequest(parsed.data);
  parsedRequests.add(request);
  return request;
}

function deepFreezeRequest<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreezeRequest(child);
  }
  return value;
}

/** Stable key of an agent's running totals: its run id, else its delegation chain and name. */
export function agentKey(agent: PolicyRequest['agent']): string {
  return agent.id ?? [...agent.chain, agent.name].join('/');
}
