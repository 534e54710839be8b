/**
 * What of a span leaves the process for an OTLP collector: no more than the custody ledger keeps
 * (custody/span-record.ts). Every span in a Warden process passes here before its exporter,
 * Warden's own, a library's or one an embedding program's instrumentation adds (the provider may
 * be the global one), so the scrubbing is in one place:
 * - attributes of the span and of its events whose key is on the deny-list (`*.token`,
 *   `*.api_key`, `http.request.header.authorization`...) are dropped; their keys are listed under
 *   `warden.redacted_attributes`, as the ledger lists them under `redactedAttributes`;
 * - every compact JWS in the span name, status message, event names and string attribute values
 *   becomes `jws-sha256:<hex>` (its SHA-256: matchable, not replayable);
 * - attribute values OpenTelemetry does not allow (objects Temporal's workflow span sink merges
 *   in: memo, search attributes, worker internals) are left out.
 */
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { scrubAttributes, scrubTokens } from '../custody/span-record';

/** Attribute listing the keys dropped from a span and its events (sorted). */
export const REDACTED_ATTRIBUTES_KEY = 'warden.redacted_attributes';

/** The span as it may be exported: a view over `span` with scrubbed name, attributes, status and events. */
export function scrubbedSpan(span: ReadableSpan, deniedAttributes?: readonly string[]): ReadableSpan {
  const redacted = new Set<string>();
  const attributes: Record<string, unknown> = scrubAttributes(span.attributes, deniedAttributes, redacted);
  const events = span.events.map((event) => ({ ...event, name: scrubTokens(event.name), attributes: scrubAttributes(event.attributes ?? {}, deniedAttributes, redacted) }));
  if (redacted.size > 0) attributes[REDACTED_ATTRIBUTES_KEY] = [...redacted].sort();
  const status = span.status.message === undefined ? span.status : { ...span.status, message: scrubTokens(span.status.message) };
  // Everything else (context, times, links, resource, scope) is read through to the span.
  return Object.create(span, {
    name: { value: scrubTokens(span.name), enumerable: true },
    attributes: { value: attributes, enumerable: true },
    events: { value: events, enumerable: true },
    status: { value: status, enumerable: true },
  }) as ReadableSpan;
}

/** Hands `inner` (the OTLP batch processor) the {@link scrubbedSpan} of every ended span. */
export class ScrubbedSpanProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly deniedAttributes?: readonly string[],
  ) {}

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(scrubbedSpan(span, this.deniedAttributes));
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
