/**
 * The console's HTTP server: plain `node:http` on 127.0.0.1 only, serving one static page and a
 * small JSON API that the page polls.
 *
 * Invariants:
 * - It listens on the loopback address only; a request naming another host (`Host` header) is
 *   refused, so a DNS-rebinding page cannot talk to it under a name of its own.
 * - Every `/api/` route requires the login token (`Authorization: Bearer <token>`); the static
 *   page and its script hold no data and need none. A token anywhere else (query, cookie) counts
 *   for nothing.
 * - The page's Content-Security-Policy allows its own script and style only (no inline code, no
 *   other origin, no framing), and the page renders all task data as text: an agent's arguments
 *   or outputs cannot become markup.
 * - The only write is an approval decision, signed with the key of the approver the console was
 *   started for (none: read-only); its body is validated (`DecisionRequestSchema`) before
 *   anything is signed or sent.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ConsoleData, DecisionRefused, DecisionRequestSchema } from './console-data';
import { bearerTokenOf, newConsoleToken, tokenMatches } from './console-token';

export const CONSOLE_HOST = '127.0.0.1';
/** Largest request body accepted (an approval decision is a few hundred bytes). */
const MAX_BODY_BYTES = 16 * 1024;

/** Every API route, for the page and for tests that check each one demands the token. */
export const CONSOLE_API_ROUTES = [
  { method: 'GET', path: '/api/session' },
  { method: 'GET', path: '/api/tasks' },
  { method: 'GET', path: '/api/tasks/{workflowId}' },
  { method: 'GET', path: '/api/approvals' },
  { method: 'POST', path: '/api/approvals/decide' },
] as const;

const PAGE_DIR = join(__dirname, 'page');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export interface ConsoleServerOptions {
  data: ConsoleData;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** The login token; default a fresh random one. */
  token?: string;
  /** Called with failures of API handlers (the client gets a generic 500). */
  onError?: (error: unknown) => void;
}

export interface ConsoleServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The page with the token in its fragment (never sent to the server). */
  loginUrl: string;
  token: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8', headers);
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) throw new HttpError(415, 'ERR_CONSOLE_BAD_REQUEST', 'the body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'ERR_CONSOLE_BAD_REQUEST', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'ERR_CONSOLE_BAD_REQUEST', 'the body is not JSON');
  }
}

/** Starts the console on 127.0.0.1. */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const token = options.token ?? newConsoleToken();
  const assets = Object.fromEntries(Object.entries(ASSETS).map(([path, asset]) => [path, { body: readFileSync(join(PAGE_DIR, asset.file)), type: asset.type }]));
  const { data } = options;
  let port = 0;

  const handleApi = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (!tokenMatches(token, bearerTokenOf(req.headers.authorization))) {
      throw new HttpError(401, 'ERR_CONSOLE_UNAUTHENTICATED', 'this call needs the login token printed by `warden console`', { 'www-authenticate': 'Bearer realm="warden-console"' });
    }
    const method = req.method ?? 'GET';
    if (path === '/api/session') {
      if (method !== 'GET') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${method} ${path} is not allowed`, { allow: 'GET' });
      return sendJson(res, 200, { approver: data.approver, readOnly: data.approver === null });
    }
    if (path === '/api/tasks') {
      if (method !== 'GET') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${method} ${path} is not allowed`, { allow: 'GET' });
      return sendJson(res, 200, { tasks: await data.tasks() });
    }
    if (path.startsWith('/api/tasks/')) {
      if (method !== 'GET') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${method} ${path} is not allowed`, { allow: 'GET' });
      let workflowId: string;
      try {
        workflowId = decodeURIComponent(path.slice('/api/tasks/'.length));
      } catch {
        throw new HttpError(400, 'ERR_CONSOLE_BAD_REQUEST', 'the workflow id is not valid percent-encoding');
      }
      if (workflowId === '') throw new HttpError(400, 'ERR_CONSOLE_BAD_REQUEST', 'no workflow id');
      const task = await data.task(workflowId);
      if (task === undefined) throw new HttpError(404, 'ERR_CONSOLE_NOT_FOUND', `no agent task ${workflowId}`);
      return sendJson(res, 200, { task });
    }
    if (path === '/api/approvals') {
      if (method !== 'GET') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${method} ${path} is not allowed`, { allow: 'GET' });
      const { approvals, unanswered } = await data.approvals();
      return sendJson(res, 200, { approver: data.approver, approvals, unanswered });
    }
    if (path === '/api/approvals/decide') {
      if (method !== 'POST') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${method} ${path} is not allowed`, { allow: 'POST' });
      // A page of another origin cannot have the token, but refuse its requests outright anyway.
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${CONSOLE_HOST}:${port}` && origin !== `http://localhost:${port}`) {
        throw new HttpError(403, 'ERR_CONSOLE_ORIGIN', `requests from ${origin} are not accepted`);
      }
      const parsed = DecisionRequestSchema.safeParse(await readJsonBody(req));
      if (!parsed.success) {
        throw new HttpError(400, 'ERR_CONSOLE_BAD_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
      }
      let outcome;
      try {
        outcome = await data.decide(parsed.data);
      } catch (error) {
        if (!(error instanceof DecisionRefused)) throw error;
        const status = error.code === 'ERR_APPROVAL_NOT_PENDING' ? 409 : 403;
        throw new HttpError(status, error.code, error.message);
      }
      return sendJson(res, 200, { decided: outcome.status, approver: outcome.approver, workflowId: parsed.data.workflowId, requestId: outcome.requestId });
    }
    throw new HttpError(404, 'ERR_CONSOLE_NOT_FOUND', `no API route ${path}`);
  };

  const server = createServer((req, res) => {
    void (async () => {
      try {
        // Only names of this server: a rebinding attacker's hostname is refused before anything else.
        const host = (req.headers.host ?? '').toLowerCase();
        if (host !== `${CONSOLE_HOST}:${port}` && host !== `localhost:${port}`) throw new HttpError(421, 'ERR_CONSOLE_HOST', `this console answers to ${CONSOLE_HOST}:${port} only`);
        const path = new URL(req.url ?? '/', `http://${CONSOLE_HOST}`).pathname;
        if (path.startsWith('/api/')) return await handleApi(req, res, path);
        const asset = assets[path];
        if (asset === undefined) throw new HttpError(404, 'ERR_CONSOLE_NOT_FOUND', `no page ${path}`);
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'ERR_CONSOLE_METHOD', `${req.method} ${path} is not allowed`, { allow: 'GET, HEAD' });
        return send(res, 200, asset.body, asset.type);
      } catch (error) {
        if (error instanceof HttpError) return sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
        options.onError?.(error);
        return sendJson(res, 500, { error: { code: 'ERR_CONSOLE_INTERNAL', message: 'the console could not answer; see its terminal' } });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port ?? 0, host: CONSOLE_HOST, exclusive: true }, () => {
      // Known before the first request is read: the Host check compares against it.
      port = (server.address() as AddressInfo).port;
      resolve();
    });
  });
  const url = `http://${CONSOLE_HOST}:${port}`;
  return {
    url,
    loginUrl: `${url}/#token=${token}`,
    token,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
