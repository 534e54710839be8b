/**
 * The tool catalog of one task: the descriptor of every tool it declares, built-in or
 * user-defined (and, as their executors arrive, MCP and process tools), in one place every guard
 * reads: the grant check, the credential scope, the capability grant, the policy request,
 * compensation, custody attributes, the approval listing and the model's tool list.
 *
 * Invariant: a call's capabilities are the tool's declared ones that the task also grants (the
 * capability's own tool in `grants.tools`, and the workspace, hosts and databases behind it);
 * nothing the agent passes as arguments can widen them. The task loader refuses a task whose
 * granted tool declares an ungranted capability, and every call checks again
 * (`ungrantedCapabilities`), so a task that slipped past the loader fails closed.
 *
 * Pure (no Node APIs): workflow code may import this file.
 */
import type { CapabilityGrant } from '../sandbox/sandbox-messages';
import type { Task, Tools } from '../task/task-schema';
import { durationToMs } from '../task/duration';
import type { ToolSpec } from '../drivers/model-driver';
import { getBuiltinTool } from './builtin-tools';
import type { CapabilityName, ToolDescriptor } from './tool-descriptor';
import { descriptorOfUserTool } from './user-tools';
import { getProcessTool } from './process-tools';
import { mcpDescriptorsOf } from './mcp-tools';

/** Every tool a task declares, by name. */
export interface ToolCatalog {
  /** The declared tool called `name`; undefined when the task does not declare it. */
  get(name: string): ToolDescriptor | undefined;
  /** Declared tools in declaration order (built-ins first). */
  readonly tools: readonly ToolDescriptor[];
}

const catalogs = new WeakMap<Tools, ToolCatalog>();

/** The catalog of a task's (or sub-agent's) `tools` section; cached per section object. */
export function toolCatalogOf(task: Pick<Task, 'tools'>): ToolCatalog {
  let catalog = catalogs.get(task.tools);
  if (catalog === undefined) {
    const tools: ToolDescriptor[] = [];
    for (const name of task.tools.builtin) {
      const builtin = getBuiltinTool(name) ?? getProcessTool(name);
      if (builtin !== undefined && !tools.some((t) => t.name === name)) tools.push(builtin);
    }
    for (const custom of task.tools.custom) if (!tools.some((t) => t.name === custom.name)) tools.push(descriptorOfUserTool(custom));
    // MCP servers' tools, from the lists pinned when the task started; a name already taken (a
    // built-in or a user tool) keeps its meaning: a server cannot shadow it.
    for (const mcp of mcpDescriptorsOf(task.tools)) if (!tools.some((t) => t.name === mcp.name)) tools.push(mcp);
    const byName = new Map(tools.map((t) => [t.name, t]));
    catalog = Object.freeze({ get: (name: string) => byName.get(name), tools: Object.freeze(tools) });
    catalogs.set(task.tools, catalog);
  }
  return catalog;
}

/** The declared tool named `name`, or undefined when the task does not declare it. */
/**
 * A call's time limit, ms: the tool's own `timeout` can only shorten the task's per-call limit
 * (`limits.toolTimeout`). The one rule for the sandbox host's limit (activities/run-tool.ts) and
 * the workflow's choice of a local call (workflows/tool-step.ts `runsLocally`). Deterministic.
 */
export function callLimitMs(task: Pick<Task, 'limits'>, tool: Pick<ToolDescriptor, 'timeout'>): number {
  const taskLimitMs = durationToMs(task.limits.toolTimeout);
  return tool.timeout === undefined ? taskLimitMs : Math.min(durationToMs(tool.timeout), taskLimitMs);
}

export function resolveTool(task: Pick<Task, 'tools'>, name: string): ToolDescriptor | undefined {
  return toolCatalogOf(task).get(name);
}

/** What a model driver offers the agent: every declared tool (grants are enforced, not hidden). */
export function toolSpecsOf(task: Pick<Task, 'tools'>): ToolSpec[] {
  return toolCatalogOf(task).tools.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema }));
}

