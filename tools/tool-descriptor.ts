/**
 * The tool descriptor: everything Warden knows about one tool, in one frozen value that every
 * guard reads (grants, the policy request, compensation, custody attributes, the approval
 * listing, the model's tool list). One `defineTool({...})` per tool, whatever runs it:
 *
 *   executor.kind   what runs a call                                      built by
 *   `builtin`       the sandbox host: a fixed isolate source calling one   tools/builtin-tools.ts
 *                   host capability (fs, http, sql)
 *   `isolate`       a user-defined JavaScript body in a fresh isolate,     tools/user-tools.ts
 *                   reaching the host only through its capabilities
 *   `process`       a program run in the OS sandbox (issue 11)             (executor not here)
 *   `mcp`           a tool of an MCP server (issue 11)                     (executor not here)
 *
 * Declared effects say which arguments carry what a call does (recipients, payees, amounts,
 * URLs, hosts, paths, SQL) and to which families it belongs (payment, messaging, network,
 * storage, code execution); annotations use MCP's vocabulary (`readOnlyHint`, `destructiveHint`,
 * `idempotentHint`, `openWorldHint`, https://modelcontextprotocol.io/specification/2025-06-18/server/tools).
 *
 * Invariants:
 *  - fail closed: a tool that declares nothing is destructive and open-world (MCP's defaults),
 *    in every effect family, its output untrusted and private; `defineTool` records in
 *    `profile.declared` whether that default applies, and the task loader reports it;
 *  - a tool whose executor can only act through host capabilities (`builtin`, `isolate`) can do
 *    no more than those capabilities allow, so its profile is narrowed to them (a tool without
 *    capabilities is pure computation: read-only and closed-world whatever it declares);
 *  - a descriptor is deeply frozen: nothing downstream can change what a tool is.
 *
 * Pure (zod only): workflow code may import this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';

/** Host capabilities a sandboxed tool can be handed; each is also the name of the built-in that exposes it alone. */
export const CAPABILITY_NAMES = ['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'sql.exec'] as const;
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

/** Effect families: what kind of thing a call does to the world, independent of the tool's name. */
export const EFFECT_FAMILIES = ['payment', 'messaging', 'network', 'storage', 'code-execution'] as const;
export type EffectFamily = (typeof EFFECT_FAMILIES)[number];

/** Kinds of message recipient; `any` when the tool does not say. */
export const RECIPIENT_KINDS = ['email', 'chat-user', 'channel', 'phone', 'any'] as const;

/** Kinds of payee identifier; `any` when the tool does not say. */
export const PAYEE_KINDS = ['iban', 'account', 'email', 'phone', 'any'] as const;

export const PATH_ACCESS = ['read', 'write', 'list', 'delete'] as const;

/** Where a tool's output comes from, for provenance (which values may steer later calls) and flow rules. */
export const READ_SOURCES = ['workspace', 'database', 'mail', 'messages', 'web', 'documents', 'calendar', 'contacts', 'other'] as const;
export type DeclaredEffectsInput = z.input<typeof DeclaredEffectsSchema>;
export type DeclaredEffects = z.infer<typeof DeclaredEffectsSchema>;
export type ToolAnnotations = z.infer<typeof ToolAnnotationsSchema>;
export type Executor = z.infer<typeof ExecutorSchema>;
export type ExecutorKind = Executor['kind'];
export const EXECUTOR_KINDS: readonly ExecutorKind[] = ['builtin', 'isolate', 'process', 'mcp'];
export type UndoMechanism = z.infer<typeof UndoMechanismSchema>;
export type ToolDefinition = z.input<typeof ToolDefinitionSchema>;
export type EffectProfile = z.infer<typeof EffectProfileSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh. Defaults that hold objects or arrays
 * are shallow-copied by zod on every parse (nothing nested), so no parse hands out an object
 * another parse (another run) also gets.
 */
const schemas = sharedOnce('tools/tool-descriptor', () => {
  // ---------------------------------------------------------------------------------------------
  // Names

  /** Tool names: lower-case words joined by dots, underscores or dashes (`fs.read`, `summarize`). */
  const ToolNameSchema = z
    .string()
    .regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/, 'a tool name: lower-case letters, digits, "_" or "-", parts joined by "." (e.g. "fs.read")');
  const CapabilityNameSchema = z.enum(CAPABILITY_NAMES, { error: `a capability: ${CAPABILITY_NAMES.join(', ')}` });
  const EffectFamilySchema = z.enum(EFFECT_FAMILIES, { error: `an effect family: ${EFFECT_FAMILIES.join(', ')}` });
  // ---------------------------------------------------------------------------------------------
  // Argument references

  /**
   * Which argument holds a value: a JSON pointer into the arguments (RFC 6901) where a `*` segment
   * stands for every element of an array or every value of an object (`/to`, `/recipients/*`,
   * `/payment/iban`), or a bare top-level name (`to`), read as `/to`.
   */
  const ArgRefSchema = z
    .string()
    .min(1)
    .max(256)
    .regex(/^(\/[^/]*)+$|^[A-Za-z_$][A-Za-z0-9_$-]*$/, 'an argument name ("to") or a JSON pointer ("/payment/iban", "/recipients/*")')
    .transform((ref) => (ref.startsWith('/') ? ref : `/${ref}`));
  const RecipientRefSchema = z.union([
    ArgRefSchema.transform((arg) => ({ arg, kind: 'any' as const })),
    z.strictObject({ arg: ArgRefSchema, kind: z.enum(RECIPIENT_KINDS).default('any') }),
  ]);
  const PayeeRefSchema = z.union([
    ArgRefSchema.transform((arg) => ({ arg, kind: 'any' as const })),
    z.strictObject({ arg: ArgRefSchema, kind: z.enum(PAYEE_KINDS).default('any') }),
  ]);
  /** ISO 4217 code, upper case. */
  const CurrencyCodeSchema = z.string().regex(/^[A-Za-z]{3}$/, 'an ISO 4217 currency code ("USD")').transform((c) => c.toUpperCase());
  /**
   * An amount a call moves: the argument holding it, and its currency (a fixed code, or the
   * argument holding the code). `minorUnits` when the argument counts cents rather than dollars.
   */
  const AmountRefSchema = z.union([
    ArgRefSchema.transform((arg): { arg: string; currency?: string | { arg: string }; minorUnits: boolean } => ({ arg, minorUnits: false })),
    z.strictObject({
      arg: ArgRefSchema,
      currency: z.union([CurrencyCodeSchema, z.strictObject({ arg: ArgRefSchema })]).optional(),
      minorUnits: z.boolean().default(false),
    }),
  ]);
  /** A URL argument, and optionally the argument holding the HTTP method (a missing method reads as GET). */
  const UrlRefSchema = z.union([
    ArgRefSchema.transform((arg): { arg: string; method?: string } => ({ arg })),
    z.strictObject({ arg: ArgRefSchema, method: ArgRefSchema.optional() }),
  ]);
  /** A workspace path argument and what the call does there; `default` when the argument may be left out. */
  const PathRefSchema = z.strictObject({ arg: ArgRefSchema, access: z.enum(PATH_ACCESS), default: z.string().optional() });
  /** A SQL statement argument, the database it runs on, its parameters, and whether it reads or writes. */
  const SqlRefSchema = z.strictObject({
    database: ArgRefSchema,
    statement: ArgRefSchema,
    params: ArgRefSchema.optional(),
    access: z.enum(['read', 'write']),
  });
  const ReadsSchema = z.strictObject({
    source: z.enum(READ_SOURCES),
    /** True when the output holds the user's private data (files, rows, mail); flow rules track where it goes. */
    private: z.boolean(),
  });
  /** What a tool declares it does, by argument. Everything defaults to "nothing of that kind". */
  const DeclaredEffectsSchema = z.strictObject({
    families: z.array(EffectFamilySchema).default([]),
    /** Who receives a message: e-mail addresses, chat users, channels, phone numbers. */
    recipients: z.array(RecipientRefSchema).default([]),
    /** Who receives money. */
    payees: z.array(PayeeRefSchema).default([]),
    amounts: z.array(AmountRefSchema).default([]),
    /** URLs the call requests (their hosts are reached). */
    urls: z.array(UrlRefSchema).default([]),
    /** Bare host names the call reaches. */
    hosts: z.array(ArgRefSchema).default([]),
    /** Workspace paths the call reads, writes, lists or deletes. */
    paths: z.array(PathRefSchema).default([]),
    sql: z.array(SqlRefSchema).default([]),
    /** What the output holds; absent: unknown (untrusted, and private when the tool may read anything). */
    reads: ReadsSchema.optional(),
  });
  /** MCP tool annotations (hints about behaviour, as the MCP specification names them). */
  const ToolAnnotationsSchema = z.strictObject({
    title: z.string().optional(),
    /** The tool does not modify its environment. */
    readOnlyHint: z.boolean().optional(),
    /** A modifying tool may perform destructive (not only additive) updates. */
    destructiveHint: z.boolean().optional(),
    /** Calling it again with the same arguments has no further effect. */
    idempotentHint: z.boolean().optional(),
    /** It interacts with an open world of external entities (the web, other people). */
    openWorldHint: z.boolean().optional(),
  });
  // ---------------------------------------------------------------------------------------------
  // Executors and compensation

  /** The fixed source of a built-in runs in an isolate and calls exactly its one capability. */
  const BuiltinExecutorSchema = z.strictObject({ kind: z.literal('builtin'), capability: CapabilityNameSchema, source: z.string().min(1) });
  /** A user-defined JavaScript body: `async function (input, warden)` returning a JSON value. */
  const IsolateExecutorSchema = z.strictObject({ kind: z.literal('isolate'), source: z.string().min(1) });
  /** A program run in the OS sandbox. Its fields beyond `program` belong to the process executor (issue 11). */
  const ProcessExecutorSchema = z.looseObject({ kind: z.literal('process'), program: z.string().min(1) });
  /** A tool served by an MCP server the task declares. Fields beyond these belong to the MCP executor (issue 11). */
  const McpExecutorSchema = z.looseObject({ kind: z.literal('mcp'), server: z.string().min(1), tool: z.string().min(1) });
  const ExecutorSchema = z.discriminatedUnion('kind', [BuiltinExecutorSchema, IsolateExecutorSchema, ProcessExecutorSchema, McpExecutorSchema]);
  /**
   * How a call's effects are undone when the task does not complete:
   *  - `overlay`: its file writes sit in the task's copy-on-write overlay, discarded whole;
   *  - `sql-journal`: its SQL changes are journaled by call id and undone from the journal;
   *  - `tool`: a declared (and granted) tool undoes it, given the original call;
   *  - `impossible`: some effect cannot be taken back (an HTTP request, a sent message), `why` says.
   * An empty list means there is nothing to undo (a read-only tool).
   */
  const UndoMechanismSchema = z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('overlay') }),
    z.strictObject({ kind: z.literal('sql-journal') }),
    z.strictObject({ kind: z.literal('tool'), tool: ToolNameSchema }),
    z.strictObject({ kind: z.literal('impossible'), why: z.string().min(1) }),
  ]);
  // ---------------------------------------------------------------------------------------------
  // The descriptor

  /** What `defineTool` takes. Only name, description, input schema and executor are required. */
  const ToolDefinitionSchema = z.strictObject({
    name: ToolNameSchema,
    description: z.string().min(1),
    /** JSON Schema of the arguments (checked before anything runs). */
    inputSchema: z.record(z.string(), z.unknown()).default({ type: 'object' }),
    executor: ExecutorSchema,
    /** Host capabilities a call receives, narrowed to what the task grants. Only `builtin` and `isolate` tools have any. */
    capabilities: z.array(CapabilityNameSchema).default([]),
    /** Absent: nothing declared, so the tool is treated as doing anything (fail closed). */
    effects: DeclaredEffectsSchema.optional(),
    annotations: ToolAnnotationsSchema.default({}),
    /** A declared tool that undoes this one; otherwise the undo follows from the capabilities (isolate tools) or is impossible. */
    compensate: ToolNameSchema.optional(),
    /** Per-call limits, at most the task's. */
    timeout: z.string().regex(/^\d+(ms|s|m|h)$/, 'a duration such as "250ms", "30s", "5m" or "1h"').optional(),
    memoryMb: z.number().int().min(8).max(1024).optional(),
  });
  /**
   * What the guards decide on, derived once from the declaration and the executor: the resolved
   * MCP hints (declared values, MCP's defaults for the rest, narrowed by capabilities), the
   * families, whether the output is trusted material and private, and how the tool is undone.
   */
  const EffectProfileSchema = z.strictObject({
    /** False when the tool declared neither effects nor annotations: every default is the fail-closed one. */
    declared: z.boolean(),
    readOnly: z.boolean(),
    destructive: z.boolean(),
    idempotent: z.boolean(),
    openWorld: z.boolean(),
    /** Families the tool belongs to; an undeclared tool that can act on the world belongs to all of them. */
    families: z.array(EffectFamilySchema),
    /** Its output holds private data (flow rules track where that goes). */
    readsPrivate: z.boolean(),
    /** What its output is, for provenance: `unknown` unless declared. */
    readsSource: z.enum([...READ_SOURCES, 'unknown']),
    undo: z.array(UndoMechanismSchema),
    /** False when some effect of a call may not be undone. */
    undoable: z.boolean(),
  });
  const ToolDescriptorSchema = z.strictObject({
    name: ToolNameSchema,
    description: z.string(),
    inputSchema: z.record(z.string(), z.unknown()),
    executor: ExecutorSchema,
    capabilities: z.array(CapabilityNameSchema),
    /** As declared (every list present, possibly empty); `profile.declared` says whether anything was. */
    effects: DeclaredEffectsSchema,
    annotations: ToolAnnotationsSchema,
    compensate: ToolNameSchema.optional(),
    timeout: z.string().optional(),
    memoryMb: z.number().int().optional(),
    profile: EffectProfileSchema,
  });
  return { ToolNameSchema, CapabilityNameSchema, EffectFamilySchema, ArgRefSchema, RecipientRefSchema, PayeeRefSchema, CurrencyCodeSchema, AmountRefSchema, UrlRefSchema, PathRefSchema, SqlRefSchema, ReadsSchema, DeclaredEffectsSchema, ToolAnnotationsSchema, BuiltinExecutorSchema, IsolateExecutorSchema, ProcessExecutorSchema, McpExecutorSchema, ExecutorSchema, UndoMechanismSchema, ToolDefinitionSchema, EffectProfileSchema, ToolDescriptorSchema };
});

