/**
 * A `fetch` for the SDK's streamable-HTTP client transport that bounds what a server can make the
 * worker hold, while reading: one JSON response body, or one SSE event, of at most `maxBytes`
 * (the same bound as a stdio message, MAX_MESSAGE_BYTES). Without it the SDK reads a response
 * whole (`response.json()`, or an SSE event of any length) before Warden's result cap can refuse
 * it, so a hostile server could take the worker down with a few GiB.
 *
 * Past the bound the body stream errors and the connection is cut (the reader is cancelled);
 * `onOverflow` is told once, so the caller can end the session and fail the pending request
 * instead of waiting for its timeout. A `Content-Length` over the bound is refused before reading.
 */

export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
}

export interface BoundedFetchOptions {
  /** Largest JSON body, or SSE event (bytes between blank lines), in bytes. */
  maxBytes: number;
  /** Called once per response that passes the bound, with a message naming the bound. */
  onOverflow?: (error: ResponseTooLargeError) => void;
  /** The fetch to wrap (default: the global one). */
  fetch?: typeof fetch;
}

/** Returns a fetch whose responses' bodies error past `maxBytes` (see the module comment). */
export function boundedFetch(options: BoundedFetchOptions): typeof fetch {
  const inner = options.fetch ?? fetch;
  return async (input, init) => {
    const response = await inner(input, init);
    if (response.body === null) return response;
    const sse = (response.headers.get('content-type') ?? '').toLowerCase().includes('text/event-stream');
    const what = sse ? 'an SSE event' : 'a response';
    const tooLarge = (read: string) => {
      const error = new ResponseTooLargeError(`the MCP server sent ${what} over ${options.maxBytes} bytes (${read}); the connection was cut`);
      options.onOverflow?.(error);
      return error;
    };
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (!sse && Number.isFinite(declared) && declared > options.maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw tooLarge(`Content-Length ${declared}`);
    }
    const reader = response.body.getReader();
    let counted = 0;
    // SSE: bytes since the last event boundary (an empty line: LF LF, CR CR or CRLF CRLF).
    let lineLength = 0;
    let lastWasCr = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          controller.error(error);
          return;
        }
        if (chunk.done) {
          controller.close();
          return;
        }
        const bytes = chunk.value;
        if (!sse) {
          counted += bytes.byteLength;
        } else {
          for (const byte of bytes) {
            counted += 1;
            if (byte === 0x0a && lastWasCr) {
              lastWasCr = false;
              continue;
            }
            lastWasCr = byte === 0x0d;
            if (byte === 0x0a || byte === 0x0d) {
              if (lineLength === 0) counted = 0;
              lineLength = 0;
            } else {
              lineLength += 1;
            }
          }
        }
        if (counted > options.maxBytes) {
          await reader.cancel().catch(() => undefined);
          controller.error(tooLarge(`read ${options.maxBytes}+ bytes`));
          return;
        }
        controller.enqueue(bytes);
      },
      async cancel(reason) {
        await reader.cancel(reason).catch(() => undefined);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
