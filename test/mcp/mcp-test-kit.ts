/**
 * Real MCP servers for tests: the npm packages installed as devDependencies (so nothing is
 * fetched at run time) and the fixtures in ./fixtures, plus a streamable-HTTP server on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { McpStartContext } from '../../mcp/mcp-connection';
import { workflowBundle } from '../../worker/workflow-bundle';
import { freePort } from '../temporal/ports';

export const REPO_ROOT = path.join(__dirname, '..', '..');
export const FIXTURES = path.join(__dirname, 'fixtures');

/** A start context for tests: the repository's node_modules as the MCP packages folder. */
export function testStartContext(extra: Partial<McpStartContext> = {}): McpStartContext {
  return { env: {}, allowedHosts: [], packagesDir: REPO_ROOT, extraReadOnlyPaths: [FIXTURES], lifetimeMs: 120_000, ...extra };
}

export interface HttpMcpServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** `@modelcontextprotocol/server-everything` in streamable-HTTP mode on a free loopback port. */
export async function startEverythingHttpServer(): Promise<HttpMcpServer> {
  const port = await freePort();
  const entry = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
  const child = spawn(process.execPath, [entry, 'streamableHttp'], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`listening on port ${port}`)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code}): ${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

// One port source for the whole suite: it never hands out the same port twice in a process.
export { freePort };

/** The text of the first text content item of a call result. */
export function textOf(result: { content: unknown[] }): string {
  const item = result.content.find((c): c is { type: 'text'; text: string } => typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text');
  return item?.text ?? '';
}

/**
 * Replays the histories of `workflowIds` (or of every workflow on `taskQueue`) against the current
 * workflow code; returns the failures ("<id>: <error>") and how many were replayed.
 */
export async function replayHistories(client: Client, source: { taskQueue: string } | { workflowIds: string[] }): Promise<{ failures: string[]; replayed: number }> {
  const ids: string[] = [];
  if ('workflowIds' in source) ids.push(...source.workflowIds);
  else for await (const execution of client.workflow.list({ query: `TaskQueue = "${source.taskQueue}"` })) ids.push(execution.workflowId);
  const histories = (async function* () {
    for (const workflowId of ids) yield { workflowId, history: await client.workflow.getHandle(workflowId).fetchHistory() };
  })();
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
  }
  return { failures, replayed };
}

/** A streamable-HTTP MCP server in this process whose tool `wait` never answers and ignores notifications/cancelled. */
export interface DeafHttpMcpServer {
  url: string;
  /** `host:port`, for a task's grants. */
  host: string;
  /** What the server saw, in order: `call wait`, `cancelled` (the notification), `DELETE` (session terminated), `session closed`. */
  events: string[];
  /** Resolves when `wait` was called. */
  waiting: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a DeafHttpMcpServer on a loopback port: one session per `initialize`, tools `wait` (holds
 * the request for good, as a server that cannot stop its job) and `ping`.
 */
export async function startDeafHttpMcpServer(): Promise<DeafHttpMcpServer> {
  const { createServer } = await import('node:http');
  const { randomUUID } = await import('node:crypto');
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { CallToolRequestSchema, CancelledNotificationSchema, ListToolsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const events: string[] = [];
  let called!: () => void;
  const waiting = new Promise<void>((resolve) => (called = resolve));
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  const http = createServer((req, res) => {
    if (req.method === 'DELETE') events.push('DELETE');
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (transport === undefined) {
      const fresh: InstanceType<typeof StreamableHTTPServerTransport> = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, fresh) });
      fresh.onclose = () => events.push('session closed');
      const server = new Server({ name: 'deaf-http', version: '1.0.0' }, { capabilities: { tools: {} } });
      server.setRequestHandler(ListToolsRequestSchema, async () => ({
        tools: [
          { name: 'wait', description: 'Waits for a job.', inputSchema: { type: 'object', properties: {} } },
          { name: 'ping', description: 'Answers pong.', inputSchema: { type: 'object', properties: {} } },
        ],
      }));
      server.setNotificationHandler(CancelledNotificationSchema, async () => void events.push('cancelled'));
      server.setRequestHandler(CallToolRequestSchema, async (request) => {
        if (request.params.name === 'ping') return { content: [{ type: 'text' as const, text: 'pong' }] };
        events.push('call wait');
        called();
        return new Promise<never>(() => undefined);
      });
      void server.connect(fresh);
      transport = fresh;
    }
    void transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    host: `127.0.0.1:${port}`,
    events,
    waiting,
    stop: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
