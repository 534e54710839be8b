/**
 * The Anthropic model driver (`driver: anthropic`), on the official `@anthropic-ai/sdk` package
 * and the Messages API. The conversation, tool mapping and secret removal are shared with every
 * driver (model-transcript.ts); this module only maps them to Messages: tools as `tools` with
 * `input_schema`, past calls as `tool_use` blocks answered by `tool_result` blocks.
 *
 * Invariants: the API key leaves this module only in the auth header the SDK sends (1.x:
 * `Authorization: Bearer`); it is read from the
 * environment at call time, never stored, never logged, and removed from every error and every
 * turn. The SDK's own credential discovery (environment, profiles) is never used.
 */
import Anthropic from '@anthropic-ai/sdk';
import { z } from 'zod';
import { durationToMs } from '../task/duration';
import { libraryTimeoutMs } from '../long-timer';
import type { ModelTurn } from '../task/task-run';
import type { Model } from '../task/task-schema';
import type { DriverInput, ModelDriver } from './model-driver';
import { finishTurn, offeredFunctions, pastTurns, systemPrompt, type ModelAnswer } from './model-transcript';
import { providerError, providerFetch, readApiKey, silentLogger, type ProviderFailure } from './provider-client';

/** The `agent.model` of a task whose driver is `anthropic`. */
export type AnthropicModel = Extract<Model, { driver: 'anthropic' }>;

export interface AnthropicDriverOptions {
  /** Where `apiKeyEnv` is looked up, at every call. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Anthropic's rule for `tool_use` ids; a past call id that breaks it is replaced. */
const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;

/** One message of a Messages API request, in the wire shape. */
export type AnthropicMessage =
  | { role: 'user'; content: string | { type: 'tool_result'; tool_use_id: string; content: string }[] }
  | { role: 'assistant'; content: { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }[] };

function messagesOf(input: DriverInput): AnthropicMessage[] {
  const messages: AnthropicMessage[] = [{ role: 'user', content: input.task.intent }];
  for (const turn of pastTurns(input.steps, TOOL_USE_ID, input.claims)) {
    messages.push({ role: 'assistant', content: turn.calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.input })) });
    messages.push({ role: 'user', content: turn.results.map((r) => ({ type: 'tool_result', tool_use_id: r.id, content: r.content })) });
  }
  return messages;
}

const MessageSchema = z.object({
  model: z.string().optional(),
  stop_reason: z.string().nullish(),
  content: z.array(
    z.union([
      z.object({ type: z.literal('text'), text: z.string() }),
      z.object({ type: z.literal('tool_use'), id: z.string().optional(), name: z.string(), input: z.unknown() }),
      // Thinking blocks, server tool results...: not actions.
      z.object({ type: z.string() }),
    ]),
  ),
  usage: z.object({ input_tokens: z.number(), output_tokens: z.number(), cache_read_input_tokens: z.number().nullish() }).nullish(),
});

class ShapeError extends Error {}

