/**
 * The OpenAI model driver, on the official `openai` package: OpenAI itself (`driver: openai`,
 * the Responses API by default) and any server that speaks its protocol (`driver:
 * openai-compatible`: vLLM, llama.cpp, Ollama's /v1..., Chat Completions by default). Either API
 * can be chosen with `api: chat | responses`. The conversation, tool mapping and secret removal
 * are shared with every driver (model-transcript.ts); this module only maps them to the wire.
 *
 * Invariants: the API key leaves this module only in the `Authorization` header; it is read from
 * the environment at call time, never stored, never logged, and removed from every error and
 * every turn. Responses API calls are sent with `store: false`: OpenAI keeps nothing of them.
 */
import OpenAI from 'openai';
import { z } from 'zod';
import { durationToMs } from '../task/duration';
import { libraryTimeoutMs } from '../long-timer';
import type { ModelTurn, ModelUsage } from '../task/task-run';
import type { Model } from '../task/task-schema';
import type { DriverInput, ModelDriver } from './model-driver';
import { finishTurn, offeredFunctions, pastTurns, systemPrompt, type ModelAnswer, type OfferedFunctions } from './model-transcript';
import { providerError, providerFetch, readApiKey, silentLogger, type ProviderFailure } from './provider-client';

/** The `agent.model` of a task this driver serves. */
export type OpenAIModel = Extract<Model, { driver: 'openai' | 'openai-compatible' }>;

export interface OpenAIDriverOptions {
  /**
   * Where `apiKeyEnv` is looked up, at every call (so a rotated key is picked up and tests can
   * pass their own). Defaults to `process.env`.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

// ---------------------------------------------------------------------------------------------
// Chat Completions

/** One message of a Chat Completions transcript, in the wire shape. */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls: { id: string; type: 'function'; function: { name: string; arguments: string } }[] }
  | { role: 'tool'; tool_call_id: string; content: string };

function chatMessages(input: DriverInput): ChatMessage[] {
  const messages: ChatMessage[] = [
    { role: 'system', content: systemPrompt(input.task, input.subagents.length > 0) },
    { role: 'user', content: input.task.intent },
  ];
  for (const turn of pastTurns(input.steps, undefined, input.claims)) {
    messages.push({ role: 'assistant', content: null, tool_calls: turn.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) });
    for (const result of turn.results) messages.push({ role: 'tool', tool_call_id: result.id, content: result.content });
  }
  return messages;
}

const ChatCompletionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullish(),
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z
            .array(
              z.object({
                id: z.string().optional(),
                function: z.object({
                  name: z.string(),
                  // Some compatible servers send arguments as an object instead of a JSON string.
                  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
                }),
              }),
            )
            .nullish(),
        }),
      }),
    )
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      prompt_tokens_details: z.object({ cached_tokens: z.number().optional() }).nullish(),
      completion_tokens_details: z.object({ reasoning_tokens: z.number().optional() }).nullish(),
    })
    .nullish(),
});