export const { ToolNameSchema, CapabilityNameSchema, EffectFamilySchema, ArgRefSchema, RecipientRefSchema, PayeeRefSchema, CurrencyCodeSchema, AmountRefSchema, UrlRefSchema, PathRefSchema, SqlRefSchema, ReadsSchema, DeclaredEffectsSchema, ToolAnnotationsSchema, BuiltinExecutorSchema, IsolateExecutorSchema, ProcessExecutorSchema, McpExecutorSchema, ExecutorSchema, UndoMechanismSchema, ToolDefinitionSchema, EffectProfileSchema, ToolDescriptorSchema } = schemas;
export type ToolDescriptor = z.infer<typeof ToolDescriptorSchema>;

/** What a call through each capability can do: its families, whether it writes, what its output holds, how it is undone. */
const CAPABILITY_FACTS: Readonly<
  Record<CapabilityName, { families: readonly EffectFamily[]; writes: boolean; openWorld: boolean; reads?: (typeof READ_SOURCES)[number]; undo?: UndoMechanism }>
> = {
  'fs.read': { families: ['storage'], writes: false, openWorld: false, reads: 'workspace' },
  'fs.list': { families: ['storage'], writes: false, openWorld: false, reads: 'workspace' },
  'fs.write': { families: ['storage'], writes: true, openWorld: false, undo: { kind: 'overlay' } },
  'sql.query': { families: ['storage'], writes: false, openWorld: false, reads: 'database' },
  'sql.exec': { families: ['storage'], writes: true, openWorld: false, undo: { kind: 'sql-journal' } },
  // A request can carry a payment or a message to any service: an HTTP capability could be either.
  'http.fetch': {
    families: ['network', 'payment', 'messaging'],
    writes: true,
    openWorld: true,
    reads: 'web',
    undo: { kind: 'impossible', why: 'an HTTP request that reached a server cannot be taken back' },
  },
};
/** Families a capability certainly has (what it may also be stays with `families` above). */
const CERTAIN_FAMILY: Readonly<Record<CapabilityName, EffectFamily>> = {
  'fs.read': 'storage',
  'fs.list': 'storage',
  'fs.write': 'storage',
  'sql.query': 'storage',
  'sql.exec': 'storage',
  'http.fetch': 'network',
};

