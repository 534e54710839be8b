/**
 * A real HTTP server on 127.0.0.1 that speaks enough of OpenAI's Chat Completions and Responses
 * protocols to test model drivers end to end: headers, JSON, status codes, timeouts and sockets
 * are real. Token usage is counted (roughly, 4 bytes a token) so drivers have usage to report.
 *
 * It checks each request the way OpenAI does where a driver is most likely to go wrong (missing
 * `messages`, tool messages that answer no prior call, unanswered calls, bad function names) and
 * answers those with OpenAI's 400 error shape, so a driver that builds a bad transcript fails its
 * test instead of passing against a too-forgiving fake. Valid requests get the next scripted
 * reply from the queue the test filled.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server received, as received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; `undefined` when the body was not JSON. */
  body: unknown;
  rawBody: string;
}

/** A tool call as it appears in an assistant message on the wire. */
export interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One answer the server gives. */
export type FakeReply =
  | {
      kind: 'completion';
      message: { content: string | null; tool_calls?: WireToolCall[] };
      /** `model` field of the response; defaults to the requested model. */
      model?: string;
      /** Token counts to report; default: counted from the request and the answer. */
      usage?: { input: number; output: number };
      delayMs?: number;
    }
  | {
      /** Any status and body, verbatim: errors, malformed JSON, wrong shapes. */
      kind: 'http';
      status: number;
      body: string;
      headers?: Record<string, string>;
      delayMs?: number;
    };

/** A scripted answer with content and tool calls. */
export type CompletionReply = Extract<FakeReply, { kind: 'completion' }>;

/** A reply, or a function of the request that computes one (e.g. to echo a header). */
export type ScriptedReply = FakeReply | ((request: RecordedRequest) => FakeReply);

export interface FakeOpenAIServer {
  /** Base URL to use as `baseUrl`, e.g. `http://127.0.0.1:41234/v1`. */
  url: string;
  /** Every request received, valid or not, in order. */
  requests: RecordedRequest[];
  /** Queues replies for the next valid requests, in order. */
  enqueue(...replies: ScriptedReply[]): void;
  /** Replies queued and not yet used. */
  pending(): number;
  close(): Promise<void>;
}

let nextCallId = 1;

