/**
 * The task file: what a human asked for, which (untrusted) agent does it, and the exact
 * tools and resources it may touch. Every field that reaches the workflow is defined here;
 * types are derived from the schemas so the file format and the code cannot drift apart.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { parseSecretTemplate, RESERVED_SECRET_HEADERS } from '../secrets/secret-template';
import { durationToMs } from './duration';
import { nearestName } from './field-suggestions';
import { MAX_DURATION_MS, TASK_FIELD_LIMITS as MAX } from './task-file-limits';
import { BUILTIN_TOOL_NAMES, type BuiltinToolName } from '../tools/builtin-tools';
import { CapabilityNameSchema, DeclaredEffectsSchema, ToolAnnotationsSchema, ToolNameSchema } from '../tools/tool-descriptor';
import { PROCESS_TOOL_NAMES } from '../tools/process-tools';
import { McpServerSchema } from '../mcp/mcp-server-config';
import { McpListingRefSchema, McpToolListingSchema } from '../mcp/pinned-tool-list';
import { reservedEnvReason } from '../secrets/reserved-env';
import { ClaimSchema } from '../attestation/claim-schema';
import { AttestationConfigSchema } from '../attestation/attestation-config';

/** Tool names: lower-case words joined by dots, underscores or dashes (`fs.read`, `summarize`). */
export { ToolNameSchema };
export { BUILTIN_TOOL_NAMES, type BuiltinToolName };
export { CapabilityNameSchema };

/** Packs a task is judged by when it names none. */
export const DEFAULT_POLICY_PACKS: readonly string[] = ['foundation'];

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh. Defaults that hold objects or arrays
 * are functions, so no parse hands out an object another parse (another run) also gets.
 */