/** True when the executor can act only through host capabilities (so they bound what it does). */
export function isCapabilityBound(executor: Executor): boolean {
  return executor.kind === 'builtin' || executor.kind === 'isolate';
}

/**
 * How much of the task's workspace a call can reach without Warden seeing which paths: `none` for
 * tools acting only through host capabilities (each capability call names its path, and is
 * decided in the sandbox host) and for MCP servers that do not see the workspace (remote ones, or
 * `workspace: none`); `read` for an MCP server given it read-only; `write` for a program
 * (`process`) and for an MCP server on the task's overlay, or whose view of it is not recorded
 * (fail closed). Path rules judge a call that reaches the workspace as touching every path of it.
 */
export function workspaceReachOf(descriptor: Pick<ToolDescriptor, 'executor'>): 'none' | 'read' | 'write' {
  const executor = descriptor.executor;
  if (isCapabilityBound(executor)) return 'none';
  if (executor.kind === 'mcp') {
    const view = (executor as { workspace?: unknown }).workspace;
    if (view === 'none') return 'none';
    if (view === 'read-only') return 'read';
  }
  return 'write';
}

/**
 * True when everything a call can change stays in Warden's sandbox: a program (`process`: the
 * task's overlay, and only hosts the task grants it, judged by host rules), or a stdio MCP server
 * recorded as having no egress (no hosts). Such a tool is judged by paths, hosts and grants, not
 * as destructive. Remote MCP servers, and any whose egress is not recorded, are not confined.
 */
