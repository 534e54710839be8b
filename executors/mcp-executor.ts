/**
 * The `mcp` executor: one `tools/call` on the server a pinned descriptor names, after the
 * server's current tool list has been checked against the pin (McpConnection.callTool).
 *
 * Invariant: only a tool of a pinned list, granted to the task, reaches a server, and only with
 * arguments that passed the tool's pinned input schema (when Warden can compile it; otherwise the
 * server's own validation is all there is, and the step says so in its error when it fails).
 * The result is returned as data to the agent (untrusted, like any tool output), bounded in size.
 */
import { realpath } from 'node:fs/promises';
import { McpError, RecoveryError, ToolError } from '../errors';
import { parseMcpWardenToolName } from '../mcp/mcp-tool-names';
import { valuesAt } from '../tools/argument-values';
import type { McpToolListing } from '../mcp/mcp-tool-listing';
import type { McpCancelOutcome, McpStartContext } from '../mcp/mcp-connection';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan } from '../telemetry/warden-span-attributes';
import { isStdioServer, type McpServer } from '../mcp/mcp-server-config';
import { overlayPathsOf, taskKeyOf } from '../recovery/recovery-paths';
import { openOverlay } from '../recovery/workspace-overlay';
import { assertOverlayBounded, assertWithinWorkspaceQuota, workspaceLimitMbOf } from '../recovery/overlay-volume';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';
import type { ToolDescriptor } from '../tools/tool-descriptor';
import type { McpConnectionPool } from './mcp-connection-pool';
import type { EgressWatch } from '../monitoring/egress-watch';
import type { EgressDecision } from '../sandbox/os/egress-proxy';
import { cutText } from '../cut-text';

/** Worker-side settings of the MCP executor. */
export interface McpExecutorDeps {
  pool: McpConnectionPool;
  /** Folder whose node_modules holds installed MCP server packages (`warden mcp install`). */
  packagesDir?: string;
  /** More host folders stdio servers see read-only. */
  extraReadOnlyPaths?: readonly string[];
  /** The worker's environment: the only source of the variables servers declare. */
  env: NodeJS.ProcessEnv;
  stateDir: string;
  /** What a task's servers may never see or change (worker/warden-resources.ts `protectedSetOf`). */
  protectedSetOf?: (task: Task) => Promise<{ folders: string[]; files: string[]; readOnly: string[] }>;
}

export interface McpCallInput {
  rootWorkflowId: string;
  rootRunId?: string;
  task: Task;
  /** Epoch ms of the task's deadline: the servers' lifetime. */
  deadlineAt: number;
  args: Record<string, unknown>;
  maxOutputBytes: number;
  /** The monitor's egress watch of the call's step (a stdio server's requests meanwhile are judged by it). */
  egressWatch?: EgressWatch;
  /** Told of a stdio server's requests while the call was in flight, however the call ends (the failure's details carry them: activities/call-outcome.ts). */
  reportEgress?: (egress: EgressDecision[]) => void;
  /**
   * The activity's cancellationSignal: on abort the server's request is cancelled, a server that
   * does not answer it within the grace has its session ended (a stdio server's process tree
   * killed), and the call throws the signal's reason; the span says how (`warden.mcp.cancel`).
   */
  signal?: AbortSignal;
  /** Told how a call that ended without its server's answer (cancelled, timed out) was stopped (`session-closed`: an HTTP server that never answered may still complete it). */
  onCancelled?: (outcome: McpCancelOutcome) => void;
  /**
   * Awaited once the server's connection is open and its listing checked, right before
   * `tools/call` is sent: the call's start record (recovery/call-starts.ts). A throw stops the
   * call unsent.
   */
  beforeSend?: () => Promise<void>;
}

/** A finished MCP call: what the agent gets, and what a stdio server did on the network meanwhile (for the monitor). */
export interface McpExecution {
  output: { content: unknown[]; structuredContent?: Record<string, unknown> };
  egress: EgressDecision[];
}

