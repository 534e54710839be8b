/**
 * Shared pieces of the sandbox tests: call builders, real temp folders, loopback HTTP servers.
 * Everything here is real (processes, files, sockets); nothing is mocked.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SandboxCall } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, SandboxLimits, SandboxRunResponse } from '../../sandbox/sandbox-messages';

export const DEFAULT_LIMITS: SandboxLimits = { timeoutMs: 2000, memoryMb: 32, maxOutputBytes: 1_000_000 };

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
