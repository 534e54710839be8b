/**
 * What of an OpenTelemetry span goes into the custody ledger.
 *
 * Invariant: no bearer material is recorded. Attributes whose key is on the deny-list are
 * dropped (their keys are listed under `redactedAttributes`, so the redaction itself is on
 * record), and every compact JWS found in any recorded string (attribute values, event
 * attributes, status message, span and event names) is replaced by `jws-sha256:<hex>`, the
 * SHA-256 of the token: enough to match a token an auditor holds, useless to replay it.
 * Only JSON-able attribute values are kept (strings, finite numbers, booleans and arrays of
 * them); objects that instrumentation attaches (Temporal's workflow info) are left out.
 */
import { createHash } from 'node:crypto';
import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { isDeniedAttributeKey } from './attributes';
import { toWellFormed } from '../cut-text';
import type { JsonValue } from './canonical-json';

type Scalar = string | number | boolean;
type AttributeValue = Scalar | Scalar[];

export const SpanRecordBodySchema = z.strictObject({
  name: z.string(),
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string().nullable(),
  kind: z.enum(['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER']),
  /** ISO 8601 with nanoseconds. */
  start: z.string(),
  end: z.string(),
  status: z.strictObject({ code: z.enum(['UNSET', 'OK', 'ERROR']), message: z.string().optional() }),
  attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))])),
  events: z.array(
    z.strictObject({
      name: z.string(),
      time: z.string(),
      attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))])),
    }),
  ),
  links: z.array(z.strictObject({ traceId: z.string(), spanId: z.string() })),
  service: z.string().nullable(),
  scope: z.strictObject({ name: z.string(), version: z.string().optional() }),
  /** Keys dropped by the deny-list. */
  redactedAttributes: z.array(z.string()).optional(),
});
export type SpanRecordBody = z.infer<typeof SpanRecordBodySchema>;

export interface SpanRecordOptions {
  /** Keys to drop, in addition to the pattern in `attributes.ts` (default `DENIED_ATTRIBUTE_KEYS`). */
  deniedAttributes?: readonly string[];
}

