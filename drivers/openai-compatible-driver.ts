/**
 * The OpenAI-compatible model driver: asks any server that speaks the Chat Completions protocol
 * (OpenAI, vLLM, llama.cpp, Ollama's /v1, ...) for the agent's next actions.
 *
 * Invariants this module protects:
 * - The API key leaves this module only in the `Authorization` header. It is read from the
 *   environment at call time, never stored, never logged, and every error message is built
 *   through `redactSecret`; response bodies of failed calls are never attached to errors.
 * - The request is a pure function of the driver input, so the same history always produces
 *   the same transcript (replays and tests can compare it byte for byte).
 * - The response is untrusted. It is validated for shape only: a tool name the model made up is
 *   decoded and passed on, because permissions are decided by the workflow, not here.
 */
import { CLAIMS_GUIDANCE, STATE_CLAIM_FUNCTION, claimActionOf, pastClaimCalls, stateClaimFunction } from './state-claim-function';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ModelError, type ErrorCode } from '../errors';
import type { Action, ModelTurn, StepRecord } from '../task/task-run';
import { durationToMs } from '../task/duration';
import type { Model, Task } from '../task/task-schema';
import type { DriverInput, ModelDriver, ToolSpec } from './model-driver';

/** The `agent.model` of a task whose driver is `openai-compatible`. */
export type OpenAICompatibleModel = Extract<Model, { driver: 'openai-compatible' }>;

