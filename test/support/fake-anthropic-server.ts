/**
 * A real HTTP server on 127.0.0.1 that speaks enough of Anthropic's Messages API to test the
 * Anthropic driver end to end: headers, JSON, status codes and sockets are real.
 *
 * It checks requests the way the Messages API does where a driver is most likely to go wrong
 * (missing `anthropic-version` or `max_tokens`, roles that do not alternate, a `tool_use` not
 * answered by a `tool_result` in the very next user message, a `tool_result` for no `tool_use`,
 * bad tool names or ids) and answers those with Anthropic's 400 error shape. Valid requests get
 * the next scripted reply from the queue the test filled.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  rawBody: string;
}

/** A content block of an answer. */
export type AnthropicBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown } | { type: 'thinking'; thinking: string; signature: string };

export type AnthropicReply =
  | { kind: 'message'; content: AnthropicBlock[]; stopReason?: string; model?: string; usage?: { input: number; output: number }; delayMs?: number }
  | { kind: 'http'; status: number; body: string; headers?: Record<string, string>; delayMs?: number };

export type ScriptedAnthropicReply = AnthropicReply | ((request: RecordedRequest) => AnthropicReply);

export interface FakeAnthropicServer {
  /** Base URL to use as `baseUrl`, e.g. `http://127.0.0.1:41234` ("/v1/messages" is appended). */
  url: string;
  requests: RecordedRequest[];
  enqueue(...replies: ScriptedAnthropicReply[]): void;
  pending(): number;
  close(): Promise<void>;
}

let nextId = 1;

export function toolUse(name: string, input: unknown = {}, id = `toolu_fake_${nextId++}`): AnthropicBlock {
  return { type: 'tool_use', id, name, input };
}

export function text(value: string): AnthropicBlock {
  return { type: 'text', text: value };
}