/**
 * The capabilities `tool` declares that `task` does not grant: the capability's tool is not in
 * `grants.tools`, or it needs a workspace the task lacks (fs). `why` says how to grant it in one
 * edit: when `task.tools` is given and does not declare the capability's built-in tool either,
 * it names both places (`tools.builtin` and `grants.tools`), since a grant of an undeclared tool
 * is refused in turn. Empty when the tool receives everything it declares. A capability granted
 * with nothing behind it (no host for http, no database for sql) is not refused here: the task
 * loader notes it (task/load-task-file.ts `taskNotices`, from {@link emptyCapabilityGrants}).
 */
export function ungrantedCapabilities(task: Pick<Task, 'grants' | 'resources'> & { tools?: Pick<Tools, 'builtin'> }, tool: ToolDescriptor): { capability: CapabilityName; why: string }[] {
  const out: { capability: CapabilityName; why: string }[] = [];
  for (const capability of tool.capabilities) {
    if (!task.grants.tools.includes(capability)) {
      const undeclared = task.tools !== undefined && !(task.tools.builtin as readonly string[]).includes(capability);
      out.push({ capability, why: undeclared ? `the task neither declares nor grants "${capability}" (add it to tools.builtin and to grants.tools)` : `the task does not grant "${capability}" (add it to grants.tools)` });
    } else if (capability.startsWith('fs.') && task.resources.workspace === undefined) {
      out.push({ capability, why: `"${capability}" needs resources.workspace` });
    }
  }
  return out;
}

/**
 * The capabilities `tool` receives with nothing behind them ({@link capabilityGrantFor}): granted
 * `http.fetch` with no host both granted (`grants.hosts`) and declared (`resources.hosts`), or a
 * granted `sql.*` with no database both granted and declared. Every such call is refused, which a
 * task may mean, but more often is a grant left out.
 */
export function emptyCapabilityGrants(task: Task, tool: ToolDescriptor): CapabilityName[] {
  const grant = capabilityGrantFor(task, tool, undefined);
  const empty: CapabilityName[] = [];
  if (grant.http !== undefined && grant.http.allowedHosts.length === 0) empty.push('http.fetch');
  if (grant.sql !== undefined && Object.keys(grant.sql.databases).length === 0) {
    for (const capability of ['sql.query', 'sql.exec'] as const) if ((capability === 'sql.query' ? grant.sql.query : grant.sql.exec)) empty.push(capability);
  }
  return empty;
}

/**
 * The host capabilities one call of `tool` receives: its declared capabilities that the task
 * grants, narrowed to the granted workspace, hosts and databases. `workspaceRoot` is the real
 * path of the task's workspace (resolved by the caller, which owns the file system).
 */
export function capabilityGrantFor(task: Task, tool: ToolDescriptor, workspaceRoot: string | undefined): CapabilityGrant {
  const has = (c: CapabilityName) => tool.capabilities.includes(c) && task.grants.tools.includes(c);
  const grant: CapabilityGrant = {};
  if ((has('fs.read') || has('fs.write') || has('fs.list')) && workspaceRoot !== undefined) {
    grant.fs = { root: workspaceRoot, read: has('fs.read'), write: has('fs.write'), list: has('fs.list') };
  }
  if (has('http.fetch')) {
    grant.http = { allowedHosts: task.grants.hosts.filter((h) => task.resources.hosts.includes(h)) };
  }
  if (has('sql.query') || has('sql.exec')) {
    const databases: Record<string, string> = {};
    for (const name of task.grants.databases) {
      const path = task.resources.databases[name];
      if (path !== undefined) databases[name] = path;
    }
    grant.sql = { databases, query: has('sql.query'), exec: has('sql.exec') };
    const tables = tableGrantsOf(task);
    if (tables !== undefined) grant.sql.tables = tables;
  }
  return grant;
}

/** The task's table grants (`grants.tables`) by database, as the SQL capability takes them. */
export function tableGrantsOf(task: Pick<Task, 'grants'>): Record<string, Record<string, 'read' | 'write'>> | undefined {
  if (task.grants.tables === undefined || task.grants.tables.length === 0) return undefined;
  const out: Record<string, Record<string, 'read' | 'write'>> = {};
  for (const entry of task.grants.tables) {
    const { table, access } = typeof entry === 'string' ? { table: entry, access: 'write' as const } : entry;
    const dot = table.indexOf('.');
    const database = table.slice(0, dot);
    const name = table.slice(dot + 1).toLowerCase();
    const tables = (out[database] ??= {});
    if (tables[name] !== 'write') tables[name] = access;
  }
  return out;
}