/** A tool call for a scripted reply. `args` may be a raw string to send unparseable arguments. */
export function toolCall(name: string, args: Record<string, unknown> | string = {}, id = `call_fake_${nextCallId++}`): WireToolCall {
  return { id, type: 'function', function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

/** An assistant message that calls tools. */
export function toolCallsReply(calls: WireToolCall[], options: { content?: string | null; model?: string } = {}): CompletionReply {
  return {
    kind: 'completion',
    message: { content: options.content ?? null, tool_calls: calls },
    ...(options.model === undefined ? {} : { model: options.model }),
  };
}

/** An assistant message with text only. */
export function textReply(content: string | null, options: { model?: string } = {}): CompletionReply {
  return { kind: 'completion', message: { content }, ...(options.model === undefined ? {} : { model: options.model }) };
}

/** A verbatim HTTP answer; objects are sent as JSON. */
export function httpReply(status: number, body: string | object, headers: Record<string, string> = {}): FakeReply {
  return { kind: 'http', status, body: typeof body === 'string' ? body : JSON.stringify(body), headers };
}

/** The same reply, sent only after `ms` milliseconds (for timeouts). */
export function delayed(reply: FakeReply, ms: number): FakeReply {
  return { ...reply, delayMs: ms };
}

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

class InvalidRequest extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Throws `InvalidRequest` where OpenAI would answer 400. Exported so the rules themselves can be
 * tested; the server applies it to every request.
 */
export function validateChatRequest(body: unknown): void {
  if (!isObject(body)) throw new InvalidRequest('We could not parse the JSON body of your request.');
  if (typeof body['model'] !== 'string' || body['model'] === '') throw new InvalidRequest('you must provide a model parameter', 'model');
  const temperature = body['temperature'];
  if (temperature !== undefined && (typeof temperature !== 'number' || temperature < 0 || temperature > 2)) {
    throw new InvalidRequest(`Invalid 'temperature': expected a number between 0 and 2.`, 'temperature');
  }

  const tools = body['tools'];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new InvalidRequest(`Invalid type for 'tools': expected an array.`, 'tools');
    const names = new Set<string>();
    tools.forEach((tool: unknown, i) => {
      const fn = isObject(tool) ? tool['function'] : undefined;
      if (!isObject(tool) || tool['type'] !== 'function' || !isObject(fn)) {
        throw new InvalidRequest(`Invalid 'tools[${i}]': expected { type: 'function', function: {...} }.`, `tools[${i}]`);
      }
      const name = fn['name'];
      if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
        throw new InvalidRequest(`Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `tools[${i}].function.name`);
      }
      if (names.has(name)) throw new InvalidRequest(`Invalid 'tools': duplicate function name '${name}'.`, 'tools');
      names.add(name);
      if (fn['parameters'] !== undefined && !isObject(fn['parameters'])) {
        throw new InvalidRequest(`Invalid 'tools[${i}].function.parameters': expected an object.`, `tools[${i}].function.parameters`);
      }
    });
  }
  const toolChoice = body['tool_choice'];
  if (toolChoice !== undefined) {
    if (tools === undefined) throw new InvalidRequest(`Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.`, 'tool_choice');
    if (!isObject(toolChoice) && !['none', 'auto', 'required'].includes(toolChoice as string)) {
      throw new InvalidRequest(`Invalid value for 'tool_choice'.`, 'tool_choice');
    }
  }

  const messages = body['messages'];
  if (messages === undefined) throw new InvalidRequest(`Missing required parameter: 'messages'.`, 'messages');
  if (!Array.isArray(messages)) throw new InvalidRequest(`Invalid type for 'messages': expected an array.`, 'messages');
  if (messages.length === 0) throw new InvalidRequest(`Invalid 'messages': empty array. Expected an array with minimum length 1.`, 'messages');

  const seenIds = new Set<string>();
  /** Ids of the latest assistant tool calls that no tool message has answered yet. */
  let open: string[] | null = null;
  const requireAnswered = (): void => {
    if (open !== null && open.length > 0) {
      throw new InvalidRequest(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${open.join(', ')}`,
        'messages',
      );
    }
    open = null;
  };
  messages.forEach((message: unknown, i) => {
    const at = `messages[${i}]`;
    if (!isObject(message)) throw new InvalidRequest(`Invalid type for '${at}': expected an object.`, at);
    const role = message['role'];
    const content = message['content'];
    if (role !== 'tool') requireAnswered();
    switch (role) {
      case 'system':
      case 'developer':
      case 'user':
        if (typeof content !== 'string' && !Array.isArray(content)) throw new InvalidRequest(`Invalid type for '${at}.content': expected a string or array.`, `${at}.content`);
        return;
      case 'assistant': {
        const calls = message['tool_calls'];
        if (calls === undefined || calls === null) {
          if (typeof content !== 'string') throw new InvalidRequest(`Invalid value for '${at}.content': expected a string, got ${content === null ? 'null' : typeof content}.`, `${at}.content`);
          return;
        }
        if (content !== null && content !== undefined && typeof content !== 'string') throw new InvalidRequest(`Invalid type for '${at}.content'.`, `${at}.content`);
        if (!Array.isArray(calls) || calls.length === 0) throw new InvalidRequest(`Invalid '${at}.tool_calls': expected a non-empty array.`, `${at}.tool_calls`);
        open = calls.map((call: unknown, j) => {
          const where = `${at}.tool_calls[${j}]`;
          const fn = isObject(call) ? call['function'] : undefined;
          if (!isObject(call) || call['type'] !== 'function' || !isObject(fn)) throw new InvalidRequest(`Invalid '${where}'.`, where);
          const id = call['id'];
          if (typeof id !== 'string' || id === '') throw new InvalidRequest(`Missing required parameter: '${where}.id'.`, `${where}.id`);
          if (seenIds.has(id)) throw new InvalidRequest(`Invalid '${where}.id': duplicate tool call id '${id}'.`, `${where}.id`);
          seenIds.add(id);
          if (typeof fn['name'] !== 'string' || !FUNCTION_NAME.test(fn['name'])) {
            throw new InvalidRequest(`Invalid '${where}.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `${where}.function.name`);
          }
          if (typeof fn['arguments'] !== 'string') throw new InvalidRequest(`Invalid type for '${where}.function.arguments': expected a string.`, `${where}.function.arguments`);
          return id;
        });
        return;
      }
      case 'tool': {
        const id = message['tool_call_id'];
        if (open === null) {
          throw new InvalidRequest(`Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.`, `${at}.role`);
        }
        if (typeof id !== 'string') throw new InvalidRequest(`Missing required parameter: '${at}.tool_call_id'.`, `${at}.tool_call_id`);
        const pending: string[] = open;
        if (!pending.includes(id)) {
          throw new InvalidRequest(`Invalid parameter: 'tool_call_id' of '${id}' not found in 'tool_calls' of previous message.`, `${at}.tool_call_id`);
        }
        open = pending.filter((other) => other !== id);
        if (typeof content !== 'string' && !Array.isArray(content)) throw new InvalidRequest(`Invalid type for '${at}.content': expected a string or array.`, `${at}.content`);
        return;
      }
      default:
        throw new InvalidRequest(`Invalid value: '${String(role)}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.`, `${at}.role`);
    }
  });
  requireAnswered();
}

/** Tokens as the fake counts them: a quarter of the bytes, at least 1. */
export function fakeTokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text) / 4));
}

function usageOf(reply: Extract<FakeReply, { kind: 'completion' }>, rawRequest: string): { input: number; output: number } {
  return reply.usage ?? { input: fakeTokens(rawRequest), output: fakeTokens(JSON.stringify(reply.message)) };
}

function completionBody(reply: Extract<FakeReply, { kind: 'completion' }>, requestedModel: string, n: number, rawRequest: string): string {
  const calls = reply.message.tool_calls;
  const usage = usageOf(reply, rawRequest);
  return JSON.stringify({
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: 1_700_000_000 + n,
    model: reply.model ?? requestedModel,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: reply.message.content, refusal: null, ...(calls === undefined ? {} : { tool_calls: calls }) },
        logprobs: null,
        finish_reason: calls !== undefined && calls.length > 0 ? 'tool_calls' : 'stop',
      },
    ],
    usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
  });
}

