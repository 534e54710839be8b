/**
 * Warden as an MCP server in front of an existing agent (`warden mcp serve`): one MCP session is
 * one Warden task. The session's `initialize` starts the task workflow (its agent recorded as the
 * connecting client, by `clientInfo`); `tools/list` offers the task's granted tools (built-in,
 * user-defined and its MCP servers' pinned tools); each `tools/call` is a step of the workflow
 * (an Update), guarded like any model action: grant check, policy, approval (the call waits for a
 * human), per-call credential, custody, compensation. Closing the session ends the task, which
 * then commits or rolls back as usual.
 *
 * Built with the SDK's own `Server`; stdio and streamable-HTTP transports both carry it.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CancelledFailure, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { wellFormedJson } from '../custody/well-formed-json';
import { cutText } from '../cut-text';
import { mcpSdk } from './mcp-sdk';
import { agentTaskResult, startAgentTask } from '../client/start-agent-task';
import type { PendingApproval, StepRecord, TaskResult } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { agentTask } from '../workflows/agent-task';
import { endSessionSignal, sessionCallUpdate, sessionToolsQuery, taskStateQuery, type SessionTool } from '../workflows/definitions';

export const WARDEN_SERVER_INFO = { name: 'warden', version: '0.1.0' } as const;
const TOOLS_POLL_MS = 100;
const TOOLS_WAIT_MS = 120_000;
/** How often a waiting call looks for an approval hold to announce (ms). */
const HOLD_POLL_MS = 500;

export interface TaskSessionOptions {
  client: Client;
  taskQueue: string;
  /** The task, with `agent.model.driver: mcp-client`. */
  task: Task;
  /** Called with the workflow id once the task has started, and with its result when it ends. */
  onStarted?: (workflowId: string) => void;
  onEnded?: (result: TaskResult) => void;
  log?: (line: string) => void;
}

export interface TaskSession {
  server: Server;
  /** The task's workflow, once the client has initialised the session. */
  readonly handle: WorkflowHandle<typeof agentTask> | undefined;
  /** Ends the task (as if the client disconnected) and resolves with its result; undefined when it never started. */
  end(reason: string): Promise<TaskResult | undefined>;
  /**
   * Cancels the task (the server is being stopped, e.g. by a signal) and starts none after.
   * `requested`: settles once the cancellation reached the server (or there was no task to
   * cancel); `ended`: the task's result, undefined when it never started or its workflow closed
   * as Cancelled (logged).
   */
  cancel(): { requested: Promise<void>; ended: Promise<TaskResult | undefined> };
}

