/**
 * Tool sources a task brings besides Warden's own: its MCP servers. Opening them starts (stdio,
 * in the OS sandbox) or reaches (HTTP) each server and pins its tool list; the pins go to the
 * workflow (history) and onto this activity's span (custody). Closing them ends the sessions and
 * kills the stdio servers' process trees, before the task's files are committed or rolled back.
 */
import { McpError } from '../errors';
import { mcpSessionKeyOf, openTaskServers } from '../executors/mcp-executor';
import type { McpToolListing } from '../mcp/mcp-tool-listing';
import type { Task } from '../task/task-schema';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan } from '../telemetry/warden-span-attributes';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';
import { protectedSetForCall } from './run-tool';
import type { EgressWatch } from '../monitoring/egress-watch';
import { usableBaseline } from '../monitoring/score-action';

/**
 * The watch a task's stdio MCP servers are judged by before their first call: the hosts the
 * agent's learnt baseline knows; any other host is held (nothing could score it yet) and reported
 * with the server's next call. None without a usable baseline (no host is new then). Read here,
 * by the worker: it never enters history.
 */
async function sessionWatchOf(deps: ActivityDeps, task: Task): Promise<EgressWatch | undefined> {
  if (deps.monitor === undefined || Object.keys(task.tools.mcp ?? {}).length === 0) return undefined;
  const baseline = usableBaseline((await deps.monitor.baselines.get(task.agent.name).catch(() => undefined)) ?? undefined);
  return baseline === undefined ? undefined : { knownHosts: [...baseline.hosts].sort(), hold: 'all', agent: baseline.agent };
}

export interface OpenToolSourcesInput {
  rootWorkflowId: string;
  rootRunId?: string;
  task: Task;
  /** Epoch ms: the task's deadline, after which every server is closed. */
  deadlineAt: number;
}

export interface CloseToolSourcesInput {
  rootWorkflowId: string;
  rootRunId?: string;
}

export function createToolSourceActivities(deps: ActivityDeps) {
  return {
    /** Opens every MCP server of the task and returns the pinned tool lists. */
    async openToolSources(input: OpenToolSourcesInput): Promise<McpToolListing[]> {
      return atActivityBoundary(async () => {
        const mcp = deps.mcp;
        if (mcp === undefined || deps.stateDir === undefined) {
          throw new McpError('ERR_MCP_UNAVAILABLE', 'this worker was created without MCP support (no connection pool or state folder)');
        }
        const listings = await openTaskServers(
          { ...mcp, env: deps.env ?? process.env, stateDir: deps.stateDir, protectedSetOf: (task) => protectedSetForCall(deps, task) },
          input.task,
          input.rootWorkflowId,
          input.deadlineAt,
          input.rootRunId,
          await sessionWatchOf(deps, input.task),
        );
        // Stored once, by pin: later activities get the task with the digests only (pinned-listings.ts).
        if (deps.listings !== undefined) for (const listing of listings) await deps.listings.put(listing);
        annotateActiveSpan({
          [WARDEN_ATTR.mcpServers]: listings.map((l) => l.server),
          [WARDEN_ATTR.mcpPins]: listings.map((l) => `${l.server}:${l.hash}`),
          [WARDEN_ATTR.mcpTools]: listings.flatMap((l) => l.tools.map((t) => t.name)),
        });
        return listings;
      });
    },

    /** Closes the task's MCP servers on this worker (idempotent; other workers close theirs at the deadline). */
    async closeToolSources(input: CloseToolSourcesInput): Promise<{ closed: string[] }> {
      return atActivityBoundary(async () => ({ closed: (await deps.mcp?.pool.closeSession(mcpSessionKeyOf(input.rootWorkflowId, input.rootRunId))) ?? [] }));
    },
  };
}
