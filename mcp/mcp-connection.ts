/**
 * One connection to one MCP server, through the official SDK client: a stdio server started in
 * the OS sandbox, or a streamable-HTTP server. Opening it lists and pins the tool list; every
 * call first lists again and refuses (ERR_MCP_TOOLS_CHANGED) if the list no longer matches the
 * pin, so a server cannot change a tool's description, schema or annotations after the task has
 * been set up, whether or not it announces the change.
 *
 * The client declares no capabilities (no roots, sampling or elicitation): a server cannot ask
 * Warden, or through it the model or the user, for anything.
 *
 * A cancelled call stops before it is reported cancelled: MCP has no acknowledgment of
 * `notifications/cancelled` (the receiver should not answer the cancelled request at all), so a
 * call the server has not answered within the cancel grace is taken to be still running, and
 * the session is ended: a stdio server's sandbox (its whole process tree) is killed, an HTTP
 * server's session is terminated and its streams closed (what that server goes on doing Warden
 * cannot stop, and says so: `McpCancelOutcome`). The pool opens the server again for a later call.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { mcpSdk } from './mcp-sdk';
import { McpError } from '../errors';
import type { HostGrantEntry } from '../sandbox/sandbox-messages';
import { isStdioServer, type McpServer } from './mcp-server-config';
import { describeListingChange, pinToolListing, type McpToolListing, type RawMcpTool } from './mcp-tool-listing';
import { resolveServerCommand } from './resolve-server-command';
import { MAX_MESSAGE_BYTES, SandboxedStdioTransport } from './sandboxed-stdio-transport';
import { ServerEgress } from './server-egress';
import type { EgressWatch } from '../monitoring/egress-watch';
import type { EgressDecision } from '../sandbox/os/egress-proxy';
import { boundedFetch, ResponseTooLargeError } from './bounded-fetch';
import { deniedEnvReason } from '../secrets/reserved-env';
import { textTail } from '../cut-text';
import { libraryTimeoutMs, setLongTimeout, type LongTimeout } from '../long-timer';

export const WARDEN_CLIENT_INFO = { name: 'warden', version: '0.1.0' } as const;
const DEFAULT_START_TIMEOUT_MS = 30_000;
/** How long a cancelled call's server has to answer it before its session is ended. */
export const DEFAULT_MCP_CANCEL_GRACE_MS = 2000;

/**
 * How a cancelled call ended (the `warden.mcp.cancel` span attribute):
 * `not-sent` the request never reached the server; `answered` the server answered within the
 * grace; `server-killed` a stdio server that did not was killed with its process tree;
 * `session-closed` an HTTP server's session that did not was terminated: the tool may still run
 * on that server, beyond Warden's reach.
 */
export type McpCancelOutcome = 'not-sent' | 'answered' | 'server-killed' | 'session-closed';

/** A `tools/call` request as the transport saw it: sent (its JSON-RPC id), and answered. */
interface CallTrace {
  id?: string | number;
  answered: boolean;
  onAnswer?: () => void;
}
const MAX_LIST_PAGES = 16;

/** The workspace's protected set, for the OS sandbox to check and mount read-only (when given). */
function guardOf(workspace: NonNullable<McpStartContext['workspace']>) {
  return workspace.protected === undefined ? {} : { protected: workspace.protected };
}

export interface McpStartContext {
  /** The task's workspace (real path) and its overlay folder, for servers that see the workspace. */
  workspace?: { root: string; overlayDir: string; protected?: { folders: string[]; files: string[]; readOnly: string[] } };
  /** The worker's environment: the only source of the variables a server declares. */
  env: NodeJS.ProcessEnv;
  /** Hosts a stdio server may reach, already narrowed to the task's grants. */
  allowedHosts: readonly HostGrantEntry[];
  /** Folder whose node_modules holds installed MCP server packages. */
  packagesDir?: string;
  /** More host folders stdio servers see read-only (e.g. a folder of server scripts). */
  extraReadOnlyPaths?: readonly string[];
  /** How long a stdio server may live (until the task's deadline), in ms. */
  lifetimeMs: number;
  /** Time to start, initialise and list tools. Default 30 s. */
  startTimeoutMs?: number;
  /**
   * The watch a stdio server's requests are judged by before its first call (the session's
   * baseline: its hosts known, any other host held, mcp/server-egress.ts); without it nothing is
   * held before the first call (no usable baseline: no host is new).
   */
  sessionWatch?: EgressWatch;
}