function answerOf(json: unknown): ModelAnswer {
  const parsed = MessageSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new ShapeError(`a response that is not a message: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const calls: ModelAnswer['calls'] = [];
  const texts: string[] = [];
  for (const block of parsed.data.content) {
    if (block.type === 'tool_use' && 'name' in block) {
      const input = block.input;
      // A non-object input is passed on as text, for the shared rules to refuse with the others.
      calls.push({ id: block.id, name: block.name, arguments: input !== null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>) : JSON.stringify(input ?? null) });
    } else if (block.type === 'text' && 'text' in block) texts.push(block.text);
  }
  const usage = parsed.data.usage;
  return {
    calls,
    text: texts.length > 0 ? texts.join('') : undefined,
    model: parsed.data.model,
    stopReason: parsed.data.stop_reason ?? undefined,
    ...(usage
      ? {
          usage: {
            inputTokens: Math.max(0, Math.trunc(usage.input_tokens)),
            outputTokens: Math.max(0, Math.trunc(usage.output_tokens)),
            ...(usage.cache_read_input_tokens == null ? {} : { cachedInputTokens: Math.max(0, Math.trunc(usage.cache_read_input_tokens)) }),
          },
        }
      : {}),
  };
}

function classify(error: unknown): ProviderFailure {
  if (error instanceof Anthropic.APIUserAbortError) return { kind: 'abort' };
  if (error instanceof Anthropic.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (error instanceof Anthropic.APIConnectionError) return { kind: 'connection', cause: error.cause ?? error };
  if (error instanceof Anthropic.APIError && typeof error.status === 'number') {
    const body = error.error as { error?: { message?: unknown } } | undefined;
    const message = typeof body?.error?.message === 'string' ? body.error.message : error.message.replace(/^\d{3}\s*/, '');
    return { kind: 'status', status: error.status, message, retryAfter: error.headers?.get('retry-after') ?? null };
  }
  return { kind: 'other', error };
}

/** Asks Anthropic's Messages API for the next turn. Stateless: every call rebuilds the conversation. */
export class AnthropicDriver implements ModelDriver {
  readonly #model: AnthropicModel;
  readonly #env: Readonly<Record<string, string | undefined>>;

  constructor(model: AnthropicModel, options: AnthropicDriverOptions = {}) {
    this.#model = model;
    this.#env = options.env ?? process.env;
  }

  /**
   * @throws ModelError `ERR_MODEL_CONFIG` (key variable missing, clashing tool names),
   *   `ERR_MODEL_UNAVAILABLE` (retryable: network, timeout, HTTP 408/429/5xx, 529 overloaded),
   *   `ERR_MODEL_PROTOCOL` (other HTTP status, malformed response or tool call).
   *   If `signal` aborts, its reason is thrown as is.
   */
  async proposeTurn(input: DriverInput, signal?: AbortSignal): Promise<ModelTurn> {
    const { id, version, baseUrl, apiKeyEnv, temperature, maxOutputTokens, requestTimeout } = this.#model;
    const apiKey = readApiKey(id, apiKeyEnv, this.#env);
    const base = baseUrl.replace(/\/+$/, '');
    const url = `${base}/v1/messages`;
    const offered = offeredFunctions(input);
    const client = new Anthropic({
      apiKey: apiKey ?? 'no-key',
      authToken: null,
      baseURL: base,
      // The SDK arms its own setTimeout from this: past 2^31 - 1 ms it would fire at once (a task file giving more than 24 days is refused where it is read).
      timeout: libraryTimeoutMs(durationToMs(requestTimeout)),
      maxRetries: 0,
      fetch: providerFetch(),
      logLevel: 'off',
      logger: silentLogger,
      ...(apiKey === undefined ? { defaultHeaders: { 'x-api-key': null, Authorization: null } } : {}),
    });
    const secrets = [apiKey];
    const context = { modelId: id, url, apiKeyEnv, requestTimeout, secrets };
    let answer: ModelAnswer;
    try {
      const message = await client.messages.create(
        {
          model: id,
          max_tokens: maxOutputTokens,
          system: systemPrompt(input.task, input.subagents.length > 0),
          messages: messagesOf(input),
          tools: offered.functions.map((f) => ({ name: f.name, description: f.description, input_schema: { type: 'object' as const, ...f.parameters } })),
          tool_choice: { type: 'auto' },
          ...(temperature === undefined ? {} : { temperature }),
        },
        signal === undefined ? {} : { signal },
      );
      answer = answerOf(message);
    } catch (error) {
      if (error instanceof ShapeError) throw providerError({ kind: 'other', error: new Error(error.message) }, context, signal);
      throw providerError(classify(error), context, signal);
    }
    try {
      return finishTurn(answer, { decode: offered.decode, modelId: id, version, secrets });
    } catch (error) {
      throw providerError({ kind: 'other', error }, context);
    }
  }
}