export function messageReply(content: AnthropicBlock[], options: { model?: string; stopReason?: string; usage?: { input: number; output: number } } = {}): AnthropicReply {
  const stopReason = options.stopReason ?? (content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
  return { kind: 'message', content, stopReason, ...(options.model === undefined ? {} : { model: options.model }), ...(options.usage === undefined ? {} : { usage: options.usage }) };
}

export function anthropicHttpReply(status: number, body: string | object, headers: Record<string, string> = {}): AnthropicReply {
  return { kind: 'http', status, body: typeof body === 'string' ? body : JSON.stringify(body), headers };
}

/** Anthropic's error shape. */
export function anthropicError(type: string, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}

class InvalidRequest extends Error {}

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;
const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Throws `InvalidRequest` where the Messages API would answer 400. */
export function validateMessagesRequest(headers: IncomingHttpHeaders, body: unknown): void {
  if (typeof headers['anthropic-version'] !== 'string') throw new InvalidRequest('anthropic-version: header is required');
  if (!isObject(body)) throw new InvalidRequest('Request body is not valid JSON');
  if (typeof body['model'] !== 'string' || body['model'] === '') throw new InvalidRequest('model: Field required');
  const maxTokens = body['max_tokens'];
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidRequest('max_tokens: Field required');
  if (body['system'] !== undefined && typeof body['system'] !== 'string' && !Array.isArray(body['system'])) throw new InvalidRequest('system: Input should be a valid string');
  const tools = body['tools'];
  const toolNames = new Set<string>();
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new InvalidRequest('tools: Input should be a valid list');
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool) || typeof tool['name'] !== 'string' || !TOOL_NAME.test(tool['name'])) throw new InvalidRequest(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (toolNames.has(tool['name'])) throw new InvalidRequest(`tools: Tool names must be unique.`);
      toolNames.add(tool['name']);
      const schema = tool['input_schema'];
      if (!isObject(schema) || schema['type'] !== 'object') throw new InvalidRequest(`tools.${i}.input_schema.type: Input should be 'object'`);
    });
  }
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidRequest('messages: Field required');
  let open: string[] = [];
  const seen = new Set<string>();
  messages.forEach((message: unknown, i) => {
    if (!isObject(message)) throw new InvalidRequest(`messages.${i}: Input should be a valid dictionary`);
    const role = message['role'];
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (role !== expected) throw new InvalidRequest(`messages: roles must alternate between "user" and "assistant", starting with "user" (messages.${i} is ${String(role)})`);
    const content = message['content'];
    const blocks = typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? (content as unknown[]) : undefined;
    if (blocks === undefined || blocks.length === 0) throw new InvalidRequest(`messages.${i}.content: Field required`);
    if (role === 'user') {
      const results = blocks.filter((b) => isObject(b) && b['type'] === 'tool_result') as Record<string, unknown>[];
      for (const result of results) {
        const id = result['tool_use_id'];
        if (typeof id !== 'string' || !open.includes(id)) {
          throw new InvalidRequest(`messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
        }
        if (typeof result['content'] !== 'string' && !Array.isArray(result['content'])) throw new InvalidRequest(`messages.${i}.content: tool_result content must be a string or a list`);
      }
      const answered = new Set(results.map((r) => r['tool_use_id']));
      const missing = open.filter((id) => !answered.has(id));
      if (missing.length > 0) {
        throw new InvalidRequest(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
      open = [];
    } else {
      for (const block of blocks) {
        if (!isObject(block)) throw new InvalidRequest(`messages.${i}.content: Input should be a valid dictionary`);
        if (block['type'] !== 'tool_use') continue;
        const id = block['id'];
        if (typeof id !== 'string' || !TOOL_USE_ID.test(id)) throw new InvalidRequest(`messages.${i}.content.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
        if (seen.has(id)) throw new InvalidRequest(`messages.${i}.content: \`tool_use\` ids must be unique`);
        seen.add(id);
        if (typeof block['name'] !== 'string' || !TOOL_NAME.test(block['name'])) throw new InvalidRequest(`messages.${i}.content.name: String should match pattern`);
        if (!isObject(block['input'])) throw new InvalidRequest(`messages.${i}.content.input: Input should be a valid dictionary`);
        open.push(id);
      }
    }
  });
  if (open.length > 0) throw new InvalidRequest('messages: the last message must be a user message');
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

function tokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text) / 4));
}

export async function startFakeAnthropicServer(): Promise<FakeAnthropicServer> {
  const requests: RecordedRequest[] = [];
  const queue: ScriptedAnthropicReply[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let served = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, rawBody };
      requests.push(recorded);
      if (recorded.method !== 'POST' || recorded.path !== '/v1/messages') {
        send(res, 404, anthropicError('not_found_error', `Not found: ${recorded.method} ${recorded.path}`));
        return;
      }
      try {
        validateMessagesRequest(req.headers, body);
      } catch (error) {
        if (!(error instanceof InvalidRequest)) throw error;
        send(res, 400, anthropicError('invalid_request_error', error.message));
        return;
      }
      const next = queue.shift();
      if (next === undefined) {
        send(res, 500, anthropicError('api_error', 'fake server: no scripted reply queued for this request'));
        return;
      }
      const reply = typeof next === 'function' ? next(recorded) : next;
      const n = ++served;
      const answer = (): void => {
        if (res.destroyed) return;
        if (reply.kind === 'http') {
          send(res, reply.status, reply.body, reply.headers);
          return;
        }
        const usage = reply.usage ?? { input: tokens(rawBody), output: tokens(JSON.stringify(reply.content)) };
        send(
          res,
          200,
          JSON.stringify({
            id: `msg_fake_${n}`,
            type: 'message',
            role: 'assistant',
            model: reply.model ?? (body as { model: string }).model,
            content: reply.content,
            stop_reason: reply.stopReason ?? 'end_turn',
            stop_sequence: null,
            usage: { input_tokens: usage.input, output_tokens: usage.output, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
          }),
        );
      };
      if (reply.delayMs === undefined) return answer();
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, reply.delayMs);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue: (...replies) => void queue.push(...replies),
    pending: () => queue.length,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