const schemas = sharedOnce('task/task-schema', () => {
  /** A string field with a length limit (task/task-file-limits.ts), saying the limit when broken. */
  const text = (max: number) => z.string().max(max, `at most ${max} characters`);

  const SubagentNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'a sub-agent name: lower-case letters, digits, "_" or "-"');
  /** An agent's own `name` (the root's or a sub-agent's): the same form, named as what it is. */
  const AgentNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'an agent name: lower-case letters, digits, "_" or "-" (starting with a letter)');

  /**
   * A whole number from `min` to `max` (inclusive) counted in `unit`; a bad value says the bound and
   * the unit (`must be at least 16 (MiB)`), not zod's raw `Too small: expected number to be >=16`.
   */
  const wholeNumber = (min: number, max: number, unit: string) =>
    z
      .number({ error: `must be a whole number (${unit})` })
      .int(`must be a whole number (${unit})`)
      .min(min, `must be at least ${min} (${unit})`)
      .max(max, `must be at most ${max} (${unit})`);

  /** A sampling temperature from 0 to `max` (the provider's range). */
  const temperature = (max: number) => z.number({ error: `must be a number from 0 to ${max}` }).min(0, `must be at least 0`).max(max, `must be at most ${max} (the provider's range)`);

  /** Durations as the CLI and files write them: "30s", "5m", "1h", "250ms". */
  const DurationSchema = z
    .string()
    .regex(/^\d{1,12}(ms|s|m|h)$/, 'a duration such as "250ms", "30s", "5m" or "1h"')
    .refine((d) => !/^\d{1,12}(ms|s|m|h)$/.test(d) || durationToMs(d) <= MAX_DURATION_MS, `at most ${MAX_DURATION_MS / 86_400_000} days`);

  const JsonObjectSchema = z.record(z.string(), z.unknown());

  /** One action an agent proposes. The scripted driver reads these from the file verbatim. */
  const ScriptedToolCallSchema = z.strictObject({
    tool: ToolNameSchema,
    args: JsonObjectSchema.default({}),
  });
  const ScriptedSpawnSchema = z.strictObject({
    spawn: SubagentNameSchema,
    /** What the parent asks the sub-agent to do; defaults to the sub-agent's declared intent. */
    intent: text(MAX.intent).min(1).optional(),
  });
  const ScriptedFinalSchema = z.strictObject({
    final: text(MAX.finalAnswer),
    /**
     * Claims the agent makes about its work, verified by Warden after the task commits, never
     * trusted: a sentence ("the tests pass", kept as an `unverified` text claim) or a structured
     * claim (attestation/claim-schema.ts), e.g. `{ kind: sql.count, database: app, table: items, equals: 3 }`.
     */
    claims: z.array(ClaimSchema).max(MAX.claims).default([]),
  });
  const ScriptedActionSchema = z.union([ScriptedToolCallSchema, ScriptedSpawnSchema, ScriptedFinalSchema], {
    error: 'an action: { tool, args } or { spawn, intent } or { final, claims }',
  });

  const ScriptedModelSchema = z.strictObject({
    driver: z.literal('scripted'),
    id: text(MAX.shortText).min(1).default('scripted'),
    version: text(MAX.shortText).min(1).default('1'),
    /** The agent's proposed actions in order; the stand-in for a (possibly injected) model. */
    script: z.array(ScriptedActionSchema).min(1, 'a scripted model needs at least one action').max(MAX.scriptActions),
  });

  /** Name of the environment variable holding an API key; the key itself never enters a file or history. */
  const ApiKeyEnvSchema = z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .superRefine((name, ctx) => {
      const reserved = reservedEnvReason(name);
      if (reserved !== undefined) ctx.addIssue({ code: 'custom', message: reserved });
    });
  const HttpUrlSchema = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
  /** Which OpenAI API a driver speaks: Chat Completions or the Responses API. */
  const OpenAIApiSchema = z.enum(['chat', 'responses'], { error: 'an OpenAI API: "chat" (Chat Completions) or "responses"' });

  /** Any server that speaks OpenAI's protocol (vLLM, llama.cpp, Ollama's /v1...), through the official `openai` package. */
  const OpenAICompatibleModelSchema = z.strictObject({
    driver: z.literal('openai-compatible'),
    id: text(MAX.shortText).min(1),
    version: text(MAX.shortText).min(1).default('unversioned'),
    /** e.g. "http://127.0.0.1:11434/v1"; "/chat/completions" or "/responses" is appended. */
    baseUrl: HttpUrlSchema,
    api: OpenAIApiSchema.default('chat'),
    /** No key is sent when unset (local servers). */
    apiKeyEnv: ApiKeyEnvSchema.optional(),
    temperature: temperature(2).default(0),
    maxOutputTokens: wholeNumber(1, 1_000_000, 'tokens').optional(),
    requestTimeout: DurationSchema.default('60s'),
  });

  /** OpenAI's own API (Responses API by default), through the official `openai` package. */
  const OpenAIModelSchema = z.strictObject({
    driver: z.literal('openai'),
    id: text(MAX.shortText).min(1),
    version: text(MAX.shortText).min(1).default('unversioned'),
    baseUrl: HttpUrlSchema.default('https://api.openai.com/v1'),
    api: OpenAIApiSchema.default('responses'),
    apiKeyEnv: ApiKeyEnvSchema.default('OPENAI_API_KEY'),
    /** Not sent unless set (reasoning models refuse it). */
    temperature: temperature(2).optional(),
    maxOutputTokens: wholeNumber(1, 1_000_000, 'tokens').optional(),
    requestTimeout: DurationSchema.default('60s'),
  });

  /** Anthropic's Messages API, through the official `@anthropic-ai/sdk` package. */
  const AnthropicModelSchema = z.strictObject({
    driver: z.literal('anthropic'),
    id: text(MAX.shortText).min(1),
    version: text(MAX.shortText).min(1).default('unversioned'),
    /** "/v1/messages" is appended. */
    baseUrl: HttpUrlSchema.default('https://api.anthropic.com'),
    apiKeyEnv: ApiKeyEnvSchema.default('ANTHROPIC_API_KEY'),
    temperature: temperature(1).optional(),
    /** Anthropic requires a limit on each answer. */
    maxOutputTokens: wholeNumber(1, 1_000_000, 'tokens').default(4096),
    requestTimeout: DurationSchema.default('60s'),
  });

  /**
   * An agent Warden does not drive: an existing agent (an IDE, a CLI agent, an SDK) connected
   * through `warden mcp serve`, whose every tool call is a step of the task (workflows/session-run.ts).
   */
  const McpClientModelSchema = z.strictObject({
    driver: z.literal('mcp-client'),
    /** Set from the connecting client's `clientInfo` when the session starts. */
    id: z.string().min(1).default('mcp-client'),
    version: z.string().min(1).default('unversioned'),
  });

  const ModelSchema = z.discriminatedUnion('driver', [ScriptedModelSchema, OpenAICompatibleModelSchema, OpenAIModelSchema, AnthropicModelSchema, McpClientModelSchema], {
    error: 'a model with driver "scripted", "openai", "openai-compatible", "anthropic" or "mcp-client"',
  });

  const AgentSchema = z.strictObject({
    name: AgentNameSchema,
    model: ModelSchema,
    /** Extra system instructions for model drivers. */
    instructions: text(MAX.instructions).optional(),
  });

  /** The built-in tools (tools/builtin-tools.ts holds their descriptors). */
  const ALL_BUILTIN_NAMES = [...BUILTIN_TOOL_NAMES, ...PROCESS_TOOL_NAMES] as const;
  const BuiltinToolNameSchema = z.enum(ALL_BUILTIN_NAMES, {
    error: (issue) => {
      const guess = typeof issue.input === 'string' ? nearestName(issue.input, ALL_BUILTIN_NAMES) : undefined;
      return guess === undefined ? `a built-in tool: ${ALL_BUILTIN_NAMES.join(', ')}` : `unknown built-in tool "${String(issue.input)}"; did you mean "${guess}"? (the built-in tools: ${ALL_BUILTIN_NAMES.join(', ')})`;
    },
  });

  /** Capabilities a user-defined tool may ask the host for; each must also be granted to the task (its tool in grants.tools). */

  const UserToolSchema = z.strictObject({
    name: ToolNameSchema,
    description: text(MAX.toolDescription).min(1),
    /** JSON Schema (draft 2020-12 subset supported by Ajv) for the tool's arguments. */
    input: JsonObjectSchema.default({ type: 'object' }),
    /**
     * JavaScript run in a fresh sandbox: the body of `async function (input, warden)`; it must
     * `return` a JSON value. `warden` holds only the capabilities listed in `capabilities`.
     */
    source: text(MAX.toolSource).min(1),
    capabilities: z.array(CapabilityNameSchema).default([]),
    /**
     * What the tool does, by argument (tools/tool-descriptor.ts): families, recipients, payees,
     * amounts, URLs, hosts, paths, SQL, and what its output holds. Left out, the tool is treated as
     * doing anything its capabilities allow (fail closed), and the task loader says so.
     */
    effects: DeclaredEffectsSchema.optional(),
    /** MCP tool annotations: readOnlyHint, destructiveHint, idempotentHint, openWorldHint (capabilities bound them). */
    annotations: ToolAnnotationsSchema.optional(),
    /** A user-defined tool that undoes this one; it receives { compensationId, original: { tool, args, output } }. */
    compensate: ToolNameSchema.optional(),
    timeout: DurationSchema.optional(),
    memoryMb: wholeNumber(8, 1024, 'MiB').optional(),
  });

  const ToolsSchema = z.strictObject({
    builtin: z.array(BuiltinToolNameSchema).default([]),
    custom: z.array(UserToolSchema).max(MAX.customTools).default([]),
    /**
     * MCP servers whose tools the agent is offered as `<server>.<tool>` (mcp/mcp-server-config.ts):
     * `{ command, args }` runs a stdio server in the OS sandbox, `{ url }` reaches a streamable-HTTP one.
     */
    mcp: z.record(z.string(), McpServerSchema).optional(),
    /**
     * Set by Warden when the task starts, never in a task file: each server's tool list as pinned
     * (names, descriptions, schemas, annotations, and their hash).
     */
    mcpPinned: z.array(McpToolListingSchema).optional(),
    /**
     * Set by Warden when the task starts, never in a task file: the pinned lists by digest, as the
     * task travels to activities (the worker reads each listing from its state store and checks it
     * against the digest: mcp/mcp-listing-store.ts). Replaces `mcpPinned` on the wire.
     */
    mcpPins: z.array(McpListingRefSchema).optional(),
  });

  /** A program name (no "/") or an absolute path, as `grants.commands` and `proc.run` name programs. */
  const CommandNameSchema = z
    .string()
    .regex(/^([A-Za-z0-9_][A-Za-z0-9_.+-]*|\/[^\0]+)$/, 'a program name such as "node" or "pytest", or an absolute path such as "/usr/bin/git"');
  /** A table granted on its own: `db.table` for read and write, or with the access spelled out. */
  const TableGrantSchema = z.union([
    z.string().regex(/^[a-z][a-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_$]*$/, 'a table as "<database>.<table>"'),
    z.strictObject({
      table: z.string().regex(/^[a-z][a-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_$]*$/, 'a table as "<database>.<table>"'),
      access: z.enum(['read', 'write']),
    }),
  ]);

  const GrantsSchema = z.strictObject({
    /** Tools the agent may call (built-in or user-defined). Anything else is denied. */
    tools: z.array(ToolNameSchema).max(MAX.grantEntries).default([]),
    /** Sub-agents this task may spawn. */
    subagents: z.array(SubagentNameSchema).max(MAX.grantEntries).default([]),
    /** Hosts `http.fetch` may reach (`host` or `host:port`); deny by default. */
    hosts: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /** Databases (names under resources.databases) the sql tools may use. */
    databases: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /** Programs `proc.run` may start, by name on the OS sandbox's PATH (`node`, `npm`, `pytest`) or absolute path. */
    commands: z.array(CommandNameSchema).optional(),
    /**
     * Tables, when a granted database may be used only in part: a database named here is granted
     * table by table (read and write, or `access: read`), everything else in it refused, checked
     * against every table a statement touches (views, triggers and cascades included).
     */
    tables: z.array(TableGrantSchema).max(MAX.grantEntries).optional(),
  });

  /**
   * What the user vouches for, so that values taken from it steer actions without a human: values
   * they declare count as their own words; outputs of the sources named here are trusted data. Data
   * written during the task is never trusted, whatever its source.
   */
  const TrustSchema = z.strictObject({
    /** Addresses, accounts, URLs... the user declares as theirs to use (count as user-given). */
    values: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /** The workspace (true) or workspace paths whose files hold the user's own data. */
    workspace: z.union([z.boolean(), z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries)]).default(false),
    /** Databases (`db`) or tables (`db.table`) whose rows are the user's own data. */
    databases: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /** Hosts whose responses are trusted (the user's own services). */
    hosts: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /** Tools whose outputs are trusted. */
    tools: z.array(ToolNameSchema).max(MAX.grantEntries).default([]),
  });

  /** A header a secret may set: an HTTP token, not one the client owns (host, content-length...). */
  const SecretHeaderNameSchema = text(256)
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name')
    .refine((name) => !RESERVED_SECRET_HEADERS.has(name.toLowerCase()), 'a header the HTTP client sets itself cannot come from a secret');
  /** A header value naming its secret: `Bearer ${env:TOKEN}`, `${file:path}`, `${warden:credential}`. */
  const SecretTemplateSchema = text(MAX.shortText).min(1).superRefine((template, ctx) => {
    const parsed = parseSecretTemplate(template);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    else if (!parsed.parts.some((p) => typeof p !== 'string')) ctx.addIssue({ code: 'custom', message: 'a secret header names where its value comes from: ${env:NAME}, ${file:path} or ${warden:credential}' });
  });

  const ResourcesSchema = z.strictObject({
    /** Folder the fs tools see, relative to the task file. */
    workspace: text(MAX.shortText).min(1).optional(),
    /** SQLite databases by name, paths relative to the task file. */
    databases: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'a database name'), text(MAX.shortText).min(1)).default({}),
    /** Hosts the task knows about; the grant selects which of them the agent may reach. */
    hosts: z.array(text(MAX.shortText).min(1)).max(MAX.grantEntries).default([]),
    /**
     * Headers the HTTP capability adds to requests to a granted host (`host` or `host:port`, as in
     * `hosts`), after the grant and policy checks, from secret templates: `${env:NAME}`,
     * `${file:path}` (relative to this file), `${warden:credential}` (the call's Warden JWT). The
     * values never reach the model, the sandbox, history, custody or tool output.
     */
    secrets: z.record(text(MAX.shortText).min(1), z.record(SecretHeaderNameSchema, SecretTemplateSchema)).default({}),
    /**
     * Workspace files that make host tools run code (`.git/config`, `.git/hooks/...`, `.npmrc`...,
     * the list in recovery/host-code-files.ts) the task may commit: a path, or a folder ending in
     * `/`. Without it such files are held, never committed (recovery.notCommitted says so).
     */
    allowHostCode: z
      .array(text(MAX.shortText).min(1).refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a workspace-relative path without ".."'))
      .max(MAX.grantEntries)
      .optional(),
  });

  /** Each limit as written, without its default (a sub-agent's unnamed limit is its parent's). */
  const limitFields = {
    maxSteps: wholeNumber(1, 10_000, 'steps'),
    deadline: DurationSchema,
    /** Per tool call: CPU/wall time and isolate heap. */
    toolTimeout: DurationSchema,
    toolMemoryMb: wholeNumber(8, 1024, 'MiB'),
    /** What a denied action does to the task: stop it (default) or report the denial to the agent and go on. */
    onDeny: z.enum(['stop', 'continue']),
    /** How long an action held for approval waits for a human before it is denied. */
    approvalTimeout: DurationSchema,
    maxDepth: wholeNumber(0, 10, 'levels of sub-agents'),
    /** Programs (`proc.run`) and stdio MCP servers: memory of the whole process tree (default 1024). */
    processMemoryMb: wholeNumber(32, 65_536, 'MiB').optional(),
    /** Programs (`proc.run`): processes and threads alive at once (default 256). */
    processMaxProcesses: wholeNumber(1, 4096, 'processes and threads').optional(),
    /**
     * What the whole task tree may add to its workspace overlay, MiB (default 1024): every step,
     * program, stdio MCP server and `fs.write` together. A tree that runs programs gets a file
     * system of that size (recovery/overlay-volume.ts); a sub-agent's smaller limit is checked
     * after each of its calls.
     */
    workspaceMb: wholeNumber(16, 1_048_576, 'MiB').optional(),
  };

  const LimitsSchema = z.strictObject({
    ...limitFields,
    maxSteps: limitFields.maxSteps.default(50),
    deadline: limitFields.deadline.default('10m'),
    toolTimeout: limitFields.toolTimeout.default('5s'),
    toolMemoryMb: limitFields.toolMemoryMb.default(64),
    onDeny: limitFields.onDeny.default('stop'),
    approvalTimeout: limitFields.approvalTimeout.default('15m'),
    maxDepth: limitFields.maxDepth.default(3),
  });

  /**
   * A sub-agent's limits: only those it names; each one it leaves out is its parent's
   * (`narrowLimits`, permissions/task-narrowing.ts). No defaults here: zod 4 fills a field's
   * default inside `.partial()` whenever the object is present, which gave a sub-agent naming one
   * limit (or none, once the workflow parsed its input again) the schema's defaults for the rest.
   */
  const SubagentLimitsSchema = z.strictObject(limitFields).partial();

  /** A sub-agent declaration: its own agent, tools and grants; the user is inherited from the parent. */
  const SubagentSchema = z.strictObject({
    intent: text(MAX.intent).min(1),
    agent: AgentSchema,
    tools: ToolsSchema.default(() => ({ builtin: [], custom: [] })),
    grants: GrantsSchema.default(() => ({ tools: [], subagents: [], hosts: [], databases: [] })),
    policies: z.array(text(MAX.policySentence).min(1)).max(MAX.policies).default([]),
    /** Packs the sub-agent is judged by on top of every pack of its ancestors (never instead of them). */
    policyPacks: z.array(text(MAX.shortText).min(1)).max(MAX.policies).optional(),
    limits: SubagentLimitsSchema.default({}),
  });

  const TaskSchema = z.strictObject({
    /** The human on whose behalf the agent acts. */
    user: text(MAX.user).min(1),
    /** What the human asked for, in their words. */
    intent: text(MAX.intent).min(1),
    agent: AgentSchema,
    tools: ToolsSchema.default(() => ({ builtin: [], custom: [] })),
    grants: GrantsSchema.default(() => ({ tools: [], subagents: [], hosts: [], databases: [] })),
    /** Rule sentences, in Warden's controlled English (policies/engine/grammar.md). */
    policies: z.array(text(MAX.policySentence).min(1)).max(MAX.policies).default([]),
    /** What the user vouches for: declared values and trusted sources (provenance of argument values). */
    trust: TrustSchema.optional(),
    /** Rule packs (bundled names or folders, `shadow:<pack>` to record without enforcing); the foundation pack applies when none is named. */
    policyPacks: z.array(text(MAX.shortText).min(1)).max(MAX.policies).optional(),
    limits: LimitsSchema.default({
      maxSteps: 50,
      deadline: '10m',
      toolTimeout: '5s',
      toolMemoryMb: 64,
      onDeny: 'stop',
      approvalTimeout: '15m',
      maxDepth: 3,
    }),
    resources: ResourcesSchema.default(() => ({ databases: {}, hosts: [], secrets: {} })),
    subagents: z.record(SubagentNameSchema, SubagentSchema).default({}),
    /** Take an immutable snapshot of the workspace and databases before the task starts. */
    snapshot: z.boolean().default(false),
    /**
     * Opt in to the data flow (data-plane affinity, claim checks, continue-as-new, one round trip
     * per step: dataplane/README.md). Taken only by a root task with no sub-agents, MCP tool sources,
     * `mcp serve` session or `resources.allowHostCode`; a task file asking for it with any of those
     * is refused at load (task/data-flow-eligibility.ts), a task started otherwise runs on the original loop.
     */
    dataFlow: z.boolean().optional(),
    /**
     * Set by the loader, not written in a task file: the absolute path of the file the task came
     * from. Like its policy packs, it is kept from agents (readable, never written).
     */
    source: text(MAX.shortText).optional(),
    /** How agents' claims are verified: user-defined verifiers and the time one check may take (attestation/attestation-config.ts). */
    attestation: AttestationConfigSchema.optional(),
  });
  return { SubagentNameSchema, DurationSchema, ScriptedToolCallSchema, ScriptedSpawnSchema, ScriptedFinalSchema, ScriptedActionSchema, ScriptedModelSchema, OpenAIApiSchema, OpenAICompatibleModelSchema, OpenAIModelSchema, AnthropicModelSchema, McpClientModelSchema, ModelSchema, AgentSchema, BuiltinToolNameSchema, UserToolSchema, ToolsSchema, CommandNameSchema, TableGrantSchema, GrantsSchema, TrustSchema, ResourcesSchema, LimitsSchema, SubagentLimitsSchema, SubagentSchema, TaskSchema };
});

