/**
 * The six built-in tools, each one `defineTool` descriptor: what the model is shown, the fixed
 * isolate source the sandbox host runs, the one capability it calls, and what it does, by
 * argument. Adding a built-in is adding one entry here (and its capability in the sandbox host).
 *
 * Being built in grants nothing extra: the task must still grant the tool and the resources
 * (workspace, hosts, databases) behind it.
 */
import { deepFreeze, defineTool, type CapabilityName, type ToolDescriptor } from './tool-descriptor';

/** The built-in tools' names; each is also the one capability that tool holds. */
export const BUILTIN_TOOL_NAMES = ['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'sql.exec'] as const satisfies readonly CapabilityName[];
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number];

/**
 * A built-in tool's descriptor (its executor is always `builtin`), plus `source`: the same text as
 * `executor.source`, for callers that run a built-in directly in a sandbox (tests, benchmarks).
 */
export type BuiltinTool = ToolDescriptor & {
  readonly name: BuiltinToolName;
  readonly executor: { readonly kind: 'builtin'; readonly capability: CapabilityName; readonly source: string };
  readonly source: string;
};

const sqlParams = {
  type: 'array',
  items: { type: ['string', 'number', 'boolean', 'null'] },
  description: 'Values for the ? placeholders, in order.',
} as const;

/**
 * The descriptors, each checked by `defineTool`. Built on first use, not when the module loads:
 * every workflow run evaluates this module afresh (the SDK's reusable V8 context shares no module
 * of Warden's, see workflows/shared-modules.ts), and a run whose task grants no built-in (only its
 * own tools, an MCP server's, a program) never needs them. Building and checking the six
 * descriptors with zod was about a tenth of a run's module evaluation (issue 17).
 */
const defineTools = (): Readonly<Record<BuiltinToolName, ToolDescriptor>> => ({
  'fs.read': defineTool({
    name: 'fs.read',
    description: 'Read a UTF-8 text file from the workspace. Returns its content as a string.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', minLength: 1, description: 'Path relative to the workspace folder.' } },
      required: ['path'],
      additionalProperties: false,
    },
    executor: { kind: 'builtin', capability: 'fs.read', source: 'return warden.fs.read(input.path);' },
    capabilities: ['fs.read'],
    effects: { families: ['storage'], paths: [{ arg: '/path', access: 'read' }], reads: { source: 'workspace', private: true } },
    annotations: { title: 'Read a workspace file', readOnlyHint: true, openWorldHint: false },
  }),
  'fs.write': defineTool({
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
    executor: { kind: 'builtin', capability: 'fs.write', source: 'return warden.fs.write(input.path, input.content);' },
    capabilities: ['fs.write'],
    effects: { families: ['storage'], paths: [{ arg: '/path', access: 'write' }], reads: { source: 'workspace', private: false } },
    // Replacing a file is a destructive update; the overlay makes it undoable.
    annotations: { title: 'Write a workspace file', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  }),
  'fs.list': defineTool({
    name: 'fs.list',
    description: 'List a folder of the workspace. Returns [{ name, type: "file" | "dir" | "other", size }].',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', description: 'Folder relative to the workspace folder; defaults to the workspace itself.' } },
      additionalProperties: false,
    },
    executor: { kind: 'builtin', capability: 'fs.list', source: 'return warden.fs.list(input.path === undefined ? "." : input.path);' },
    capabilities: ['fs.list'],
    effects: { families: ['storage'], paths: [{ arg: '/path', access: 'list', default: '.' }], reads: { source: 'workspace', private: true } },
    annotations: { title: 'List a workspace folder', readOnlyHint: true, openWorldHint: false },
  }),
  'http.fetch': defineTool({
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
    executor: {
      kind: 'builtin',
      capability: 'http.fetch',
      source: 'return await warden.http.fetch(input.url, { method: input.method, headers: input.headers, body: input.body });',
    },
    capabilities: ['http.fetch'],
    effects: { families: ['network'], urls: [{ arg: '/url', method: '/method' }], reads: { source: 'web', private: false } },
    annotations: { title: 'HTTP request', readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  }),
  'sql.query': defineTool({
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
    executor: {
      kind: 'builtin',
      capability: 'sql.query',
      source: 'return warden.sql.query(input.database, input.sql, input.params === undefined ? [] : input.params);',
    },
    capabilities: ['sql.query'],
    effects: { families: ['storage'], sql: [{ database: '/database', statement: '/sql', params: '/params', access: 'read' }], reads: { source: 'database', private: true } },
    annotations: { title: 'SQL query', readOnlyHint: true, openWorldHint: false },
  }),
  'sql.exec': defineTool({
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
    executor: {
      kind: 'builtin',
      capability: 'sql.exec',
      source: 'return warden.sql.exec(input.database, input.sql, input.params === undefined ? [] : input.params);',
    },
    capabilities: ['sql.exec'],
    effects: { families: ['storage'], sql: [{ database: '/database', statement: '/sql', params: '/params', access: 'write' }], reads: { source: 'database', private: false } },
    annotations: { title: 'SQL change', readOnlyHint: false, destructiveHint: true, openWorldHint: false },
  }),
});

function buildBuiltinTools(): Readonly<Record<BuiltinToolName, BuiltinTool>> {
  return deepFreeze(
    Object.fromEntries(
      Object.entries(defineTools()).map(([name, tool]) => {
        if (tool.executor.kind !== 'builtin') throw new TypeError(`built-in ${name} must have a builtin executor`);
        return [name, { ...tool, source: tool.executor.source }];
      }),
    ) as Record<BuiltinToolName, BuiltinTool>,
  );
}

let builtinToolRecord: Readonly<Record<BuiltinToolName, BuiltinTool>> | undefined;

/**
 * Every built-in tool by name: one frozen record (callers cannot alter what a built-in does),
 * built and each descriptor checked on the first call (see `defineTools`), the same record after.
 * A function rather than a record built at load: every workflow run evaluates this module afresh
 * (workflows/shared-modules.ts), and most runs never read a descriptor (issue 17). Not a Proxy
 * standing in for the record either: `util.inspect`, `structuredClone` and `postMessage` see a
 * Proxy's bare target, not what it stands for (test/tools/builtin-tools-record.test.ts).
 */
export function builtinTools(): Readonly<Record<BuiltinToolName, BuiltinTool>> {
  builtinToolRecord ??= buildBuiltinTools();
  return builtinToolRecord;
}

const BUILTIN_NAME_SET: ReadonlySet<string> = new Set(BUILTIN_TOOL_NAMES);

/** Whether `name` is a built-in tool's name (own keys only: `constructor` is not a tool). Builds nothing. */
export function isBuiltinToolName(name: string): name is BuiltinToolName {
  return BUILTIN_NAME_SET.has(name);
}

/** The built-in tool called `name`; undefined when `name` is not a built-in. */
export function getBuiltinTool(name: BuiltinToolName): BuiltinTool;
export function getBuiltinTool(name: string): BuiltinTool | undefined;
export function getBuiltinTool(name: string): BuiltinTool | undefined {
  return isBuiltinToolName(name) ? builtinTools()[name] : undefined;
}