export interface OpenAICompatibleDriverOptions {
  /**
   * Where `apiKeyEnv` is looked up, at every call (so a rotated key is picked up and tests can
   * pass their own). Defaults to `process.env`.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

/** OpenAI's rule for function names; anything else is rejected with HTTP 400. */
export const FUNCTION_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
/** The function the model calls to finish: `{ answer: string, claims: string[] }`. */
export const FINAL_ANSWER_FUNCTION = 'final_answer';
/** The function the model calls to start a sub-agent: `{ name, intent? }`. */
export const SPAWN_SUBAGENT_FUNCTION = 'spawn_subagent';

const RESERVED_FUNCTIONS: ReadonlySet<string> = new Set([FINAL_ANSWER_FUNCTION, SPAWN_SUBAGENT_FUNCTION, STATE_CLAIM_FUNCTION]);

/** Successful responses above this size are refused rather than buffered without bound. */
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Of a failed response only this much is read: enough for an error message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const EXCERPT_CHARS = 200;

/**
 * Maps a Warden tool name to an OpenAI function name.
 *
 * - Every "." becomes "__": `fs.read` → `fs__read`, `acme.crm.lookup` → `acme__crm__lookup`.
 *   Names allowed by the task schema need nothing else as long as the result fits 64 characters.
 * - A name that still does not fit (too long, empty, or holding characters outside
 *   `[a-zA-Z0-9_-]`, which only a model-invented name from the history can) keeps its first 51
 *   characters with the others replaced by "_", followed by "_" and 12 hex digits of the SHA-256
 *   of the original name, so distinct names stay distinct and the result always fits.
 *
 * Tool names may themselves contain "__", so the rule alone is not reversible: the driver decodes
 * through a table of the names it offered and falls back to {@link decodeToolName} for the rest.
 */
export function encodeToolName(tool: string): string {
  const plain = tool.replaceAll('.', '__');
  if (FUNCTION_NAME_PATTERN.test(plain)) return plain;
  const digest = createHash('sha256').update(tool).digest('hex').slice(0, 12);
  return `${plain.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 51)}_${digest}`;
}

/** The inverse rule for function names the driver did not offer: every "__" becomes ".". */
export function decodeToolName(functionName: string): string {
  return functionName.replaceAll('__', '.');
}

/** Replaces the secret, and any 8-character run of it (servers echo masked keys), in `text`. */
export function redactSecret(text: string, secret: string | undefined): string {
  if (secret === undefined || secret === '') return text;
  let out = text.replaceAll(secret, '[redacted]');
  const run = Math.min(8, secret.length);
  for (let i = 0; i + run <= secret.length; i++) out = out.replaceAll(secret.slice(i, i + run), '[redacted]');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Request

interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One message of the transcript, in the wire shape. */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls: ChatToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

interface ChatTool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

interface OfferedFunctions {
  tools: ChatTool[];
  /** Function name → tool name, for the tools offered this turn. */
  decode: ReadonlyMap<string, string>;
}

function systemPrompt(task: Task, canSpawn: boolean): string {
  const lines = [
    `You are an AI agent acting on behalf of the user "${task.user}".`,
    "Work on the user's request by calling the tools provided. Every call is checked against the permissions the user granted; a call that is not allowed is denied and its result says why.",
    ...(canSpawn ? [`You may hand part of the work to a sub-agent with ${SPAWN_SUBAGENT_FUNCTION}.`] : []),
    CLAIMS_GUIDANCE,
    `When you are done, call ${FINAL_ANSWER_FUNCTION} with "answer" (your answer to the user) and "claims" (short factual statements about what you did; they will be verified).`,
  ];
  const instructions = task.agent.instructions?.trim();
  return instructions ? `${lines.join('\n')}\n\n${instructions}` : lines.join('\n');
}

function offeredFunctions(input: DriverInput): OfferedFunctions {
  const decode = new Map<string, string>();
  const tools: ChatTool[] = [];
  for (const spec of input.tools) {
    const name = encodeToolName(spec.name);
    // A collision would make the model's choice ambiguous; refuse rather than guess.
    const other = decode.get(name);
    if (RESERVED_FUNCTIONS.has(name) || other !== undefined) {
      const clash = other === undefined ? `the reserved function "${name}"` : other === spec.name ? 'the same tool offered twice' : `tool "${other}"`;
      throw new ModelError('ERR_MODEL_CONFIG', `tool "${spec.name}" cannot be offered to the model: its function name "${name}" clashes with ${clash}`, {
        details: { tool: spec.name, functionName: name },
      });
    }
    decode.set(name, spec.name);
    tools.push(toolFunction(spec, name));
  }
  if (input.subagents.length > 0) tools.push(spawnFunction(input.subagents));
  tools.push({ type: 'function', function: stateClaimFunction() });
  tools.push(finalAnswerFunction());
  return { tools, decode };
}

function toolFunction(spec: ToolSpec, name: string): ChatTool {
  return { type: 'function', function: { name, description: spec.description, parameters: spec.inputSchema } };
}

function spawnFunction(subagents: DriverInput['subagents']): ChatTool {
  const list = subagents.map((s) => `${s.name}: ${s.intent}`).join('; ');
  return {
    type: 'function',
    function: {
      name: SPAWN_SUBAGENT_FUNCTION,
      description: `Start a sub-agent to do part of the work and get its result. Sub-agents: ${list}.`,
      parameters: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: subagents.map((s) => s.name), description: 'Which sub-agent to start.' },
          intent: { type: 'string', description: "What to ask the sub-agent to do; leave out to use its declared purpose." },
        },
        required: ['name'],
        additionalProperties: false,
      },
    },
  };
}

function finalAnswerFunction(): ChatTool {
  return {
    type: 'function',
    function: {
      name: FINAL_ANSWER_FUNCTION,
      description: 'Finish the task with your answer to the user.',
      parameters: {
        type: 'object',
        properties: {
          answer: { type: 'string', description: 'Your answer to the user.' },
          claims: {
            type: 'array',
            items: { anyOf: [{ type: 'string' }, { type: 'object' }] },
            description: `Short factual statements about what you did, or structured claims as ${STATE_CLAIM_FUNCTION} takes them.`,
          },
        },
        required: ['answer', 'claims'],
        additionalProperties: false,
      },
    },
  };
}

/**
 * Rebuilds the conversation from the step records: per past turn, one assistant message with
 * that turn's calls, then one tool message per call. Call ids come from the model but must be
 * unique in a transcript, so a repeated or missing id is replaced deterministically.
 */