export const { SubagentNameSchema, DurationSchema, ScriptedToolCallSchema, ScriptedSpawnSchema, ScriptedFinalSchema, ScriptedActionSchema, ScriptedModelSchema, OpenAIApiSchema, OpenAICompatibleModelSchema, OpenAIModelSchema, AnthropicModelSchema, McpClientModelSchema, ModelSchema, AgentSchema, BuiltinToolNameSchema, UserToolSchema, ToolsSchema, CommandNameSchema, TableGrantSchema, GrantsSchema, TrustSchema, ResourcesSchema, LimitsSchema, SubagentLimitsSchema, SubagentSchema, TaskSchema } = schemas;

/** The task as written in a file (before defaults). */
export type TaskFileInput = z.input<typeof TaskSchema>;
/** The validated task with every default filled in. */
export type Task = z.infer<typeof TaskSchema>;
export type Agent = z.infer<typeof AgentSchema>;
export type Model = z.infer<typeof ModelSchema>;
export type UserTool = z.infer<typeof UserToolSchema>;
export type Tools = z.infer<typeof ToolsSchema>;
export type Grants = z.infer<typeof GrantsSchema>;
export type Limits = z.infer<typeof LimitsSchema>;
export type Resources = z.infer<typeof ResourcesSchema>;
export type Subagent = z.infer<typeof SubagentSchema>;
export type Trust = z.infer<typeof TrustSchema>;
export type ScriptedAction = z.infer<typeof ScriptedActionSchema>;

/** The rule packs that apply to a task: its own, else {@link DEFAULT_POLICY_PACKS}. */
export function policyPacksOf(task: Pick<Task, 'policyPacks'>): string[] {
  return [...(task.policyPacks ?? DEFAULT_POLICY_PACKS)];
}