export function isSandboxConfined(descriptor: Pick<ToolDescriptor, 'executor'>): boolean {
  const executor = descriptor.executor;
  if (executor.kind === 'process') return true;
  return executor.kind === 'mcp' && (executor as { egress?: unknown }).egress === false;
}

type ParsedDefinition = z.infer<typeof ToolDefinitionSchema>;

/** Families named, plus those implied by the kinds of effect declared (a payee makes a payment tool). */
function declaredFamilies(effects: DeclaredEffects): Set<EffectFamily> {
  const families = new Set<EffectFamily>(effects.families);
  if (effects.payees.length > 0 || effects.amounts.length > 0) families.add('payment');
  if (effects.recipients.length > 0) families.add('messaging');
  if (effects.urls.length > 0 || effects.hosts.length > 0) families.add('network');
  if (effects.paths.length > 0 || effects.sql.length > 0) families.add('storage');
  return families;
}

function effectProfile(definition: ParsedDefinition): EffectProfile {
  const a = definition.annotations;
  const effects = definition.effects;
  const declared = effects !== undefined || a.readOnlyHint !== undefined || a.destructiveHint !== undefined || a.openWorldHint !== undefined;
  const named = effects === undefined ? new Set<EffectFamily>() : declaredFamilies(effects);
  let readOnly: boolean;
  let openWorld: boolean;
  let families: Set<EffectFamily>;
  let readsSource: EffectProfile['readsSource'];
  let readsPrivate: boolean;
  const undo: UndoMechanism[] = [];

  if (isCapabilityBound(definition.executor)) {
    // The capabilities are what the code can do, whatever it declares: hints cannot widen or
    // narrow them, declared families only pick among what the capabilities make possible.
    const caps = definition.capabilities.map((c) => CAPABILITY_FACTS[c]);
    const possible = new Set(caps.flatMap((c) => c.families));
    const certain = new Set(definition.capabilities.map((c) => CERTAIN_FAMILY[c]));
    readOnly = !caps.some((c) => c.writes);
    openWorld = caps.some((c) => c.openWorld);
    families = new Set([...(declared ? [...named, ...certain] : possible)].filter((f) => possible.has(f)));
    const sources = [...new Set(caps.flatMap((c) => (c.reads === undefined ? [] : [c.reads])))];
    readsSource = effects?.reads?.source ?? (sources.length === 1 ? (sources[0] as EffectProfile['readsSource']) : sources.length === 0 ? 'other' : 'unknown');
    // Without a capability that reads, the output is computed from the input alone.
    readsPrivate = effects?.reads?.private ?? sources.some((s) => s !== 'web');
    if (definition.compensate === undefined) for (const c of caps) if (c.undo !== undefined && !undo.some((u) => u.kind === c.undo!.kind)) undo.push(c.undo);
  } else {
    // MCP's defaults for what is not declared: may write, open world; unknown output.
    readOnly = a.readOnlyHint ?? false;
    openWorld = a.openWorldHint ?? true;
    families = declared ? named : new Set(EFFECT_FAMILIES);
    readsSource = effects?.reads?.source ?? 'unknown';
    readsPrivate = effects?.reads?.private ?? true;
    if (definition.compensate === undefined && !readOnly) {
      undo.push({ kind: 'impossible', why: `${definition.executor.kind} tool "${definition.name}" declares no compensating tool` });
    }
  }
  if (definition.compensate !== undefined) undo.push({ kind: 'tool', tool: definition.compensate });
  const destructive = !readOnly && (a.destructiveHint ?? true);
  return {
    declared,
    readOnly,
    destructive,
    idempotent: readOnly || (a.idempotentHint ?? false),
    openWorld,
    families: EFFECT_FAMILIES.filter((f) => families.has(f)),
    readsPrivate,
    readsSource,
    undo,
    undoable: !undo.some((u) => u.kind === 'impossible'),
  };
}

