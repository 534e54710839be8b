/**
 * The parts of a task document that are valid while others are not, so that one load reports
 * every problem it can find (task/load-task-file.ts): a check that reads only parts that parse
 * runs even when another field has errors. A part with errors is never guessed at: it is left
 * out, and the checks that read it wait until it parses (they would only repeat its error).
 */
import type { z } from 'zod';
import { GrantsSchema, ResourcesSchema, SubagentNameSchema, TaskSchema, ToolsSchema, type Task } from './task-schema';
import type { TaskPaths } from './task-path-issues';

type Shape = typeof TaskSchema.shape;

function mapping(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * The top-level `fields` of `document`, each parsed on its own with its own schema (and default,
 * when absent), exactly as the whole task schema parses them (it has no cross-field rules);
 * undefined when `document` is no mapping or any of `fields` has errors.
 */
export function parsedFields<K extends keyof Shape & keyof Task>(document: unknown, fields: readonly K[]): Pick<Task, K> | undefined {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return undefined;
  const out: Partial<Pick<Task, K>> = {};
  for (const key of fields) {
    const parsed = (TaskSchema.shape[key] as z.ZodType).safeParse((document as Record<string, unknown>)[key]);
    if (!parsed.success) return undefined;
    out[key] = parsed.data as Task[K];
  }
  return out as Pick<Task, K>;
}

/** The entries of a record `value` that `schema` (a record schema) accepts one by one. */
function validEntries<T>(schema: z.ZodType<Record<string, T> | undefined>, value: unknown): Record<string, T> {
  // Built by fromEntries (own properties): a key named "__proto__" stays a key.
  return Object.fromEntries(
    Object.entries(mapping(value)).flatMap(([key, entry]) => {
      const parsed = schema.safeParse(Object.fromEntries([[key, entry]]));
      const data = parsed.success && parsed.data !== undefined && Object.hasOwn(parsed.data, key) ? parsed.data[key] : undefined;
      return data === undefined ? [] : [[key, data] as const];
    }),
  );
}

/**
 * The paths `document` names that parse, each on its own, as task/task-path-issues.ts reads
 * them (not yet resolved against the task file's folder): the workspace, each database, each
 * host's secret headers, each MCP server, and each `grants.commands` list (root and every
 * sub-agent), whatever errors the rest of the document has. A list with errors is left out whole
 * (its issues name items by index).
 */
export function taskPathsOf(document: unknown): TaskPaths {
  const root = mapping(document);
  const resources = mapping(root.resources);
  const workspace = ResourcesSchema.shape.workspace.safeParse(resources.workspace);
  const commandsOf = (grants: unknown) => {
    const parsed = GrantsSchema.shape.commands.safeParse(mapping(grants).commands);
    return parsed.success ? parsed.data : undefined;
  };
  const subagents: TaskPaths['subagents'] = {};
  for (const [name, sub] of Object.entries(mapping(root.subagents))) {
    if (SubagentNameSchema.safeParse(name).success) subagents[name] = { grants: { commands: commandsOf(mapping(sub).grants) } };
  }
  return {
    resources: {
      workspace: workspace.success ? workspace.data : undefined,
      databases: validEntries(ResourcesSchema.shape.databases, resources.databases),
      secrets: validEntries(ResourcesSchema.shape.secrets, resources.secrets),
    },
    tools: { mcp: validEntries(ToolsSchema.shape.mcp, mapping(root.tools).mcp) },
    grants: { commands: commandsOf(root.grants) },
    subagents,
  };
}