/** An MCP server for one session of `options.task`. Connect it to a transport; the task starts on `initialize`. */
export function createTaskSession(options: TaskSessionOptions): TaskSession {
  const { CallToolRequestSchema, ListToolsRequestSchema } = mcpSdk.types();
  const server = new (mcpSdk.server().Server)({ ...WARDEN_SERVER_INFO }, { capabilities: { tools: {} }, instructions: instructionsOf(options.task) });
  let handle: WorkflowHandle<typeof agentTask> | undefined;
  let started: Promise<WorkflowHandle<typeof agentTask>> | undefined;
  let ended: Promise<TaskResult | undefined> | undefined;
  let cancelled: ReturnType<TaskSession['cancel']> | undefined;

  const start = (): Promise<WorkflowHandle<typeof agentTask>> => {
    // A session being stopped starts no task (an `initialize` that arrives with the signal).
    if (cancelled !== undefined && started === undefined) return Promise.reject(new Error('the server is stopping'));
    started ??= (async () => {
      // The client's words, untrusted: made well-formed at entry (a name may hold a lone surrogate
      // as sent), then cut without splitting a pair; the model id reaches the grant, the result and
      // the receipt, all canonical JSON (RFC 8785 refuses lone surrogates).
      const clientInfo = wellFormedJson({ name: server.getClientVersion()?.name, version: server.getClientVersion()?.version }).value;
      const text = (value: unknown, max: number): string => (typeof value === 'string' ? cutText(value, max) : '');
      const model = { driver: 'mcp-client' as const, id: text(clientInfo.name, 200) || 'mcp-client', version: text(clientInfo.version, 100) || 'unversioned' };
      const task: Task = { ...options.task, agent: { ...options.task.agent, model } };
      handle = await startAgentTask(options.client, task, { taskQueue: options.taskQueue, workflowId: `warden-mcp-${task.agent.name}-${randomUUID()}` });
      options.onStarted?.(handle.workflowId);
      return handle;
    })();
    return started;
  };

  server.oninitialized = () => {
    start().catch((error) => options.log?.(`cannot start the task: ${(error as Error).message}`));
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await grantedTools(await start());
    return {
      tools: tools.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema as { type: 'object' }, annotations: tool.annotations })),
    };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const workflow = await start();
    let step: StepRecord;
    try {
      // The client's call enters history here: well-formed, as a model's turn (custody/well-formed-json.ts).
      const call = wellFormedJson({ tool: request.params.name, args: (request.params.arguments ?? {}) as Record<string, unknown>, callId: String(extra.requestId) }).value;
      const running = workflow.executeUpdate(sessionCallUpdate, { args: [call] });
      const progressToken = request.params._meta?.progressToken;
      void announceHolds(workflow, running, extra.signal, (pending) => {
        const line = `${pending.tool} is held for approval (${pending.rules.join('; ')}): \`warden approve ${workflow.workflowId} ${pending.requestId}\` or \`warden deny …\`, until ${pending.expiresAt}`;
        options.log?.(line);
        // The client asked for progress (`_meta.progressToken`): told now, so it need not just time out.
        if (progressToken !== undefined) {
          void extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: 0, message: line } }).catch(() => undefined);
        }
      });
      step = await running;
    } catch (error) {
      return { isError: true, content: [{ type: 'text', text: `the call was not run: ${messageOf(error)}` }] };
    }
    return callResultOf(step, workflow.workflowId);
  });

  const session: TaskSession = {
    server,
    get handle() {
      return handle;
    },
    end(reason) {
      // A cancelled session is not ended as well: its transport closing after the cancellation
      // would otherwise signal the task to end (commit) while its cancellation runs.
      if (cancelled !== undefined) return cancelled.ended;
      ended ??= (async () => {
        if (started === undefined) return undefined;
        const workflow = await started.catch(() => undefined);
        if (workflow === undefined) return undefined;
        await workflow.signal(endSessionSignal, { reason }).catch(() => undefined);
        // A task that did not complete closes as Failed and carries its result: the session's result either way.
        const result = await agentTaskResult(workflow);
        options.onEnded?.(result);
        return result;
      })();
      return ended;
    },
    cancel() {
      if (cancelled !== undefined) return cancelled;
      const workflow = started === undefined ? Promise.resolve(undefined) : started.catch(() => undefined);
      const requested = workflow.then(async (handle) => {
        // A task that already closed (the client's end came first) has nothing to cancel.
        await handle?.cancel().catch(() => undefined);
      });
      cancelled = {
        requested,
        ended: requested.then(async () => {
          const handle = await workflow;
          if (handle === undefined) return undefined;
          let result: TaskResult;
          try {
            result = await agentTaskResult(handle);
          } catch (error) {
            // A task whose workflow closed as Temporal's Cancelled carries no result of its own.
            if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
              options.log?.(`task ${handle.workflowId} cancelled`);
              return undefined;
            }
            throw error;
          }
          options.onEnded?.(result);
          return result;
        }),
      };
      return cancelled;
    },
  };
  return session;
}

/**
 * Calls `announce` once for each approval the task holds while `running` (one session call)
 * waits, polling the task's state every HOLD_POLL_MS; stops when the call settles or the client
 * cancels it. A query that fails is skipped (the next poll asks again).
 */
async function announceHolds(workflow: WorkflowHandle<typeof agentTask>, running: Promise<unknown>, cancelled: AbortSignal, announce: (pending: PendingApproval) => void): Promise<void> {
  let settled = false;
  const done = running.then(
    () => (settled = true),
    () => (settled = true),
  );
  const seen = new Set<string>();
  while (!settled && !cancelled.aborted) {
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS).unref())]);
    if (settled || cancelled.aborted) return;
    const state = await workflow.query(taskStateQuery).catch(() => undefined);
    for (const pending of state?.pendingApprovals ?? []) {
      if (seen.has(pending.requestId)) continue;
      seen.add(pending.requestId);
      announce(pending);
    }
  }
}

