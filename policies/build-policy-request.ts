/**
 * The policy request of one proposed action, built the same way when the workflow asks before a
 * call and when a backtest replays recorded calls under another pack.
 */
import { parseScope } from '../identity/call-scope';
import type { Task } from '../task/task-schema';
import { scopeOfCall } from '../tools/call-scope';
import { PolicyRequestSchema, type PolicyRequest, type ToolEffect } from './engine/policy-request';
import { classifyArguments } from './engine/provenance';

export interface PolicyRequestContext {
  task: Task;
  workflowId: string;
  depth: number;
  /** Agent names from the root down to this agent's parent. */
  chain: string[];
  tool: string;
  args: Record<string, unknown>;
  /** Outputs of earlier steps: values found only there did not come from the user. */
  priorOutputs: unknown[];
  /** What the call does or did, as Warden measured it (never the agent's claim). */
  effect: ToolEffect | undefined;
  now: string;
}

/** The effect Warden can read off the arguments alone (writes and fetches); undefined otherwise. */
export function effectFromArgs(tool: string, args: Record<string, unknown>): ToolEffect | undefined {
  if (tool === 'fs.write' && typeof args.path === 'string' && typeof args.content === 'string') {
    return { path: args.path, bytes: Buffer.byteLength(args.content), files: 1 };
  }
  if (tool === 'http.fetch' && typeof args.url === 'string') {
    try {
      const url = new URL(args.url);
      return { host: url.host, method: typeof args.method === 'string' ? args.method.toUpperCase() : 'GET' };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function resourcesOf(tool: string, args: Record<string, unknown>) {
  const resources = { paths: [] as string[], hosts: [] as string[], databases: [] as string[] };
  if (tool.startsWith('spawn:')) return resources;
  try {
    for (const scope of scopeOfCall(tool, args)) {
      const parsed = parseScope(scope);
      if (parsed.host !== undefined) resources.hosts.push(parsed.host);
      else if (parsed.database !== undefined) resources.databases.push(parsed.database);
      else if (parsed.action.startsWith('fs.')) resources.paths.push(parsed.resource);
    }
  } catch {
    // Arguments that name no valid resource are rejected when the tool runs.
  }
  return resources;
}

export function buildPolicyRequest(context: PolicyRequestContext): PolicyRequest {
  return PolicyRequestSchema.parse({
    tool: context.tool,
    args: context.args,
    resources: resourcesOf(context.tool, context.args),
    agent: { name: context.task.agent.name, depth: context.depth, chain: context.chain, id: context.workflowId },
    ...(context.effect === undefined ? {} : { effect: context.effect }),
    provenance: classifyArguments(context.args, { intent: context.task.intent, toolOutputs: context.priorOutputs }),
    now: context.now,
  });
}