/** The server a descriptor's executor names, its MCP tool name and pin. */
export function mcpTargetOf(descriptor: ToolDescriptor): { server: string; tool: string; pin: string } {
  const executor = descriptor.executor as { kind: string; server?: unknown; tool?: unknown; pin?: unknown };
  if (executor.kind !== 'mcp' || typeof executor.server !== 'string' || typeof executor.tool !== 'string' || typeof executor.pin !== 'string') {
    throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${descriptor.name}" is not a pinned MCP tool`);
  }
  return { server: executor.server, tool: executor.tool, pin: executor.pin };
}

/** How a task's servers are started: its workspace overlay and the hosts a stdio server may reach. */
/** The pool's session of a task tree: its root workflow and, for trees keyed by run, the root's run (`#` is never in a chosen id: workflows/definitions.ts DERIVED_ID_SEPARATORS). */
export function mcpSessionKeyOf(rootWorkflowId: string, rootRunId?: string): string {
  return rootRunId === undefined ? rootWorkflowId : `${rootWorkflowId}#${rootRunId}`;
}

export async function startContextOf(deps: McpExecutorDeps, task: Task, rootWorkflowId: string, config: McpServer, rootRunId?: string): Promise<Omit<McpStartContext, 'lifetimeMs'>> {
  let workspace: McpStartContext['workspace'];
  if (task.resources.workspace !== undefined && isStdioServer(config) && config.workspace !== 'none') {
    const root = await realpath(task.resources.workspace).catch(() => {
      throw new McpError('ERR_MCP_UNAVAILABLE', `the workspace ${task.resources.workspace} does not exist`);
    });
    const taskKey = taskKeyOf(rootWorkflowId, rootRunId);
    await openOverlay({ stateDir: deps.stateDir, taskKey, workspace: root, volumeMb: workspaceLimitMbOf(task), owner: rootRunId === undefined ? undefined : { workflowId: rootWorkflowId, runId: rootRunId } });
    // The tree's bound on disk (recovery/overlay-volume.ts): no server runs over an unbounded overlay.
    await assertOverlayBounded(deps.stateDir, taskKey, task, `MCP server ${config.command}`);
    workspace = { root, overlayDir: overlayPathsOf(deps.stateDir, taskKey).dir, ...(deps.protectedSetOf === undefined ? {} : { protected: await deps.protectedSetOf(task) }) };
  }
  const allowedHosts = isStdioServer(config) ? config.hosts.filter((h) => task.grants.hosts.includes(h) && task.resources.hosts.includes(h)) : [];
  return {
    ...(workspace === undefined ? {} : { workspace }),
    env: deps.env,
    allowedHosts,
    ...(deps.packagesDir === undefined ? {} : { packagesDir: deps.packagesDir }),
    ...(deps.extraReadOnlyPaths === undefined ? {} : { extraReadOnlyPaths: deps.extraReadOnlyPaths }),
  };
}

/** Opens (or finds) every server the task declares and returns their pinned tool lists. */
export async function openTaskServers(deps: McpExecutorDeps, task: Task, rootWorkflowId: string, deadlineAt: number, rootRunId?: string, sessionWatch?: EgressWatch): Promise<McpToolListing[]> {
  const listings: McpToolListing[] = [];
  for (const [server, config] of Object.entries(task.tools.mcp ?? {})) {
    const context = await startContextOf(deps, task, rootWorkflowId, config, rootRunId);
    const connection = await deps.pool.connection(mcpSessionKeyOf(rootWorkflowId, rootRunId), server, config, { ...context, lifetimeMs: 0, ...(sessionWatch === undefined ? {} : { sessionWatch }) }, deadlineAt);
    listings.push(connection.listing);
  }
  return listings;
}