/** The result of `tools/call` as Warden records it: plain JSON. */
export interface McpCallResult {
  content: unknown[];
  structuredContent?: Record<string, unknown>;
  isError: boolean;
  /** A stdio server's requests through its egress proxy while the call was in flight (not the agent's to see). */
  egress?: EgressDecision[];
}

export class McpConnection {
  readonly server: string;
  /** The listing pinned when the connection opened. */
  readonly listing: McpToolListing;
  readonly #client: Client;
  readonly #transport: Transport;
  /** A stdio server's requests, by call (an HTTP server's own requests are not Warden's to see). */
  #egress = new ServerEgress();
  readonly #transportName: string;
  readonly #overflow: Overflow;
  #closed = false;
  /** A cancelled call already ended the session (`#stopCancelled`): closing asks nothing more of the server. */
  #sessionEnded = false;
  #listChanged = false;
  /** Calls in flight by their params object (what the SDK puts in the request as is), then by JSON-RPC id. */
  readonly #traces = new WeakMap<object, CallTrace>();
  readonly #tracesById = new Map<string | number, CallTrace>();

  private constructor(server: string, client: Client, transport: Transport, transportName: string, listing: McpToolListing, overflow: Overflow) {
    this.server = server;
    this.#overflow = overflow;
    this.#client = client;
    this.#transport = transport;
    this.#transportName = transportName;
    this.listing = listing;
  }

  /**
   * Starts (stdio, in the OS sandbox) or reaches (HTTP) `server`, initialises an MCP session and
   * pins its tool list. Throws McpError ERR_MCP_UNAVAILABLE / ERR_MCP_NOT_INSTALLED /
   * ERR_MCP_PROTOCOL / ERR_MCP_NAME_CONFLICT, or SandboxError ERR_OS_SANDBOX_UNAVAILABLE.
   */
  static async open(server: string, config: McpServer, context: McpStartContext): Promise<McpConnection> {
    const overflow: Overflow = {};
    const egress = new ServerEgress(context.sessionWatch);
    const { transport, name } = transportFor(server, config, context, overflow, egress);
    const client = new (mcpSdk.client().Client)({ ...WARDEN_CLIENT_INFO }, { capabilities: {} });
    // An HTTP response past the message bound ends the session: the pending request fails now.
    overflow.onOverflow = () => void client.close().catch(() => undefined);
    const timeout = context.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    let connection: McpConnection | undefined;
    client.setNotificationHandler(mcpSdk.types().ToolListChangedNotificationSchema, () => {
      if (connection !== undefined) connection.#listChanged = true;
    });
    try {
      await client.connect(transport, { timeout });
      const listing = await listAll(server, name, client, timeout);
      connection = new McpConnection(server, client, transport, name, listing, overflow);
      connection.#egress = egress;
      connection.#traceCalls();
      transport.onclose = chain(transport.onclose, () => {
        if (connection !== undefined) connection.#closed = true;
      });
      return connection;
    } catch (error) {
      await client.close().catch(() => undefined);
      throw asMcpError(overflow.error ?? error, server, 'ERR_MCP_UNAVAILABLE', `cannot start or reach MCP server ${server}`, transport);
    }
  }

  /** False once the server is gone (exited, killed, disconnected). */
  get open(): boolean {
    return !this.#closed;
  }

  /** Whether the server announced `notifications/tools/list_changed` since the pin. */
  get announcedChange(): boolean {
    return this.#listChanged;
  }