function chatAnswer(json: unknown): ModelAnswer {
  const parsed = ChatCompletionSchema.safeParse(json);
  if (!parsed.success) throw shapeError('a chat completion', parsed.error);
  const choice = parsed.data.choices[0]!;
  const usage = parsed.data.usage;
  return {
    calls: (choice.message.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
    text: choice.message.content ?? undefined,
    refusal: choice.message.refusal ?? undefined,
    model: parsed.data.model,
    stopReason: choice.finish_reason ?? undefined,
    ...(usage ? { usage: usageOf(usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details?.cached_tokens, usage.completion_tokens_details?.reasoning_tokens) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Responses API

/** One input item of a Responses API request, in the wire shape. */
export type ResponsesInputItem =
  | { role: 'user'; content: string }
  | { type: 'function_call'; call_id: string; name: string; arguments: string }
  | { type: 'function_call_output'; call_id: string; output: string };

function responsesInput(input: DriverInput): ResponsesInputItem[] {
  const items: ResponsesInputItem[] = [{ role: 'user', content: input.task.intent }];
  for (const turn of pastTurns(input.steps, undefined, input.claims)) {
    for (const call of turn.calls) items.push({ type: 'function_call', call_id: call.id, name: call.name, arguments: call.arguments });
    for (const result of turn.results) items.push({ type: 'function_call_output', call_id: result.id, output: result.content });
  }
  return items;
}

const ResponseSchema = z.object({
  model: z.string().optional(),
  status: z.string().optional(),
  incomplete_details: z.object({ reason: z.string().optional() }).nullish(),
  output: z.array(
    z.union([
      z.object({ type: z.literal('function_call'), call_id: z.string().optional(), name: z.string(), arguments: z.string().optional() }),
      z.object({
        type: z.literal('message'),
        content: z.array(z.union([z.object({ type: z.literal('output_text'), text: z.string() }), z.object({ type: z.literal('refusal'), refusal: z.string() }), z.object({ type: z.string() })])),
      }),
      // Reasoning summaries, web search calls...: not actions.
      z.object({ type: z.string() }),
    ]),
  ),
  usage: z
    .object({
      input_tokens: z.number(),
      output_tokens: z.number(),
      input_tokens_details: z.object({ cached_tokens: z.number().optional() }).nullish(),
      output_tokens_details: z.object({ reasoning_tokens: z.number().optional() }).nullish(),
    })
    .nullish(),
});

function responsesAnswer(json: unknown): ModelAnswer {
  const parsed = ResponseSchema.safeParse(json);
  if (!parsed.success) throw shapeError('a Responses API response', parsed.error);
  const calls: ModelAnswer['calls'] = [];
  const texts: string[] = [];
  const refusals: string[] = [];
  for (const item of parsed.data.output) {
    if (item.type === 'function_call' && 'name' in item) calls.push({ id: item.call_id, name: item.name, arguments: item.arguments });
    else if (item.type === 'message' && 'content' in item) {
      for (const part of item.content) {
        if ('text' in part) texts.push(part.text);
        else if ('refusal' in part) refusals.push(part.refusal);
      }
    }
  }
  const usage = parsed.data.usage;
  return {
    calls,
    text: texts.length > 0 ? texts.join('') : undefined,
    refusal: refusals.length > 0 ? refusals.join('') : undefined,
    model: parsed.data.model,
    stopReason: parsed.data.incomplete_details?.reason ?? parsed.data.status,
    ...(usage ? { usage: usageOf(usage.input_tokens, usage.output_tokens, usage.input_tokens_details?.cached_tokens, usage.output_tokens_details?.reasoning_tokens) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Shared

function usageOf(input: number, output: number, cached?: number, reasoning?: number): ModelUsage {
  return {
    inputTokens: Math.max(0, Math.trunc(input)),
    outputTokens: Math.max(0, Math.trunc(output)),
    ...(cached === undefined ? {} : { cachedInputTokens: Math.max(0, Math.trunc(cached)) }),
    ...(reasoning === undefined ? {} : { reasoningTokens: Math.max(0, Math.trunc(reasoning)) }),
  };
}

class ShapeError extends Error {}

function shapeError(what: string, error: z.ZodError): ShapeError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
  return new ShapeError(`a response that is not ${what}: ${where}: ${issue?.message ?? 'invalid'}`);
}

/** The SDK's failure in the shared classification. */
function classify(error: unknown): ProviderFailure {
  if (error instanceof OpenAI.APIUserAbortError) return { kind: 'abort' };
  if (error instanceof OpenAI.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (error instanceof OpenAI.APIConnectionError) return { kind: 'connection', cause: error.cause ?? error };
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const body = error.error as { message?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : error.message.replace(/^\d{3}\s*/, '');
    return { kind: 'status', status: error.status, message, retryAfter: error.headers?.get('retry-after') ?? null };
  }
  return { kind: 'other', error };
}

/**
 * Asks an OpenAI (or OpenAI-compatible) endpoint for the next turn. Stateless: every call
 * rebuilds the full conversation from `input.steps`.
 */
export class OpenAIDriver implements ModelDriver {
  readonly #model: OpenAIModel;
  readonly #env: Readonly<Record<string, string | undefined>>;

  constructor(model: OpenAIModel, options: OpenAIDriverOptions = {}) {
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
    const { id, version, baseUrl, api, apiKeyEnv, requestTimeout } = this.#model;
    const apiKey = readApiKey(id, apiKeyEnv, this.#env);
    const base = baseUrl.replace(/\/+$/, '');
    const url = `${base}/${api === 'chat' ? 'chat/completions' : 'responses'}`;
    const offered = offeredFunctions(input);
    const client = new OpenAI({
      // Every option the SDK would otherwise read from the environment is given here.
      apiKey: apiKey ?? 'no-key',
      adminAPIKey: null,
      organization: null,
      project: null,
      webhookSecret: null,
      baseURL: base,
      // The SDK arms its own setTimeout from this: past 2^31 - 1 ms it would fire at once (a task file giving more than 24 days is refused where it is read).
      timeout: libraryTimeoutMs(durationToMs(requestTimeout)),
      maxRetries: 0,
      fetch: providerFetch(),
      logLevel: 'off',
      logger: silentLogger,
      // No key configured: no Authorization header at all (local servers).
      ...(apiKey === undefined ? { defaultHeaders: { Authorization: null } } : {}),
    });
    const secrets = [apiKey];
    let answer: ModelAnswer;
    try {
      const json = api === 'chat' ? await this.#chat(client, input, offered, signal) : await this.#responses(client, input, offered, signal);
      answer = api === 'chat' ? chatAnswer(json) : responsesAnswer(json);
    } catch (error) {
      if (error instanceof ShapeError) {
        throw providerError({ kind: 'other', error: new Error(error.message) }, { modelId: id, url, apiKeyEnv, requestTimeout, secrets }, signal);
      }
      throw providerError(classify(error), { modelId: id, url, apiKeyEnv, requestTimeout, secrets }, signal);
    }
    try {
      return finishTurn(answer, { decode: offered.decode, modelId: id, version, secrets });
    } catch (error) {
      throw providerError({ kind: 'other', error }, { modelId: id, url, apiKeyEnv, requestTimeout, secrets });
    }
  }

  async #chat(client: OpenAI, input: DriverInput, offered: OfferedFunctions, signal?: AbortSignal): Promise<unknown> {
    const { id, temperature, maxOutputTokens } = this.#model;
    const body = {
      model: id,
      ...(temperature === undefined ? {} : { temperature }),
      ...(maxOutputTokens === undefined ? {} : { max_completion_tokens: maxOutputTokens }),
      messages: chatMessages(input),
      tools: offered.functions.map((f) => ({ type: 'function' as const, function: { name: f.name, description: f.description, parameters: f.parameters } })),
      tool_choice: 'auto' as const,
    };
    // The SDK types the answer but does not check it: it is validated as untrusted input after.
    return client.chat.completions.create(body, signal === undefined ? {} : { signal });
  }

  async #responses(client: OpenAI, input: DriverInput, offered: OfferedFunctions, signal?: AbortSignal): Promise<unknown> {
    const { id, temperature, maxOutputTokens } = this.#model;
    const body = {
      model: id,
      instructions: systemPrompt(input.task, input.subagents.length > 0),
      input: responsesInput(input),
      tools: offered.functions.map((f) => ({ type: 'function' as const, name: f.name, description: f.description, parameters: f.parameters, strict: false })),
      tool_choice: 'auto' as const,
      store: false,
      ...(temperature === undefined ? {} : { temperature }),
      ...(maxOutputTokens === undefined ? {} : { max_output_tokens: maxOutputTokens }),
    };
    return client.responses.create(body, signal === undefined ? {} : { signal });
  }
}