function transcript(steps: readonly StepRecord[], claims?: readonly StatedClaimRecord[]): ChatMessage[] {
  // A turn's steps, then the claims it stated (state_claim calls are not steps).
  const entries = [
    ...steps.map((step) => ({ turn: step.turn, order: step.index, step })),
    ...pastClaimCalls(claims).map((claim, i) => ({ turn: claim.turn, order: Number.MAX_SAFE_INTEGER - 100_000 + i, claim })),
  ].sort((a, b) => a.turn - b.turn || a.order - b.order);
  const used = new Set<string>();
  const messages: ChatMessage[] = [];
  let turn: number | undefined;
  let assistant: Extract<ChatMessage, { role: 'assistant' }> | undefined;
  let results: ChatMessage[] = [];
  const flush = (): void => {
    if (assistant) messages.push(assistant, ...results);
  };
  let claimCount = 0;
  for (const entry of entries) {
    if (entry.turn !== turn) {
      flush();
      turn = entry.turn;
      assistant = { role: 'assistant', content: null, tool_calls: [] };
      results = [];
    }
    if ('step' in entry && entry.step !== undefined) {
      const id = uniqueCallId(entry.step, used);
      assistant?.tool_calls.push({ id, type: 'function', function: functionCallOf(entry.step) });
      results.push({ role: 'tool', tool_call_id: id, content: resultOf(entry.step) });
    } else if ('claim' in entry && entry.claim !== undefined) {
      let id = entry.claim.callId !== undefined && entry.claim.callId !== '' && !used.has(entry.claim.callId) ? entry.claim.callId : `claim_${claimCount}`;
      for (let n = 1; used.has(id); n++) id = `claim_${claimCount}_${n}`;
      used.add(id);
      claimCount++;
      assistant?.tool_calls.push({ id, type: 'function', function: { name: STATE_CLAIM_FUNCTION, arguments: JSON.stringify(entry.claim.arguments) } });
      results.push({ role: 'tool', tool_call_id: id, content: entry.claim.result });
    }
  }
  flush();
  return messages;
}

function uniqueCallId(step: StepRecord, used: Set<string>): string {
  let id = step.callId !== undefined && step.callId !== '' && !used.has(step.callId) ? step.callId : `call_${step.index}`;
  for (let n = 1; used.has(id); n++) id = `call_${step.index}_${n}`;
  used.add(id);
  return id;
}

function functionCallOf(step: StepRecord): ChatToolCall['function'] {
  if (step.kind === 'spawn') {
    const name = step.tool.startsWith('spawn:') ? step.tool.slice('spawn:'.length) : step.tool;
    const intent = step.args['intent'];
    return { name: SPAWN_SUBAGENT_FUNCTION, arguments: JSON.stringify(typeof intent === 'string' ? { name, intent } : { name }) };
  }
  return { name: encodeToolName(step.tool), arguments: JSON.stringify(step.args) };
}

function resultOf(step: StepRecord): string {
  if (step.decision === 'deny') return JSON.stringify({ denied: step.reason });
  if (step.error) return JSON.stringify({ error: { code: step.error.code, message: step.error.message } });
  return JSON.stringify({ output: step.output ?? null });
}

// ---------------------------------------------------------------------------------------------
// Response

const ResponseToolCallSchema = z.object({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({
    name: z.string(),
    // Some compatible servers send arguments as an object instead of a JSON string.
    arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  }),
});
type ResponseToolCall = z.infer<typeof ResponseToolCallSchema>;

const ChatCompletionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z.array(ResponseToolCallSchema).nullish(),
        }),
      }),
    )
    .min(1),
});

const FinalArgsSchema = z.object({ answer: z.string(), claims: z.array(z.union([z.string(), z.record(z.string(), z.unknown())])).default([]) });
const SpawnArgsSchema = z.object({ name: z.string().min(1), intent: z.string().optional() });