  /** Lists the tools again and throws ERR_MCP_TOOLS_CHANGED unless they hash to `pin`. */
  async verify(pin: string, timeoutMs: number): Promise<void> {
    this.#assertOpen();
    let fresh: McpToolListing;
    try {
      fresh = await listAll(this.server, this.#transportName, this.#client, timeoutMs);
    } catch (error) {
      throw asMcpError(this.#overflow.error ?? error, this.server, 'ERR_MCP_PROTOCOL', `MCP server ${this.server} did not list its tools`, this.#transport);
    }
    // An announced change that turns out to change nothing is forgotten.
    if (fresh.hash === pin) this.#listChanged = false;
    if (fresh.hash !== pin) {
      const pinned = pin === this.listing.hash ? this.listing : { ...this.listing, tools: [] };
      throw new McpError(
        'ERR_MCP_TOOLS_CHANGED',
        `MCP server ${this.server} changed its tool list after it was pinned (${describeListingChange(pinned, fresh)}); its tools are refused for the rest of the task`,
        { details: { server: this.server, pinned: pin, current: fresh.hash } },
      );
    }
  }

  /**
   * Calls `mcpName` after checking the list against `pin`. Resolves with the server's result
   * (also when it says `isError`); throws McpError for a changed list, a dead server, a timeout
   * or a protocol failure. When `signal` aborts (the activity was cancelled), the request is
   * cancelled (the SDK sends the server `notifications/cancelled`); a server that has not
   * answered it within `cancelGraceMs` (default DEFAULT_MCP_CANCEL_GRACE_MS) has its session
   * ended (see the header), and only then does the call throw the signal's reason, after telling
   * `onCancelled` how the call ended. A call that fails otherwise with its request sent and not
   * answered (timed out: the SDK sent the cancellation; its session closed) is stopped the same
   * way, `onCancelled` told, before it throws.
   */
  async callTool(
    mcpName: string,
    args: Record<string, unknown>,
    options: { pin: string; timeoutMs: number; verify?: 'every-call' | 'on-change'; egressWatch?: EgressWatch; signal?: AbortSignal; cancelGraceMs?: number; onCancelled?: (outcome: McpCancelOutcome) => void; beforeSend?: () => Promise<void>; reportEgress?: (egress: EgressDecision[]) => void },
  ): Promise<McpCallResult> {
    // `on-change`: the list this connection pinned when it opened must be the task's, and the
    // server must not have announced a change since; otherwise it is listed again.
    if (options.verify !== 'on-change' || this.#listChanged || this.listing.hash !== options.pin) await this.verify(options.pin, options.timeoutMs);
    else this.#assertOpen();
    // The last point before the server can act on the call (its start record): a throw leaves it unsent.
    if (options.beforeSend !== undefined) {
      await options.beforeSend();
      this.#assertOpen();
    }
    const params = { name: mcpName, arguments: args };
    const trace: CallTrace = { answered: false };
    this.#traces.set(params, trace);
    try {
      // The server's requests while the call is in flight are judged by its step's watch and reported with it.
      const { result, egress } = await this.#egress.during(options.egressWatch, () => this.#client.callTool(params, undefined, { timeout: libraryTimeoutMs(options.timeoutMs), ...(options.signal === undefined ? {} : { signal: options.signal }) }), options.reportEgress);
      const content = Array.isArray(result.content) ? (result.content as unknown[]) : [];
      const structured = result.structuredContent;
      return {
        content,
        ...(structured !== undefined && structured !== null && typeof structured === 'object' ? { structuredContent: structured as Record<string, unknown> } : {}),
        isError: result.isError === true,
        ...(egress.length === 0 ? {} : { egress }),
      };
    } catch (error) {
      // Ended without the server's answer (cancelled, timed out, the session closed under it): the
      // server may still be running it, so it is stopped as a cancelled call is, and `onCancelled` told how.
      const cancelled = options.signal?.aborted === true;
      if (cancelled || (trace.id !== undefined && !trace.answered)) options.onCancelled?.(await this.#stopCancelled(trace, options.cancelGraceMs ?? DEFAULT_MCP_CANCEL_GRACE_MS));
      // Cancelled by the caller: once the tool has stopped, its reason (an activity's CancelledFailure), not a tool failure.
      if (cancelled) options.signal?.throwIfAborted();
      throw asMcpError(this.#overflow.error ?? error, this.server, 'ERR_MCP_TOOL_FAILED', `MCP tool ${mcpName} on ${this.server} failed`, this.#transport);
    } finally {
      if (trace.id !== undefined) this.#tracesById.delete(trace.id);
    }
  }

  /**
   * After a call was cancelled: waits up to `graceMs` for the server's answer to it, and ends the
   * session when none came (a stdio server's process tree killed, awaited; an HTTP session
   * terminated and closed).
   */
  async #stopCancelled(trace: CallTrace, graceMs: number): Promise<McpCancelOutcome> {
    if (trace.id === undefined) return 'not-sent';
    if (!trace.answered && !this.#closed) {
      let timer: LongTimeout | undefined;
      await new Promise<void>((resolve) => {
        trace.onAnswer = resolve;
        timer = setLongTimeout(resolve, graceMs);
      });
      timer?.clear();
    }
    if (trace.answered) return 'answered';
    const stdio = this.#transport instanceof SandboxedStdioTransport;
    if (!stdio) {
      // Ask the server to end the session (DELETE); whether it stops the tool is up to it.
      const http = this.#transport as { terminateSession?: () => Promise<void> };
      await withinGrace(() => http.terminateSession?.() ?? Promise.resolve(), graceMs);
    }
    // A stdio server that exited on its own is gone already; close() waits for its sandbox's cleanup either way.
    this.#sessionEnded = true;
    await this.close();
    return stdio ? 'server-killed' : 'session-closed';
  }

  /**
   * Watches the transport for `tools/call` requests going out (matched to their call by the params
   * object, which the SDK sends as is) and for the answers coming back, so a cancelled call knows
   * whether its server answered it.
   */
  #traceCalls(): void {
    const transport = this.#transport;
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      const request = message as { method?: unknown; id?: unknown; params?: unknown };
      if (request.method === 'tools/call' && (typeof request.id === 'string' || typeof request.id === 'number') && typeof request.params === 'object' && request.params !== null) {
        const trace = this.#traces.get(request.params);
        if (trace !== undefined && trace.id === undefined) {
          trace.id = request.id;
          this.#tracesById.set(request.id, trace);
        }
      }
      return send(message, options);
    };
    const receive = transport.onmessage;
    transport.onmessage = (message, extra) => {
      const response = message as { method?: unknown; id?: unknown };
      if (response.method === undefined && (typeof response.id === 'string' || typeof response.id === 'number')) {
        const trace = this.#tracesById.get(response.id);
        if (trace !== undefined) {
          trace.answered = true;
          trace.onAnswer?.();
        }
      }
      receive?.(message, extra);
    };
  }

  /** Ends the session; a stdio server's sandbox (its whole process tree) is killed. Idempotent. */
  async close(): Promise<void> {
    const unanswered = this.#closed || this.#sessionEnded ? [] : [...this.#tracesById].filter(([, trace]) => !trace.answered).map(([id]) => id);
    this.#closed = true;
    // Closed with calls in flight (the pool ends a session at the grant's expiry, the task's
    // deadline): an HTTP server is told, as for a cancelled call, before its streams close and the
    // calls fail: each call cancelled, then the session terminated (DELETE), each bounded by the
    // grace. A stdio server's process tree is killed by the close itself.
    if (unanswered.length > 0 && !(this.#transport instanceof SandboxedStdioTransport)) {
      const transport = this.#transport as Transport & { terminateSession?: () => Promise<void> };
      await withinGrace(() => Promise.all(unanswered.map((requestId) => transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'the session ended' } }))), DEFAULT_MCP_CANCEL_GRACE_MS);
      await withinGrace(() => transport.terminateSession?.() ?? Promise.resolve(), DEFAULT_MCP_CANCEL_GRACE_MS);
    }
    await this.#client.close().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#closed) {
      const exit = this.#transport instanceof SandboxedStdioTransport ? this.#transport.exit : undefined;
      const why = exit === undefined ? '' : ` (${exit.reason}${exit.exitCode === null ? '' : `, exit ${exit.exitCode}`}${tail(exit.stderrTail)})`;
      throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${this.server} is no longer running${why}`, { details: { server: this.server }, retryable: true });
    }
  }
}

/** What the bounded fetch reports: the first response past the bound, and who to tell. */
interface Overflow {
  error?: ResponseTooLargeError;
  onOverflow?: () => void;
}

function transportFor(server: string, config: McpServer, context: McpStartContext, overflow: Overflow, egress: ServerEgress): { transport: Transport; name: string } {
  if (!isStdioServer(config)) {
    const headers: Record<string, string> = {};
    if (config.bearerTokenEnv !== undefined) {
      const denied = deniedEnvReason(config.bearerTokenEnv, context.env);
      if (denied !== undefined) throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: bearerTokenEnv ${denied}`, { details: { server, variable: config.bearerTokenEnv } });
      const token = context.env[config.bearerTokenEnv];
      if (token === undefined || token === '') {
        throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: environment variable ${config.bearerTokenEnv} (its bearer token) is not set`, { details: { server } });
      }
      headers['authorization'] = `Bearer ${token}`;
    }
    const fetch = boundedFetch({
      maxBytes: MAX_MESSAGE_BYTES,
      onOverflow: (error) => {
        overflow.error ??= error;
        overflow.onOverflow?.();
      },
    });
    const transport = new (mcpSdk.httpClient().StreamableHTTPClientTransport)(new URL(config.url), { requestInit: { headers }, fetch });
    return { transport, name: config.url };
  }
  const env: Record<string, string> = { ...config.setEnv };
  for (const name of config.env) {
    const denied = deniedEnvReason(name, context.env);
    if (denied !== undefined) throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: env ${denied}`, { details: { server, variable: name } });
    const value = context.env[name];
    if (value === undefined) {
      throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: environment variable ${name} is declared but not set in the worker's environment`, { details: { server, variable: name } });
    }
    env[name] = value;
  }
  const resolved = resolveServerCommand(server, config.command, config.args, context.packagesDir);
  const workspace =
    config.workspace === 'none' || context.workspace === undefined
      ? undefined
      : config.workspace === 'overlay'
        ? { mode: 'overlay' as const, root: context.workspace.root, overlayDir: context.workspace.overlayDir, ...guardOf(context.workspace) }
        : { mode: 'read-only' as const, root: context.workspace.root, ...guardOf(context.workspace) };
  const transport = new SandboxedStdioTransport({
    command: resolved.command,
    args: resolved.args,
    cwd: config.cwd,
    env,
    ...(workspace === undefined ? {} : { workspace }),
    readOnlyPaths: [...resolved.readOnlyPaths, ...(context.extraReadOnlyPaths ?? [])],
    pathPrepend: resolved.pathPrepend,
    allowedHosts: [...context.allowedHosts],
    limits: {
      wallTimeMs: Math.max(1000, context.lifetimeMs),
      cpuTimeMs: Math.max(1000, context.lifetimeMs),
      memoryMb: config.memoryMb,
      maxProcesses: config.maxProcesses,
    },
  }, { egressGate: egress.gate, onEgress: egress.record, onEgressBytes: egress.grow });
  return { transport, name: 'stdio' };
}

