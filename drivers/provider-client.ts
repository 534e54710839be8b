/**
 * What the official SDK clients (`openai`, `@anthropic-ai/sdk`) are given and how their failures
 * become Warden's, the same way for every provider.
 *
 * Invariants:
 * - The SDKs read much from the environment (base URLs, admin keys, custom headers, log levels,
 *   credential profiles). Drivers pass every such option explicitly, so only the task's model
 *   block and the key variable it names decide where a request goes and what it carries.
 * - HTTP goes through {@link providerFetch}: redirects are never followed (one could carry the
 *   key to a host the task never named) and a response body is read to a size limit.
 * - SDK retries are off: the model call is a Temporal activity, and Temporal retries it.
 * - An error message never holds a response body of a 401/403 (servers echo keys there), and
 *   every message passes through `redactSecret` before it leaves.
 */
import { WHOSE_ENVIRONMENT } from '../secrets/worker-environment';
import { ModelError, type ErrorCode } from '../errors';
import { redactSecret } from '../secrets/redact-values';
import { deniedEnvReason } from '../secrets/reserved-env';
import { cutText } from '../cut-text';

/** Successful responses above this size are refused rather than buffered without bound. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
const EXCERPT_CHARS = 200;

/** A response body that outgrew {@link MAX_RESPONSE_BYTES}: a protocol fault, not a network one. */
export class ResponseTooLargeError extends Error {}

/**
 * `fetch` for the SDK clients: no redirects followed (a 3xx is handed to the SDK as the answer),
 * bodies capped at `maxBytes`.
 */
export function providerFetch(maxBytes: number = MAX_RESPONSE_BYTES): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, { ...init, redirect: 'manual' });
    if (response.body === null) return response;
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new ResponseTooLargeError(`the response is larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    return new Response(Buffer.concat(chunks), { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** A failed SDK call, classified by the driver with its SDK's error classes. */
export type ProviderFailure =
  | { kind: 'status'; status: number; message: string; retryAfter?: string | null }
  | { kind: 'timeout' }
  | { kind: 'connection'; cause: unknown }
  | { kind: 'abort' }
  | { kind: 'other'; error: unknown };

/** Where the failure happened, for messages: the model, the endpoint, the key's variable. */
export interface FailureContext {
  modelId: string;
  url: string;
  apiKeyEnv?: string | undefined;
  requestTimeout: string;
  /** Values to remove from every message (the key). */
  secrets: readonly (string | undefined)[];
}

function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

/** A short, single-line excerpt of an error message. */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return '(empty body)';
  return flat.length > EXCERPT_CHARS ? `${cutText(flat, EXCERPT_CHARS)}...` : flat;
}

/**
 * The ModelError for a failed call, or the caller's abort reason when `signal` aborted (so
 * cancellation stays cancellation).
 * - `ERR_MODEL_UNAVAILABLE` (retryable): network, timeout, HTTP 408/429/5xx;
 * - `ERR_MODEL_PROTOCOL`: any other status (401/403 without the body), an oversized response.
 */
export function providerError(failure: ProviderFailure, context: FailureContext, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  const { modelId, url } = context;
  const fail = (code: ErrorCode, message: string, extra: { status?: number; retryable?: boolean; retryAfter?: string } = {}): ModelError => {
    const { retryable, ...details } = extra;
    const clean = (text: string) => context.secrets.reduce<string>((out, secret) => redactSecret(out, secret), text);
    return new ModelError(code, clean(message), { details: { model: modelId, url: clean(url), ...details }, retryable: retryable ?? false });
  };
  switch (failure.kind) {
    case 'abort':
      return fail('ERR_MODEL_UNAVAILABLE', `the call to model "${modelId}" at ${url} was aborted`, { retryable: true });
    case 'timeout':
      return fail('ERR_MODEL_UNAVAILABLE', `model "${modelId}" at ${url} did not answer within ${context.requestTimeout}`, { retryable: true });
    case 'connection': {
      const tooLarge = failure.cause instanceof ResponseTooLargeError || (failure.cause as { cause?: unknown } | undefined)?.cause instanceof ResponseTooLargeError;
      if (tooLarge) return fail('ERR_MODEL_PROTOCOL', `model "${modelId}" at ${url} sent a response larger than ${MAX_RESPONSE_BYTES} bytes`);
      return fail('ERR_MODEL_UNAVAILABLE', `cannot reach model "${modelId}" at ${url}: ${describeCause(failure.cause)}`, { retryable: true });
    }
    case 'status': {
      const { status } = failure;
      if (status === 408 || status === 429 || status >= 500) {
        return fail('ERR_MODEL_UNAVAILABLE', `model "${modelId}" at ${url} answered HTTP ${status}: ${excerpt(failure.message)}`, {
          status,
          retryable: true,
          ...(failure.retryAfter ? { retryAfter: failure.retryAfter } : {}),
        });
      }
      if (status === 401 || status === 403) {
        // No excerpt at all: servers like to echo (part of) the key in exactly these answers.
        const hint = context.apiKeyEnv === undefined ? 'no API key was sent (apiKeyEnv is not set)' : `check the key in $${context.apiKeyEnv}`;
        return fail('ERR_MODEL_PROTOCOL', `model "${modelId}" at ${url} refused the credentials (HTTP ${status}); ${hint}`, { status });
      }
      const what = status >= 300 && status < 400 ? 'redirected (not followed)' : excerpt(failure.message);
      return fail('ERR_MODEL_PROTOCOL', `model "${modelId}" at ${url} answered HTTP ${status}: ${what}`, { status });
    }
    case 'other': {
      if (failure.error instanceof ModelError) return fail(failure.error.code, failure.error.message);
      return fail('ERR_MODEL_PROTOCOL', `model "${modelId}" at ${url} sent an answer the SDK could not read: ${describeCause(failure.error)}`);
    }
  }
}

/** The key named by `apiKeyEnv`, read now; `undefined` when the model needs none. */
export function readApiKey(modelId: string, apiKeyEnv: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (apiKeyEnv === undefined) return undefined;
  const denied = deniedEnvReason(apiKeyEnv, env);
  if (denied !== undefined) throw new ModelError('ERR_MODEL_CONFIG', `model "${modelId}": apiKeyEnv ${denied}`, { details: { model: modelId, apiKeyEnv } });
  const value = env[apiKeyEnv];
  if (value === undefined || value === '') {
    throw new ModelError('ERR_MODEL_CONFIG', `model "${modelId}" needs an API key in the environment variable ${apiKeyEnv}, which is not set ${WHOSE_ENVIRONMENT}`, {
      details: { model: modelId, apiKeyEnv },
    });
  }
  return value;
}

/** A logger that drops everything: SDK debug logs could print request headers. */
export const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