/** The same reply in the Responses API's shape: function_call items and one message item. */
function responseBody(reply: Extract<FakeReply, { kind: 'completion' }>, requestedModel: string, n: number, rawRequest: string): string {
  const usage = usageOf(reply, rawRequest);
  const output: unknown[] = [];
  if (reply.message.content !== null) {
    output.push({ type: 'message', id: `msg_fake_${n}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: reply.message.content, annotations: [] }] });
  }
  for (const call of reply.message.tool_calls ?? []) {
    output.push({ type: 'function_call', id: `fc_fake_${n}_${call.id}`, call_id: call.id, name: call.function.name, arguments: call.function.arguments, status: 'completed' });
  }
  return JSON.stringify({
    id: `resp_fake_${n}`,
    object: 'response',
    created_at: 1_700_000_000 + n,
    status: 'completed',
    model: reply.model ?? requestedModel,
    output,
    usage: { input_tokens: usage.input, output_tokens: usage.output, total_tokens: usage.input + usage.output, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } },
  });
}

/**
 * Throws `InvalidRequest` where the Responses API would answer 400: a missing model or input,
 * bad function tools, a function_call_output that answers no earlier function_call, or a
 * function_call left without its output.
 */
export function validateResponsesRequest(body: unknown): void {
  if (!isObject(body)) throw new InvalidRequest('We could not parse the JSON body of your request.');
  if (typeof body['model'] !== 'string' || body['model'] === '') throw new InvalidRequest('Missing required parameter: \'model\'.', 'model');
  const tools = body['tools'];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new InvalidRequest(`Invalid type for 'tools': expected an array.`, 'tools');
    const names = new Set<string>();
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool) || tool['type'] !== 'function') throw new InvalidRequest(`Invalid 'tools[${i}]': expected { type: 'function', name, parameters }.`, `tools[${i}]`);
      const name = tool['name'];
      if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) throw new InvalidRequest(`Invalid 'tools[${i}].name': string does not match pattern.`, `tools[${i}].name`);
      if (names.has(name)) throw new InvalidRequest(`Invalid 'tools': duplicate function name '${name}'.`, 'tools');
      names.add(name);
    });
  }
  const input = body['input'];
  if (typeof input === 'string') return;
  if (!Array.isArray(input) || input.length === 0) throw new InvalidRequest(`Missing required parameter: 'input'.`, 'input');
  const calls = new Set<string>();
  const answered = new Set<string>();
  input.forEach((item: unknown, i) => {
    const at = `input[${i}]`;
    if (!isObject(item)) throw new InvalidRequest(`Invalid type for '${at}': expected an object.`, at);
    if (item['type'] === 'function_call') {
      const id = item['call_id'];
      if (typeof id !== 'string' || id === '') throw new InvalidRequest(`Missing required parameter: '${at}.call_id'.`, `${at}.call_id`);
      if (typeof item['name'] !== 'string' || !FUNCTION_NAME.test(item['name'])) throw new InvalidRequest(`Invalid '${at}.name'.`, `${at}.name`);
      if (typeof item['arguments'] !== 'string') throw new InvalidRequest(`Invalid type for '${at}.arguments': expected a string.`, `${at}.arguments`);
      if (calls.has(id)) throw new InvalidRequest(`Duplicate call_id '${id}'.`, `${at}.call_id`);
      calls.add(id);
    } else if (item['type'] === 'function_call_output') {
      const id = item['call_id'];
      if (typeof id !== 'string' || !calls.has(id)) throw new InvalidRequest(`No tool call found for function call output with call_id ${String(id)}.`, `${at}.call_id`);
      if (typeof item['output'] !== 'string') throw new InvalidRequest(`Invalid type for '${at}.output': expected a string.`, `${at}.output`);
      answered.add(id);
    } else if (item['role'] === 'user' || item['role'] === 'system' || item['role'] === 'developer' || item['role'] === 'assistant') {
      if (typeof item['content'] !== 'string' && !Array.isArray(item['content'])) throw new InvalidRequest(`Invalid type for '${at}.content'.`, `${at}.content`);
    } else {
      throw new InvalidRequest(`Invalid value for '${at}': unknown item.`, at);
    }
  });
  const open = [...calls].filter((id) => !answered.has(id));
  if (open.length > 0) throw new InvalidRequest(`No tool output found for function call ${open[0]}.`, 'input');
}

function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

function errorBody(message: string, type: string, param: string | null = null, code: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

/** Starts a fake server on 127.0.0.1 with an OS-assigned port. */
export async function startFakeOpenAIServer(): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  const queue: ScriptedReply[] = [];
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

      const api = recorded.path === '/v1/chat/completions' ? 'chat' : recorded.path === '/v1/responses' ? 'responses' : undefined;
      if (recorded.method !== 'POST' || api === undefined) {
        sendJson(res, 404, errorBody(`Unknown request URL: ${recorded.method} ${recorded.path}.`, 'invalid_request_error', null, 'unknown_url'));
        return;
      }
      try {
        if (api === 'chat') validateChatRequest(body);
        else validateResponsesRequest(body);
      } catch (error) {
        if (!(error instanceof InvalidRequest)) throw error;
        sendJson(res, 400, errorBody(error.message, 'invalid_request_error', error.param));
        return;
      }
      const next = queue.shift();
      if (next === undefined) {
        sendJson(res, 500, errorBody('fake server: no scripted reply queued for this request', 'server_error'));
        return;
      }
      const reply = typeof next === 'function' ? next(recorded) : next;
      const n = ++served;
      const send = (): void => {
        if (res.destroyed) return;
        if (reply.kind === 'completion') {
          const model = (body as { model: string }).model;
          sendJson(res, 200, api === 'chat' ? completionBody(reply, model, n, rawBody) : responseBody(reply, model, n, rawBody));
        }
        else sendJson(res, reply.status, reply.body, reply.headers);
      };
      if (reply.delayMs === undefined) return send();
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, reply.delayMs);
      timers.add(timer);
      // A client that gives up (timeout) must not leave a timer behind.
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
    url: `http://127.0.0.1:${port}/v1`,
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