/** The step as an MCP tool result: denied or failed steps are tool errors the agent reads. */
export function callResultOf(step: StepRecord, workflowId: string): CallToolResult {
  const meta = { 'warden/workflowId': workflowId, 'warden/step': step.index, 'warden/decision': step.decision };
  if (step.decision === 'deny' || step.error !== undefined) {
    const code = step.error?.code ?? 'ERR_POLICY_DENIED';
    return { isError: true, content: [{ type: 'text', text: `${code}: ${step.error?.message ?? step.reason}` }], _meta: meta };
  }
  const output = step.output;
  if (isMcpOutput(output)) {
    return { content: output.content as CallToolResult['content'], ...(output.structuredContent === undefined ? {} : { structuredContent: output.structuredContent }), _meta: meta };
  }
  return { content: [{ type: 'text', text: typeof output === 'string' ? output : JSON.stringify(output ?? null) }], _meta: meta };
}

function isMcpOutput(output: unknown): output is { content: unknown[]; structuredContent?: Record<string, unknown> } {
  return typeof output === 'object' && output !== null && Array.isArray((output as { content?: unknown }).content);
}

/** The task's granted tools, once it has begun (its MCP servers pinned). */
async function grantedTools(handle: WorkflowHandle<typeof agentTask>): Promise<SessionTool[]> {
  const until = Date.now() + TOOLS_WAIT_MS;
  for (;;) {
    let tools: SessionTool[] | null = null;
    try {
      tools = await handle.query(sessionToolsQuery);
    } catch (error) {
      // Not started yet (no worker has run its first task), or already closed.
      const description = await handle.describe().catch(() => undefined);
      if (description !== undefined && description.status.name !== 'RUNNING') {
        const result = await agentTaskResult(handle).catch((e: unknown) => ({ status: 'failed', reason: messageOf(e) }));
        throw new Error(`the task ended (${result.status}${'reason' in result && result.reason ? `: ${result.reason}` : ''}) before it offered tools`);
      }
      if (Date.now() > until) throw error;
    }
    if (tools !== null) return tools;
    if (Date.now() > until) throw new Error('the task did not begin in time');
    await new Promise((resolve) => setTimeout(resolve, TOOLS_POLL_MS));
  }
}

function instructionsOf(task: Task): string {
  return `Every tool call you make here is a step of a Warden task for ${task.user}: "${task.intent}". Calls are checked against the task's grants and policies; some wait for a human's approval; file writes are kept apart until the session ends.`;
}