/**
 * Defines a tool: validates the definition, fills every default and derives its effect profile.
 * Returns a deeply frozen `ToolDescriptor`. Throws `TypeError` naming the field when the
 * definition is malformed (a programming error for built-ins; task files are validated, with
 * field paths, by the task schema before they get here).
 */
export function defineTool(definition: ToolDefinition): ToolDescriptor {
  const parsed = ToolDefinitionSchema.safeParse(definition);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || '(definition)'}: ${i.message}`).join('; ');
    throw new TypeError(`tool ${JSON.stringify((definition as { name?: unknown }).name)} is not a valid definition: ${where}`);
  }
  const d = parsed.data;
  if (!isCapabilityBound(d.executor) && d.capabilities.length > 0) {
    throw new TypeError(`tool "${d.name}": only builtin and isolate tools receive host capabilities, not ${d.executor.kind} tools`);
  }
  if (d.executor.kind === 'builtin' && (d.capabilities.length !== 1 || d.capabilities[0] !== d.executor.capability)) {
    throw new TypeError(`built-in "${d.name}" must hold exactly its own capability "${d.executor.capability}"`);
  }
  const descriptor: ToolDescriptor = {
    name: d.name,
    description: d.description,
    inputSchema: d.inputSchema,
    executor: d.executor,
    capabilities: [...new Set(d.capabilities)],
    effects: d.effects ?? DeclaredEffectsSchema.parse({}),
    annotations: d.annotations,
    ...(d.compensate === undefined ? {} : { compensate: d.compensate }),
    ...(d.timeout === undefined ? {} : { timeout: d.timeout }),
    ...(d.memoryMb === undefined ? {} : { memoryMb: d.memoryMb }),
    profile: effectProfile(d),
  };
  return deepFreeze(descriptor);
}

/** The MCP annotations a descriptor resolves to (what Warden assumes, not only what was declared). */
export function resolvedAnnotations(descriptor: ToolDescriptor): Required<Omit<ToolAnnotations, 'title'>> {
  const p = descriptor.profile;
  return { readOnlyHint: p.readOnly, destructiveHint: p.destructive, idempotentHint: p.idempotent, openWorldHint: p.openWorld };
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