async function listAll(server: string, transport: string, client: Client, timeout: number): Promise<McpToolListing> {
  const tools: RawMcpTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page += 1) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: libraryTimeoutMs(timeout) });
    tools.push(...(result.tools as RawMcpTool[]));
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  if (cursor !== undefined) throw new McpError('ERR_MCP_PROTOCOL', `MCP server ${server} lists tools over more than ${MAX_LIST_PAGES} pages`, { details: { server } });
  const info = client.getServerVersion();
  return pinToolListing(server, transport, tools, info === undefined ? undefined : { name: String(info.name), version: String(info.version) });
}

function asMcpError(error: unknown, server: string, code: 'ERR_MCP_UNAVAILABLE' | 'ERR_MCP_PROTOCOL' | 'ERR_MCP_TOOL_FAILED', prefix: string, transport: Transport): Error {
  if (error instanceof McpError || (error as { code?: unknown })?.code === 'ERR_OS_SANDBOX_UNAVAILABLE') return error as Error;
  if (error instanceof ResponseTooLargeError) return new McpError('ERR_MCP_PROTOCOL', `${prefix}: ${error.message}`, { details: { server }, cause: error });
  const exit = transport instanceof SandboxedStdioTransport ? transport.exit : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const timedOut = /timed out|timeout/i.test(message);
  return new McpError(exit !== undefined ? 'ERR_MCP_UNAVAILABLE' : code, `${prefix}: ${message}${exit === undefined ? '' : ` (server ${exit.reason}${exit.exitCode === null ? '' : `, exit ${exit.exitCode}`}${tail(exit.stderrTail)})`}`, {
    details: { server },
    retryable: timedOut,
    cause: error,
  });
}

function tail(stderr: string): string {
  const text = stderr.trim().split('\n').slice(-3).join(' / ');
  return text === '' ? '' : `: ${textTail(text, 500)}`;
}

function chain(first: (() => void) | undefined, second: () => void): () => void {
  return () => {
    first?.();
    second();
  };
}

/** Waits for `work` at most `graceMs` ms; its failure, or its still running past that, is not the caller's concern (a server told to stop may not answer). */
async function withinGrace(work: () => Promise<unknown>, graceMs: number): Promise<void> {
  let timer: LongTimeout | undefined;
  await Promise.race([work().catch(() => undefined), new Promise((resolve) => (timer = setLongTimeout(() => resolve(undefined), graceMs)))]);
  timer?.clear();
}