/** Runs one call of a pinned MCP tool; returns `{ content, structuredContent? }`. */
export async function executeMcpCall(deps: McpExecutorDeps, descriptor: ToolDescriptor, input: McpCallInput): Promise<McpExecution> {
  const target = mcpTargetOf(descriptor);
  const config = input.task.tools.mcp?.[target.server];
  if (config === undefined) throw new ToolError('ERR_TOOL_UNKNOWN', `MCP server "${target.server}" is not declared by this task`);
  const context = await startContextOf(deps, input.task, input.rootWorkflowId, config, input.rootRunId);
  // A server (re)started by this call is judged by its watch until the call is in flight.
  const connection = await deps.pool.connection(mcpSessionKeyOf(input.rootWorkflowId, input.rootRunId), target.server, config, { ...context, lifetimeMs: 0, ...(input.egressWatch === undefined ? {} : { sessionWatch: input.egressWatch }) }, input.deadlineAt);
  const timeoutMs = Math.min(durationToMs(config.timeout ?? input.task.limits.toolTimeout), durationToMs(input.task.limits.toolTimeout));
  const result = await connection.callTool(target.tool, input.args, { pin: target.pin, timeoutMs, verify: config.verify, ...(input.egressWatch === undefined ? {} : { egressWatch: input.egressWatch }), ...(input.signal === undefined ? {} : { signal: input.signal }),
    ...(input.beforeSend === undefined ? {} : { beforeSend: input.beforeSend }),
    ...(input.reportEgress === undefined ? {} : { reportEgress: input.reportEgress }),
    // Told how a call that ended without the server's answer (cancelled, timed out) was stopped.
    onCancelled: (outcome: McpCancelOutcome) => {
      annotateActiveSpan({ [WARDEN_ATTR.mcpCancel]: outcome });
      input.onCancelled?.(outcome);
    },
  });
  if (context.workspace !== undefined) assertWithinWorkspaceQuota(deps.stateDir, taskKeyOf(input.rootWorkflowId, input.rootRunId), input.task, `MCP tool ${descriptor.name}`);
  const output = { content: result.content, ...(result.structuredContent === undefined ? {} : { structuredContent: result.structuredContent }) };
  const size = Buffer.byteLength(JSON.stringify(output), 'utf8');
  if (size > input.maxOutputBytes) {
    throw new ToolError('ERR_TOOL_OUTPUT_TOO_LARGE', `MCP tool ${descriptor.name} returned ${size} bytes, more than ${input.maxOutputBytes}`);
  }
  if (result.isError) {
    const text = result.content
      .map((c) => (typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text' ? String((c as { text?: unknown }).text) : ''))
      .join(' ')
      .trim();
    throw new McpError('ERR_MCP_TOOL_FAILED', `MCP tool ${descriptor.name} reported an error: ${cutText(text, 2000) || '(no text)'}`, { details: { output } });
  }
  return { output, egress: result.egress ?? [] };
}

/**
 * The arguments of a compensating call for an MCP tool whose task file maps them
 * (`tools.mcp.<server>.tools.<tool>.compensate.args`), from the original call's `args` and
 * `output`; undefined when the original tool maps none (the compensating tool then gets Warden's
 * usual `{ compensationId, original }`). Throws RecoveryError ERR_COMPENSATION_FAILED when a
 * pointer finds nothing.
 */
export function mcpCompensationArgs(task: Task, original: { tool: string; args: unknown; output: unknown }): Record<string, unknown> | undefined {
  const target = parseMcpWardenToolName(original.tool);
  if (target === undefined) return undefined;
  const mapping = task.tools.mcp?.[target.server]?.tools[target.mcpName]?.compensate?.args;
  if (mapping === undefined || Object.keys(mapping).length === 0) return undefined;
  const source = { args: original.args, output: original.output };
  const args: Record<string, unknown> = {};
  for (const [name, pointer] of Object.entries(mapping)) {
    const values = valuesAt(source, pointer);
    if (values.length === 0) {
      throw new RecoveryError('ERR_COMPENSATION_FAILED', `cannot undo ${original.tool}: ${pointer} finds nothing in the original call (for argument "${name}")`, {
        details: { tool: original.tool, pointer },
      });
    }
    args[name] = pointer.includes('/*') ? values : values[0];
  }
  return args;
}
