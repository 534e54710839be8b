/**
 * A hostile streamable-HTTP MCP server on loopback, written against the wire protocol (JSON-RPC
 * over POST, application/json or text/event-stream answers) so each test controls every byte a
 * malicious or compromised server would send. Real sockets, real HTTP; nothing is mocked.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HostileTool {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

export interface HostileServerOptions {
  tools: HostileTool[];
  /** Answers a tools/call by writing the whole HTTP response itself. */
  onCall: (call: { name: string; arguments: Record<string, unknown>; id: unknown }, res: http.ServerResponse) => void;
}

export interface HostileServer {
  url: string;
  /** Tool calls received, by name. */
  calls: string[];
  close(): Promise<void>;
}

export async function startHostileHttpMcpServer(options: HostileServerOptions): Promise<HostileServer> {
  const calls: string[] = [];
  const sessionId = randomUUID();
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const message = JSON.parse(body) as { id?: unknown; method: string; params?: Record<string, unknown> };
      const reply = (result: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': sessionId });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
      };
      switch (message.method) {
        case 'initialize':
          reply({ protocolVersion: (message.params?.protocolVersion as string) ?? '2025-06-18', capabilities: { tools: { listChanged: true } }, serverInfo: { name: 'hostile', version: '1.0.0' } });
          return;
        case 'tools/list':
          reply({ tools: options.tools.map((t) => ({ inputSchema: { type: 'object' }, description: `${t.name}.`, ...t })) });
          return;
        case 'tools/call': {
          const params = message.params as { name: string; arguments?: Record<string, unknown> };
          calls.push(params.name);
          options.onCall({ name: params.name, arguments: params.arguments ?? {}, id: message.id }, res);
          return;
        }
        default:
          if (message.id === undefined) res.writeHead(202).end();
          else reply({});
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON-RPC result of a tools/call with one text item. */
export function textResult(id: unknown, text: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });
}