/** A name from the model, safe to quote in a message. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
}

function protocolError(message: string): ModelError {
  return new ModelError('ERR_MODEL_PROTOCOL', message);
}

function parseArguments(call: ResponseToolCall): Record<string, unknown> {
  const raw = call.function.arguments;
  if (raw === undefined) return {};
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return {};
    try {
      value = JSON.parse(raw);
    } catch {
      throw protocolError(`the model called ${quoted(call.function.name)} with arguments that are not JSON`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocolError(`the model called ${quoted(call.function.name)} with arguments that are not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function toAction(call: ResponseToolCall, decode: ReadonlyMap<string, string>): Action {
  const name = call.function.name;
  const args = parseArguments(call);
  const callId = call.id !== undefined && call.id !== '' ? { callId: call.id } : {};
  if (name === FINAL_ANSWER_FUNCTION) {
    const parsed = FinalArgsSchema.safeParse(args);
    if (!parsed.success) throw protocolError(`the model called ${FINAL_ANSWER_FUNCTION} without a string "answer" and "claims" (strings or claim objects)`);
    return { type: 'final', answer: parsed.data.answer, claims: parsed.data.claims };
  }
  if (name === STATE_CLAIM_FUNCTION) return claimActionOf(args, call.id);
  if (name === SPAWN_SUBAGENT_FUNCTION) {
    const parsed = SpawnArgsSchema.safeParse(args);
    if (!parsed.success) throw protocolError(`the model called ${SPAWN_SUBAGENT_FUNCTION} without a string "name"`);
    // An empty intent means "the declared one", like a missing one.
    const intent = parsed.data.intent ? { intent: parsed.data.intent } : {};
    return { type: 'spawn', subagent: parsed.data.name, ...intent, ...callId };
  }
  return { type: 'tool', tool: decode.get(name) ?? decodeToolName(name), args, ...callId };
}

async function readBody(response: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
  if (response.body === null) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      chunks.push(value.subarray(0, value.byteLength - (size - limit)));
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(value);
  }
}

/** A short, single-line excerpt of an error body, preferring OpenAI's `error.message`. */
function excerpt(body: string): string {
  let text = body;
  try {
    const parsed: unknown = JSON.parse(body);
    const message = (parsed as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof message === 'string') text = message;
  } catch {
    // not JSON: quote the raw text
  }
  text = text.replace(/\s+/g, ' ').trim();
  if (text === '') return '(empty body)';
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}...` : text;
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

// ---------------------------------------------------------------------------------------------
// Driver

/**
 * Asks an OpenAI-compatible Chat Completions endpoint for the next turn. Stateless: every call
 * rebuilds the full transcript from `input.steps`.
 */
export class OpenAICompatibleDriver implements ModelDriver {
  readonly #model: OpenAICompatibleModel;
  readonly #env: Readonly<Record<string, string | undefined>>;

  constructor(model: OpenAICompatibleModel, options: OpenAICompatibleDriverOptions = {}) {
    this.#model = model;
    this.#env = options.env ?? process.env;
  }

  /**
   * @throws ModelError `ERR_MODEL_CONFIG` (key variable missing, clashing tool names),
   *   `ERR_MODEL_UNAVAILABLE` (retryable: network, timeout, HTTP 408/429/5xx),
   *   `ERR_MODEL_PROTOCOL` (other HTTP status, malformed response or tool call).
   *   If `signal` aborts, its reason is thrown as is, so cancellation stays cancellation.
   */
  async proposeTurn(input: DriverInput, signal?: AbortSignal): Promise<ModelTurn> {
    const { id, version, baseUrl, apiKeyEnv, temperature, requestTimeout } = this.#model;
    const apiKey = this.#apiKey();
    const url = `${baseUrl.replace(/\/+$/, '')}/chat/completions`;
    const fail = (code: ErrorCode, message: string, extra: { status?: number; retryable?: boolean; retryAfter?: string } = {}): ModelError => {
      const { retryable, ...details } = extra;
      return new ModelError(code, redactSecret(message, apiKey), {
        details: { model: id, url: redactSecret(url, apiKey), ...details },
        retryable: retryable ?? false,
      });
    };

    const offered = offeredFunctions(input);
    const canSpawn = input.subagents.length > 0;
    const body = {
      model: id,
      temperature,
      messages: [
        { role: 'system', content: systemPrompt(input.task, canSpawn) },
        { role: 'user', content: input.task.intent },
        ...transcript(input.steps, input.claims),
      ] satisfies ChatMessage[],
      tools: offered.tools,
      tool_choice: 'auto',
    };
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (apiKey !== undefined) headers['authorization'] = `Bearer ${apiKey}`;

    const timeout = AbortSignal.timeout(durationToMs(requestTimeout));
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let status: number;
    let text: string;
    let truncated: boolean;
    let retryAfter: string | null;
    try {
      // `manual`: a model endpoint has no reason to redirect, and following one could carry
      // the Authorization header somewhere the task never named.
      const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: combined, redirect: 'manual' });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      ({ text, truncated } = await readBody(response, response.ok ? MAX_RESPONSE_BYTES : MAX_ERROR_BODY_BYTES));
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) throw fail('ERR_MODEL_UNAVAILABLE', `model "${id}" at ${url} did not answer within ${requestTimeout}`, { retryable: true });
      throw fail('ERR_MODEL_UNAVAILABLE', `cannot reach model "${id}" at ${url}: ${describeFailure(error)}`, { retryable: true });
    }

    if (status === 408 || status === 429 || status >= 500) {
      throw fail('ERR_MODEL_UNAVAILABLE', `model "${id}" at ${url} answered HTTP ${status}: ${excerpt(text)}`, {
        status,
        retryable: true,
        ...(retryAfter !== null ? { retryAfter } : {}),
      });
    }
    if (status === 401 || status === 403) {
      // No excerpt at all: servers like to echo (part of) the key in exactly these answers.
      const hint = apiKeyEnv === undefined ? 'no API key was sent (apiKeyEnv is not set)' : `check the key in $${apiKeyEnv}`;
      throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} refused the credentials (HTTP ${status}); ${hint}`, { status });
    }
    if (status < 200 || status > 299) {
      const what = status >= 300 && status < 400 ? 'redirected (not followed)' : excerpt(text);
      throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} answered HTTP ${status}: ${what}`, { status });
    }
    if (truncated) throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} sent a response larger than ${MAX_RESPONSE_BYTES} bytes`, { status });

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} sent a response that is not JSON: ${excerpt(text)}`, { status });
    }
    const parsed = ChatCompletionSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} sent a response that is not a chat completion: ${where}: ${issue?.message ?? 'invalid'}`, { status });
    }

    const message = parsed.data.choices[0]!.message;
    const content = message.content ?? undefined;
    const calls = message.tool_calls ?? [];
    let actions: Action[];
    try {
      actions = calls.map((call) => toAction(call, offered.decode));
    } catch (error) {
      if (error instanceof ModelError) throw fail(error.code, `model "${id}": ${error.message}`, { status });
      throw error;
    }
    if (actions.length === 0) {
      // Plain text with no call is how most models say "done".
      const answer = content || message.refusal || '';
      if (answer === '') throw fail('ERR_MODEL_PROTOCOL', `model "${id}" at ${url} answered with neither a tool call nor text`, { status });
      actions = [{ type: 'final', answer, claims: [] }];
    }
    return {
      actions,
      model: { id: parsed.data.model || id, version },
      ...(content !== undefined ? { text: content } : {}),
    };
  }

  /** The key, read now; `undefined` when the model needs none. */
  #apiKey(): string | undefined {
    const name = this.#model.apiKeyEnv;
    if (name === undefined) return undefined;
    const value = this.#env[name];
    if (value === undefined || value === '') {
      throw new ModelError('ERR_MODEL_CONFIG', `model "${this.#model.id}" needs an API key in the environment variable ${name}, which is not set`, {
        details: { model: this.#model.id, apiKeyEnv: name },
      });
    }
    return value;
  }
}
