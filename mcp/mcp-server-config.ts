/**
 * How a task file names its MCP servers (`tools.mcp`): a stdio server Warden starts in the OS
 * sandbox, or a streamable-HTTP server it connects to. Pure zod (no Node imports): the task
 * schema, and so workflow code, includes it.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { reservedEnvReason } from '../secrets/reserved-env';

/** Names a server cannot take: the built-in tool families and Warden's own prefixes (no shadowing). */
export const RESERVED_SERVER_NAMES = ['fs', 'http', 'sql', 'proc', 'spawn', 'warden', 'mcp'] as const;

const SERVER_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/**
 * Why `name` cannot name an MCP server, or undefined when it can. (Checked by the task loader:
 * zod reports a bad record key without its message.)
 */
export function mcpServerNameProblem(name: string): string | undefined {
  if (!SERVER_NAME.test(name)) return 'an MCP server name: lower-case letters, digits, "_" or "-" (its tools are offered as "<server>.<tool>")';
  if ((RESERVED_SERVER_NAMES as readonly string[]).includes(name)) {
    return `an MCP server name cannot be one of ${RESERVED_SERVER_NAMES.join(', ')}: its tools would shadow built-in tools`;
  }
  return undefined;
}
export type McpToolAnnotations = z.infer<typeof McpToolAnnotationsSchema>;
export type McpCompensation = z.infer<typeof McpCompensationSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('mcp/mcp-server-config', () => {
  const McpServerNameSchema = z.string().refine((name) => mcpServerNameProblem(name) === undefined, { error: (issue) => mcpServerNameProblem(String(issue.input)) ?? 'an MCP server name' });
  const EnvNameSchema = z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .superRefine((name, ctx) => {
      const reserved = reservedEnvReason(name);
      if (reserved !== undefined) ctx.addIssue({ code: 'custom', message: reserved });
    });
  const DurationSchema = z.string().regex(/^\d+(ms|s|m|h)$/, 'a duration such as "250ms", "30s", "5m" or "1h"');
  /** MCP's tool annotations (2025-06-18): hints about what a tool does, used by policies as its declared effects. */
  const McpToolAnnotationsSchema = z.strictObject({
    title: z.string().optional(),
    readOnlyHint: z.boolean().optional(),
    destructiveHint: z.boolean().optional(),
    idempotentHint: z.boolean().optional(),
    openWorldHint: z.boolean().optional(),
  });
  const WardenToolNameSchema = z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/, 'a tool name (e.g. "tickets.delete-issue")');
  /**
   * How a call of an MCP tool is undone when the task does not complete: a granted tool, called
   * with arguments taken from the original call by JSON pointer (RFC 6901; a `*` segment collects
   * every match into an array): `{ tool: tickets.delete-issue, args: { id: /output/structuredContent/id } }`.
   */
  const McpCompensationSchema = z.strictObject({
    tool: WardenToolNameSchema,
    args: z.record(z.string(), z.string().regex(/^\/(args|output)(\/.*)?$/, 'a JSON pointer into the original call: "/args/…" or "/output/…"')).default({}),
  });
  /** What the task file says about one of a server's tools: annotations overriding the server's own, and how to undo it. */
  const McpToolOverrideSchema = z.strictObject({
    annotations: McpToolAnnotationsSchema.optional(),
    compensate: McpCompensationSchema.optional(),
  });
  const CommonSchema = {
    /** Per call; defaults to the task's `limits.toolTimeout`. */
    timeout: DurationSchema.optional(),
    /**
     * When the tool list is checked against its pin: before every call (default: any change, even
     * one the server does not announce, is caught before the next call), or only when the server
     * announces a change and when Warden reconnects (one round trip less per call).
     */
    verify: z.enum(['every-call', 'on-change']).default('every-call'),
    /** By MCP tool name (as the server spells it). */
    tools: z.record(z.string(), McpToolOverrideSchema).default({}),
  };
  const McpStdioServerSchema = z.strictObject({
    /** The program (looked up on the sandbox's PATH). `npx [-y] <package> args…` runs a package installed with `warden mcp install`. */
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    /** Environment variables passed from the worker's environment (secrets such as API keys); nothing else is passed. */
    env: z.array(EnvNameSchema).default([]),
    /** Plain settings for the server (recorded with the task: no secrets here, use `env` for those). */
    setEnv: z.record(EnvNameSchema, z.string()).default({}),
    /** Working folder relative to the workspace. */
    cwd: z.string().default('.'),
    /** How the server sees the task's workspace: through the task's copy-on-write overlay (default), read-only, or not at all. */
    workspace: z.enum(['overlay', 'read-only', 'none']).default('overlay'),
    /** Hosts the server may reach through the egress proxy; each must also be granted (`grants.hosts`). */
    hosts: z.array(z.string().min(1)).default([]),
    memoryMb: z.number().int().min(32).max(16_384).default(512),
    maxProcesses: z.number().int().min(1).max(1024).default(64),
    ...CommonSchema,
  });
  const McpHttpServerSchema = z.strictObject({
    /** Streamable HTTP endpoint, e.g. http://127.0.0.1:8931/mcp. */
    url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
    /** Environment variable holding a bearer token sent as `Authorization: Bearer …` (never stored). */
    bearerTokenEnv: EnvNameSchema.optional(),
    ...CommonSchema,
  });
  const McpServerSchema = z.union([McpStdioServerSchema, McpHttpServerSchema], {
    error: 'an MCP server: { command, args } (stdio, in the OS sandbox) or { url } (streamable HTTP)',
  });
  return { McpServerNameSchema, EnvNameSchema, DurationSchema, McpToolAnnotationsSchema, WardenToolNameSchema, McpCompensationSchema, McpToolOverrideSchema, CommonSchema, McpStdioServerSchema, McpHttpServerSchema, McpServerSchema };
});

export const { McpServerNameSchema, McpToolAnnotationsSchema, McpCompensationSchema, McpToolOverrideSchema, McpStdioServerSchema, McpHttpServerSchema, McpServerSchema } = schemas;
const { EnvNameSchema, DurationSchema, WardenToolNameSchema, CommonSchema } = schemas;

export type McpStdioServer = z.infer<typeof McpStdioServerSchema>;
export type McpHttpServer = z.infer<typeof McpHttpServerSchema>;
export type McpServer = z.infer<typeof McpServerSchema>;

export function isStdioServer(server: McpServer): server is McpStdioServer {
  return 'command' in server;
}
