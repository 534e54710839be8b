/**
 * Shared pieces of the sandbox tests: call builders, real temp folders, loopback HTTP servers.
 * Everything here is real (processes, files, sockets); nothing is mocked.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { SandboxClient, type SandboxCall } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, SandboxLimits, SandboxRunResponse } from '../../sandbox/sandbox-messages';

/**
 * Limits of a call that does not name its own. The timeout is a bound on a hung call, not a speed
 * check: a test about something else (a bystander, a control row) must pass on a loaded machine,
 * where a quick call can take seconds (tool-oom-spares-other-calls once failed: a bystander
 * `return input + 1` hit the old 2,000 ms at load 9-19). A test about the timeout names a small one.
 */
export const DEFAULT_LIMITS: SandboxLimits = { timeoutMs: 60_000, memoryMb: 32, maxOutputBytes: 1_000_000 };

/** A call of `source` with `input`, the given grant and (partial) limits. */
export function toolCall(source: string, input: unknown = null, capabilities: CapabilityGrant = {}, limits: Partial<SandboxLimits> = {}): SandboxCall {
  return { toolName: 'test.tool', source, input, capabilities, limits: { ...DEFAULT_LIMITS, ...limits } };
}

/** The output of a successful response; fails the test with the error otherwise. */
export function outputOf(response: SandboxRunResponse): unknown {
  if (!response.ok) throw new Error(`expected success, got ${response.error.code}: ${response.error.message}`);
  return response.output;
}

/** The error code of a failed response, or "ok" for a success (so assertions show what happened). */
export function codeOf(response: SandboxRunResponse): string {
  return response.ok ? `ok: ${JSON.stringify(response.output)}` : response.error.code;
}

/** A new empty folder under the OS temp dir, as a real path. */
export function makeTempDir(prefix: string): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `warden-${prefix}-`)));
}

export interface LoopbackServer {
  port: number;
  /** Requests received, as "METHOD /path". */
  hits: string[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 with an ephemeral port. */
export async function startLoopbackServer(handler: http.RequestListener): Promise<LoopbackServer> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Tool sources that make V8 give their isolate up (a catastrophic out-of-memory at 64 MiB). Which
 * allocation V8 fails that way varies from run to run: a test tries them in turn.
 */
export const CATASTROPHIC_OOM_SOURCES = [
  'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, i);',
  'const a = []; a.length = 2 ** 32 - 1; a.fill(0); return 1;',
  'const a = new Array(2 ** 26).fill(0); return a.concat(a, a, a, a).length;',
];

export interface HoldingServer extends LoopbackServer {
  /** Every request's response, in arrival order, left for the test to answer. */
  held: http.ServerResponse[];
  /** The held responses of requests to `path`. */
  heldAt(path: string): http.ServerResponse[];
}

/** A loopback server that answers nothing by itself (a call that reached it waits); `close` answers what is left 'late'. */
export async function startHoldingServer(): Promise<HoldingServer> {
  const held: http.ServerResponse[] = [];
  const urls: string[] = [];
  const server = await startLoopbackServer((req, res) => {
    req.resume();
    req.on('end', () => {
      urls.push(req.url ?? '');
      held.push(res);
    });
  });
  return {
    ...server,
    held,
    heldAt: (path) => held.filter((_, i) => urls[i] === path),
    close: async () => {
      for (const response of held) if (!response.writableEnded) response.end('late');
      await server.close();
    },
  };
}

/** A sandbox host, and a grant (query and exec) to `shop`: a SQLite file with a table `items (id, name)` holding one row, 'a'. */
export interface ShopSandbox {
  client: SandboxClient;
  grant: CapabilityGrant;
  /** Closes the host and removes the database's folder. */
  close(): Promise<void>;
}

/** Starts a sandbox host beside a fresh `shop` database in a temporary folder named by `prefix`. */
export async function startShopSandbox(prefix: string): Promise<ShopSandbox> {
  const folder = makeTempDir(prefix);
  const file = path.join(folder, 'shop.db');
  const db = new Database(file);
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('a');");
  db.close();
  const client = await SandboxClient.start();
  return {
    client,
    grant: { sql: { databases: { shop: file }, query: true, exec: true } },
    close: async () => {
      await client.close();
      fs.rmSync(folder, { recursive: true, force: true });
    },
  };
}