const SPAN_KINDS: Record<number, SpanRecordBody['kind']> = {
  [SpanKind.INTERNAL]: 'INTERNAL',
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

const STATUS_CODES: Record<number, SpanRecordBody['status']['code']> = {
  [SpanStatusCode.UNSET]: 'UNSET',
  [SpanStatusCode.OK]: 'OK',
  [SpanStatusCode.ERROR]: 'ERROR',
};

// base64url segments; the header must decode to a JSON object with "alg" for a match to count.
const JWS_CANDIDATE = /[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{0,}/g;

function isJwsHeader(segment: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && !Array.isArray(header) && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/** Whether `value` is exactly one compact JWS (three base64url parts, a JSON header with `alg`). */
export function looksLikeCompactJws(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 3 && parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p)) && (parts[0] ?? '') !== '' && (parts[1] ?? '') !== '' && isJwsHeader(parts[0] ?? '');
}


/**
 * `value` as well-formed Unicode: each lone surrogate (a JavaScript string may hold one; JSON
 * "\ud800" parses to one) replaced by U+FFFD, as `String.prototype.toWellFormed` does. Canonical
 * JSON refuses lone surrogates, and the strings a span carries come from outside (paths the model
 * chose, tools' error messages): unmended, one would make the span, and its batch, unrecordable.
 */
export function wellFormed(value: string): string {
  return toWellFormed(value);
}

/** `value` well-formed ({@link wellFormed}) with every compact JWS in it replaced by `jws-sha256:<hex of its SHA-256>`. */
export function scrubTokens(raw: string): string {
  const value = wellFormed(raw);
  if (!value.includes('.')) return value;
  return value.replace(JWS_CANDIDATE, (match) => {
    // The token may be glued to other base64url characters (`%20eyJ...`): find where its header starts.
    const headerEnd = match.indexOf('.');
    for (let start = 0; start < headerEnd - 1; start += 1) {
      if (isJwsHeader(match.slice(start, headerEnd))) {
        const token = match.slice(start);
        return `${match.slice(0, start)}jws-sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
      }
    }
    return match;
  });
}

function scalar(value: unknown): Scalar | undefined {
  if (typeof value === 'string') return scrubTokens(value);
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  return undefined;
}

function attributeValue(value: unknown): AttributeValue | undefined {
  if (Array.isArray(value)) {
    const items: Scalar[] = [];
    for (const item of value as unknown[]) {
      // OTel allows null/undefined holes in arrays; they carry nothing.
      if (item === null || item === undefined) continue;
      const converted = scalar(item);
      if (converted === undefined) return undefined;
      items.push(converted);
    }
    return items;
  }
  return scalar(value);
}

/**
 * What the default deny-list makes of an attribute key: undefined when it is dropped, else the key
 * as recorded (scrubbed). Spans carry the same few dozen keys over and over, and each key cost a
 * deny-list scan, a pattern test and a JWS scan per span; the answer depends on the key text alone.
 * Bounded: emptied when it reaches {@link MAX_REMEMBERED_KEYS} texts (keys are caller-chosen).
 */
const defaultKeyVerdicts = new Map<string, { denied: boolean; recorded: string }>();
const MAX_REMEMBERED_KEYS = 1024;

function keyVerdict(key: string, denied: readonly string[] | undefined): { denied: boolean; recorded: string } {
  if (denied !== undefined) return isDeniedAttributeKey(key, denied) ? { denied: true, recorded: wellFormed(key) } : { denied: false, recorded: scrubTokens(key) };
  let verdict = defaultKeyVerdicts.get(key);
  if (verdict === undefined) {
    verdict = isDeniedAttributeKey(key) ? { denied: true, recorded: wellFormed(key) } : { denied: false, recorded: scrubTokens(key) };
    if (defaultKeyVerdicts.size >= MAX_REMEMBERED_KEYS) defaultKeyVerdicts.clear();
    defaultKeyVerdicts.set(key, verdict);
  }
  return verdict;
}

function recordAttributes(attributes: Attributes, denied: readonly string[] | undefined, redacted: Set<string>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const verdict = keyVerdict(key, denied);
    if (verdict.denied) {
      redacted.add(verdict.recorded);
      continue;
    }
    const converted = attributeValue(attributes[key]);
    if (converted !== undefined) out[verdict.recorded] = converted;
  }
  return out;
}

/**
 * `attributes` as the ledger keeps them: deny-listed keys dropped (and added to `redacted`),
 * compact JWS in string values replaced by `jws-sha256:<hex>`, non-JSON values left out.
 * Shared with the OTLP export (telemetry/scrubbed-span-processor.ts), which must leak no more.
 */
export function scrubAttributes(attributes: Attributes, denied: readonly string[] | undefined, redacted: Set<string>): Record<string, AttributeValue> {
  return recordAttributes(attributes, denied, redacted);
}

/** ISO 8601 UTC with all nine fractional digits of an OTel high-resolution time. */
export function hrTimeToIso(time: HrTime): string {
  const [seconds, nanos] = time;
  // A span's start, end and events mostly fall in the same second: format each second once.
  if (seconds !== lastSecond) {
    lastSecondIso = new Date(seconds * 1000).toISOString().slice(0, 19);
    lastSecond = seconds;
  }
  return `${lastSecondIso}.${String(nanos).padStart(9, '0')}Z`;
}
let lastSecond = Number.NaN;
let lastSecondIso = '';

/** The span as it is recorded in the ledger (see the module header for what is left out). */
export function spanToRecordBody(span: ReadableSpan, options: SpanRecordOptions = {}): SpanRecordBody {
  const redacted = new Set<string>();
  const context = span.spanContext();
  const serviceName = span.resource.attributes['service.name'];
  const scope = span.instrumentationLibrary;
  const body: SpanRecordBody = {
    name: scrubTokens(span.name),
    traceId: context.traceId,
    spanId: context.spanId,
    parentSpanId: span.parentSpanId ?? null,
    kind: SPAN_KINDS[span.kind] ?? 'INTERNAL',
    start: hrTimeToIso(span.startTime),
    end: hrTimeToIso(span.endTime),
    status: {
      code: STATUS_CODES[span.status.code] ?? 'UNSET',
      ...(span.status.message === undefined || span.status.message === '' ? {} : { message: scrubTokens(span.status.message) }),
    },
    attributes: recordAttributes(span.attributes, options.deniedAttributes, redacted),
    events: span.events.map((event) => ({
      name: scrubTokens(event.name),
      time: hrTimeToIso(event.time),
      attributes: recordAttributes(event.attributes ?? {}, options.deniedAttributes, redacted),
    })),
    links: span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId })),
    service: typeof serviceName === 'string' ? serviceName : null,
    scope: { name: scope.name, ...(scope.version === undefined ? {} : { version: scope.version }) },
  };
  if (redacted.size > 0) body.redactedAttributes = [...redacted].sort();
  return body;
}

/** {@link spanToRecordBody} typed as a JSON value for the ledger. */
export function spanRecordJson(span: ReadableSpan, options?: SpanRecordOptions): JsonValue {
  return spanToRecordBody(span, options) as unknown as JsonValue;
}
