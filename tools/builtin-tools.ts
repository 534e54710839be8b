/**
 * The six built-in tools, as data. They are ordinary sandboxed tools: each is the body of
 * `async function (input, warden)` run in a fresh isolate, and reaches the host only through the
 * capability it declares. Being built in grants nothing extra: the task must still grant the tool
 * and the resources (workspace, hosts, databases) behind it.
 */
import type { BuiltinToolName } from '../task/task-schema';

/** A built-in tool: what the model is shown, what the sandbox runs, what it needs. */
export interface BuiltinTool {
  readonly name: BuiltinToolName;
  readonly description: string;
  /** JSON Schema of the arguments, checked before the sandbox starts. */
  readonly inputSchema: Record<string, unknown>;
  /** Body of `async function (input, warden)`. */
  readonly source: string;
  /** Host capabilities the source calls; the call receives these, narrowed to the task's grants. */
  readonly capabilities: readonly BuiltinToolName[];
}

const sqlParams = {
  type: 'array',
  items: { type: ['string', 'number', 'boolean', 'null'] },
  description: 'Values for the ? placeholders, in order.',
} as const;

const TOOLS: readonly BuiltinTool[] = [
  {
    name: 'fs.read',
    description: 'Read a UTF-8 text file from the workspace. Returns its content as a string.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', minLength: 1, description: 'Path relative to the workspace folder.' } },
      required: ['path'],
      additionalProperties: false,
    },
    source: 'return warden.fs.read(input.path);',
    capabilities: ['fs.read'],
  },
  {
    name: 'fs.write',
    description: 'Create or replace a UTF-8 text file in the workspace (missing folders are created). Returns { path, bytes }.',
    inputSchema: {
      type: 'object',
      properties: {
        path: { type: 'string', minLength: 1, description: 'Path relative to the workspace folder.' },
        content: { type: 'string', description: 'The whole new content of the file.' },
      },
      required: ['path', 'content'],
      additionalProperties: false,
    },
    source: 'return warden.fs.write(input.path, input.content);',
    capabilities: ['fs.write'],
  },
  {
    name: 'fs.list',
    description: 'List a folder of the workspace. Returns [{ name, type: "file" | "dir" | "other", size }].',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', description: 'Folder relative to the workspace folder; defaults to the workspace itself.' } },
      additionalProperties: false,
    },
    source: 'return warden.fs.list(input.path === undefined ? "." : input.path);',
    capabilities: ['fs.list'],
  },
  {
    name: 'http.fetch',
    description: 'Make an HTTP(S) request to a granted host. Returns { status, headers, body } with the body as text.',
    inputSchema: {
      type: 'object',
      properties: {
        url: { type: 'string', minLength: 1, description: 'Absolute http:// or https:// URL.' },
        method: { type: 'string', description: 'HTTP method; GET by default.' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        body: { type: 'string' },
      },
      required: ['url'],
      additionalProperties: false,
    },
    source: 'return await warden.http.fetch(input.url, { method: input.method, headers: input.headers, body: input.body });',
    capabilities: ['http.fetch'],
  },
  {
    name: 'sql.query',
    description: 'Run one read-only SQL statement (SELECT) on a granted SQLite database. Returns the rows.',
    inputSchema: {
      type: 'object',
      properties: {
        database: { type: 'string', minLength: 1, description: 'Name of a granted database.' },
        sql: { type: 'string', minLength: 1 },
        params: sqlParams,
      },
      required: ['database', 'sql'],
      additionalProperties: false,
    },
    source: 'return warden.sql.query(input.database, input.sql, input.params === undefined ? [] : input.params);',
    capabilities: ['sql.query'],
  },
  {
    name: 'sql.exec',
    description: 'Run one INSERT, UPDATE or DELETE on a granted SQLite database, in a transaction. Returns { changes }.',
    inputSchema: {
      type: 'object',
      properties: {
        database: { type: 'string', minLength: 1, description: 'Name of a granted database.' },
        sql: { type: 'string', minLength: 1 },
        params: sqlParams,
      },
      required: ['database', 'sql'],
      additionalProperties: false,
    },
    source: 'return warden.sql.exec(input.database, input.sql, input.params === undefined ? [] : input.params);',
    capabilities: ['sql.exec'],
  },
];

/** Every built-in tool by name. Frozen: callers cannot alter what a built-in does. */
export const BUILTIN_TOOLS: Readonly<Record<BuiltinToolName, BuiltinTool>> = Object.freeze(
  Object.fromEntries(TOOLS.map((tool) => [tool.name, deepFreeze(tool)])) as Record<BuiltinToolName, BuiltinTool>,
);

/** The built-in tool called `name`; undefined when `name` is not a built-in. */
export function getBuiltinTool(name: BuiltinToolName): BuiltinTool;
export function getBuiltinTool(name: string): BuiltinTool | undefined;
export function getBuiltinTool(name: string): BuiltinTool | undefined {
  return Object.hasOwn(BUILTIN_TOOLS, name) ? BUILTIN_TOOLS[name as BuiltinToolName] : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