function messageOf(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  if (cause instanceof Error && cause.message !== '') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** The SDK's stdio server transport on this process's stdin and stdout. */
export function stdioServerTransport(): StdioServerTransport {
  return new (mcpSdk.stdioServer().StdioServerTransport)();
}

export interface HttpTaskServer {
  url: string;
  port: number;
  /**
   * The bearer token every request must carry (`Authorization: Bearer <token>`): the one given, or
   * a generated one (256 random bits, base64url). Undefined only with `allowUnauthenticated`.
   */
  readonly bearerToken: string | undefined;
  /** Sessions open now. */
  readonly sessions: number;
  /**
   * Stops the server as a signal does (`warden mcp serve` on SIGINT/SIGTERM/SIGHUP): no new
   * session is opened, and every session's task, initialized or not, is cancelled (its
   * compensations run) rather than ended. `requested` settles once every cancellation reached
   * the server; `ended` once every task closed. Idempotent.
   */
  cancel(): { requested: Promise<void>; ended: Promise<void> };
  /** Ends every open session as its client's close would (the task commits), then stops listening. */
  close(): Promise<void>;
}

/** Shortest bearer token `serveTaskOverHttp` accepts (characters). */
export const MIN_BEARER_TOKEN_CHARS = 16;

export interface HttpServeOptions {
  port?: number;
  path?: string;
  /** The token clients must present; generated when absent. At least MIN_BEARER_TOKEN_CHARS characters. */
  bearerToken?: string;
  /**
   * Serve without any credential: any local process (other users, containers on the host network,
   * other tools' sandboxes reaching loopback) can then open sessions of the task. Explicit only.
   */
  allowUnauthenticated?: boolean;
}

/** A fresh bearer token: 256 random bits, base64url (RFC 6750 `b64token` characters). */
export function generateBearerToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Serves `options.task` over MCP streamable HTTP on loopback: each MCP session is one task.
 * Only `127.0.0.1` is listened on, and the Host header must name it (DNS-rebinding protection).
 * Every request must carry `Authorization: Bearer <token>` (RFC 6750), compared in constant time:
 * the given token or a generated one (`HttpTaskServer.bearerToken`), so other local users and
 * processes cannot drive the task; only `allowUnauthenticated: true` serves without one.
 * Throws TypeError for a token shorter than MIN_BEARER_TOKEN_CHARS or both options at once.
 */
export async function serveTaskOverHttp(options: TaskSessionOptions & HttpServeOptions): Promise<HttpTaskServer> {
  const path = options.path ?? '/mcp';
  if (options.allowUnauthenticated === true && options.bearerToken !== undefined) throw new TypeError('serveTaskOverHttp: bearerToken and allowUnauthenticated exclude each other');
  if (options.bearerToken !== undefined && options.bearerToken.length < MIN_BEARER_TOKEN_CHARS) {
    throw new TypeError(`serveTaskOverHttp: a bearer token needs at least ${MIN_BEARER_TOKEN_CHARS} characters`);
  }
  const bearerToken = options.allowUnauthenticated === true ? undefined : (options.bearerToken ?? generateBearerToken());
  const expected = bearerToken === undefined ? undefined : Buffer.from(`Bearer ${bearerToken}`, 'utf8');
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; session: TaskSession }>();
  // Every session created, initialized or not: a signal cancels a task whose `initialize` is in flight too.
  const live = new Set<TaskSession>();
  let cancelling: ReturnType<HttpTaskServer['cancel']> | undefined;
  let port = 0;
  const httpServer = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname !== path) {
        res.writeHead(404).end();
        return;
      }
      if (expected !== undefined) {
        const given = Buffer.from(req.headers.authorization ?? '', 'utf8');
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'unauthorized' }, id: null }));
          return;
        }
      }
      const id = req.headers['mcp-session-id'];
      const known = typeof id === 'string' ? sessions.get(id) : undefined;
      if (known !== undefined) {
        await known.transport.handleRequest(req, res);
        return;
      }
      if (id !== undefined || req.method !== 'POST') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'unknown session' }, id: null }));
        return;
      }
      if (cancelling !== undefined) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'the server is stopping' }, id: null }));
        return;
      }
      const session = createTaskSession(options);
      live.add(session);
      const transport: StreamableHTTPServerTransport = new (mcpSdk.httpServer().StreamableHTTPServerTransport)({
        sessionIdGenerator: () => randomUUID(),
        enableDnsRebindingProtection: true,
        allowedHosts: [`127.0.0.1:${port}`, `localhost:${port}`],
        onsessioninitialized: (sessionId) => {
          sessions.set(sessionId, { transport, session });
        },
        onsessionclosed: (sessionId) => {
          sessions.delete(sessionId);
          void session.end('the client closed the session').catch(() => undefined); // an end that fails must not end the server
        },
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
        void session.end('the session closed').catch(() => undefined);
        live.delete(session);
      };
      await session.server.connect(transport);
      await transport.handleRequest(req, res);
    })().catch((error) => {
      options.log?.(`MCP request failed: ${messageOf(error)}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    bearerToken,
    get sessions() {
      return sessions.size;
    },
    cancel() {
      if (cancelling !== undefined) return cancelling;
      const cancels = [...live].map((session) => session.cancel());
      cancelling = {
        requested: Promise.all(cancels.map((c) => c.requested)).then(() => undefined),
        // Each result (or failure to cancel) is logged by the session; one that fails does not stop the others.
        ended: Promise.all(cancels.map((c) => c.ended.catch((error: unknown) => options.log?.(`could not cancel a session's task: ${messageOf(error)}`)))).then(() => undefined),
      };
      return cancelling;
    },
    async close() {
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.all(open.map(({ session, transport }) => Promise.all([session.end('the server stopped'), transport.close()])));
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
