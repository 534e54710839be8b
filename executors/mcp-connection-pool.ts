/**
 * The worker's open MCP connections, by task tree and server. A connection is opened when its
 * task starts (`openToolSources`) and reused by every call; a call that lands on a worker without
 * it (another worker, or after a restart) opens it again and must find the very list that was
 * pinned. Connections end when the task ends (`closeToolSources`), at the task's deadline (a
 * timer here, also when the workflow never gets to close them), or when the worker stops.
 */
import { McpError } from '../errors';
import { McpConnection, type McpStartContext } from '../mcp/mcp-connection';
import type { McpServer } from '../mcp/mcp-server-config';
import { setLongTimeout, type LongTimeout } from '../long-timer';

interface Entry {
  connection: Promise<McpConnection>;
  deadline: LongTimeout;
}

export class McpConnectionPool {
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  /** The open connection of `session`'s `server`, opened now if needed. `deadlineAt` (epoch ms) ends it. */
  async connection(session: string, server: string, config: McpServer, context: McpStartContext, deadlineAt: number): Promise<McpConnection> {
    if (this.#closed) throw new McpError('ERR_MCP_UNAVAILABLE', 'the worker is shutting down', { retryable: true });
    const key = keyOf(session, server);
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      const connection = await existing.connection.catch(() => undefined);
      if (connection?.open === true) return connection;
      this.#drop(key, existing);
    }
    const opening = McpConnection.open(server, config, { ...context, lifetimeMs: Math.max(1000, deadlineAt - Date.now()) });
    // A deadline up to 30 days away: a long timer (a bare one past 2^31 - 1 ms fires at once).
    const deadline = setLongTimeout(() => void this.#onDeadline(session, server, deadlineAt), Math.max(0, deadlineAt - Date.now())).unref();
    const entry: Entry = { connection: opening, deadline };
    this.#entries.set(key, entry);
    try {
      return await opening;
    } catch (error) {
      if (this.#entries.get(key) === entry) this.#drop(key, entry);
      throw error;
    }
  }

  /** Closes one server of a session (idempotent). */
  async closeServer(session: string, server: string): Promise<void> {
    const key = keyOf(session, server);
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#drop(key, entry);
    const connection = await entry.connection.catch(() => undefined);
    await connection?.close();
  }

  /** Closes every server of a session; returns the names closed. */
  async closeSession(session: string): Promise<string[]> {
    const prefix = `${session}\u0000`;
    const servers = [...this.#entries.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    await Promise.all(servers.map((server) => this.closeServer(session, server)));
    return servers;
  }

  /** Sessions with an open connection (for tests and diagnostics). */
  get size(): number {
    return this.#entries.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.entries()];
    for (const [key, entry] of entries) this.#drop(key, entry);
    await Promise.all(entries.map(async ([, entry]) => (await entry.connection.catch(() => undefined))?.close()));
  }

  #onDeadline(session: string, server: string, deadlineAt: number): void {
    const entry = this.#entries.get(keyOf(session, server));
    // The timer measures the monotonic clock; the deadline is wall-clock time, which may lag it.
    if (entry !== undefined && Date.now() < deadlineAt) {
      entry.deadline = setLongTimeout(() => this.#onDeadline(session, server, deadlineAt), deadlineAt - Date.now()).unref();
      return;
    }
    void this.closeServer(session, server);
  }

  #drop(key: string, entry: Entry): void {
    entry.deadline.clear();
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }
}

function keyOf(session: string, server: string): string {
  return `${session}\u0000${server}`;
}
