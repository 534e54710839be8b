/**
 * The tools one task can see, in a single shape whether built-in or user-defined: what a model is
 * shown, what the sandbox runs, and which host capabilities the call receives.
 *
 * Invariant: a call's capabilities are the tool's declared ones narrowed to the task's resources
 * and grants; nothing the agent passes as arguments can widen them.
 */
import type { CapabilityGrant } from '../sandbox/sandbox-messages';
import type { BuiltinToolName, Task } from '../task/task-schema';
import type { ToolSpec } from '../drivers/model-driver';
import { getBuiltinTool } from './builtin-tools';

export interface ResolvedTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  source: string;
  capabilities: readonly BuiltinToolName[];
  builtin: boolean;
  timeout?: string;
  memoryMb?: number;
}

/** The declared tool named `name`, or undefined when the task does not declare it. */
export function resolveTool(task: Task, name: string): ResolvedTool | undefined {
  if ((task.tools.builtin as readonly string[]).includes(name)) {
    const tool = getBuiltinTool(name as BuiltinToolName);
    return { ...tool, capabilities: tool.capabilities, builtin: true };
  }
  const custom = task.tools.custom.find((t) => t.name === name);
  if (custom === undefined) return undefined;
  return {
    name: custom.name,
    description: custom.description,
    inputSchema: custom.input,
    source: custom.source,
    capabilities: custom.capabilities,
    builtin: false,
    ...(custom.timeout === undefined ? {} : { timeout: custom.timeout }),
    ...(custom.memoryMb === undefined ? {} : { memoryMb: custom.memoryMb }),
  };
}

/** What a model driver offers the agent: every declared tool (grants are enforced, not hidden). */
export function toolSpecsOf(task: Task): ToolSpec[] {
  const names = [...task.tools.builtin, ...task.tools.custom.map((t) => t.name)];
  return names.map((name) => {
    const tool = resolveTool(task, name)!;
    return { name: tool.name, description: tool.description, inputSchema: tool.inputSchema };
  });
}

/**
 * The host capabilities one call of `tool` receives. `workspaceRoot` is the real path of the task's
 * workspace (resolved by the caller, which owns the file system).
 */
export function capabilityGrantFor(task: Task, tool: ResolvedTool, workspaceRoot: string | undefined): CapabilityGrant {
  const has = (c: BuiltinToolName) => tool.capabilities.includes(c);
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
  }
  return grant;
}
