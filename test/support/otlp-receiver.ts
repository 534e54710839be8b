/**
 * A real OTLP/HTTP receiver on 127.0.0.1: it accepts what OpenTelemetry's OTLP/HTTP exporters
 * POST to `/v1/traces` and `/v1/metrics` (JSON encoding, `application/json`, as
 * `@opentelemetry/exporter-*-otlp-http` sends it), decodes the export requests per the OTLP
 * protobuf-JSON mapping (hex trace and span ids, enum numbers, `AnyValue` wrappers), and answers
 * as a collector does (`200 {}`). Anything it cannot decode is answered 400 and remembered, so a
 * test can assert that nothing was malformed.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  name: string;
  kind: 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  startMs: number;
  endMs: number;
  status: { code: 'UNSET' | 'OK' | 'ERROR'; message?: string };
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  resource: Record<string, unknown>;
  scope: string;
}

export interface ReceivedDataPoint {
  attributes: Record<string, unknown>;
  /** Histograms. */
  count?: number;
  sum?: number;
  /** Sums and gauges. */
  value?: number;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  type: 'histogram' | 'sum' | 'gauge' | 'other';
  points: ReceivedDataPoint[];
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** Base endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  url: string;
  spans: ReceivedSpan[];
  metrics: ReceivedMetric[];
  /** Every request: path, content type, and whether it decoded. */
  requests: { path: string; contentType: string; ok: boolean; error?: string }[];
  close(): Promise<void>;
}

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: string;
};
type KeyValue = { key: string; value?: AnyValue };

function anyValue(value: AnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(anyValue);
  if (value.kvlistValue !== undefined) return attributesOf(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    if (typeof key !== 'string') throw new Error('attribute without a string key');
    out[key] = anyValue(value);
  }
  return out;
}

const SPAN_KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;
const STATUS_CODES = ['UNSET', 'OK', 'ERROR'] as const;

function enumOf<T extends readonly string[]>(values: T, raw: unknown, prefix: string): T[number] {
  if (typeof raw === 'number' && values[raw] !== undefined) return values[raw] as T[number];
  if (typeof raw === 'string') {
    const bare = raw.startsWith(prefix) ? raw.slice(prefix.length) : raw;
    if ((values as readonly string[]).includes(bare)) return bare as T[number];
  }
  if (raw === undefined) return values[0] as T[number];
  throw new Error(`unknown enum value ${JSON.stringify(raw)}`);
}

const HEX_ID = /^[0-9a-f]+$/;
function hexId(raw: unknown, length: number, what: string): string {
  if (typeof raw !== 'string' || raw.length !== length || !HEX_ID.test(raw)) throw new Error(`${what} is not ${length} hex digits: ${JSON.stringify(raw)}`);
  return raw;
}

const nanosToMs = (raw: unknown) => Number(BigInt(String(raw ?? 0)) / 1_000_000n);

interface TracesRequest {
  resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[];
}

function decodeTraces(body: TracesRequest): ReceivedSpan[] {
  if (!Array.isArray(body.resourceSpans)) throw new Error('no resourceSpans');
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const status = (span.status ?? {}) as { code?: unknown; message?: string };
        const parent = span.parentSpanId;
        out.push({
          name: String(span.name),
          kind: enumOf(SPAN_KINDS, span.kind, 'SPAN_KIND_'),
          traceId: hexId(span.traceId, 32, 'traceId'),
          spanId: hexId(span.spanId, 16, 'spanId'),
          parentSpanId: parent === undefined || parent === '' ? undefined : hexId(parent, 16, 'parentSpanId'),
          startMs: nanosToMs(span.startTimeUnixNano),
          endMs: nanosToMs(span.endTimeUnixNano),
          status: { code: enumOf(STATUS_CODES, status.code, 'STATUS_CODE_'), ...(status.message ? { message: status.message } : {}) },
          attributes: attributesOf(span.attributes as KeyValue[] | undefined),
          events: ((span.events ?? []) as { name: string; attributes?: KeyValue[] }[]).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

interface MetricsRequest {
  resourceMetrics?: { resource?: { attributes?: KeyValue[] }; scopeMetrics?: { metrics?: Record<string, unknown>[] }[] }[];
}

function decodeMetrics(body: MetricsRequest): ReceivedMetric[] {
  if (!Array.isArray(body.resourceMetrics)) throw new Error('no resourceMetrics');
  const out: ReceivedMetric[] = [];
  for (const rm of body.resourceMetrics) {
    const resource = attributesOf(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const metric of sm.metrics ?? []) {
        type Point = { attributes?: KeyValue[]; count?: unknown; sum?: number; asDouble?: number; asInt?: unknown };
        const histogram = metric.histogram as { dataPoints?: Point[] } | undefined;
        const sum = metric.sum as { dataPoints?: Point[] } | undefined;
        const gauge = metric.gauge as { dataPoints?: Point[] } | undefined;
        const type = histogram ? 'histogram' : sum ? 'sum' : gauge ? 'gauge' : 'other';
        const points = (histogram ?? sum ?? gauge)?.dataPoints ?? [];
        out.push({
          name: String(metric.name),
          unit: String(metric.unit ?? ''),
          type,
          resource,
          points: points.map((p) => ({
            attributes: attributesOf(p.attributes),
            ...(type === 'histogram' ? { count: Number(p.count ?? 0), sum: Number(p.sum ?? 0) } : { value: p.asDouble ?? Number(p.asInt ?? 0) }),
          })),
        });
      }
    }
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const receiver: Omit<OtlpReceiver, 'url' | 'close'> = { spans: [], metrics: [], requests: [] };
  const server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '';
      const contentType = String(req.headers['content-type'] ?? '');
      try {
        if (req.method !== 'POST') throw new Error(`method ${req.method}`);
        if (!contentType.startsWith('application/json')) throw new Error(`content type ${contentType} (this receiver decodes OTLP/JSON)`);
        const body = JSON.parse(await readBody(req)) as unknown;
        if (path === '/v1/traces') receiver.spans.push(...decodeTraces(body as TracesRequest));
        else if (path === '/v1/metrics') receiver.metrics.push(...decodeMetrics(body as MetricsRequest));
        else throw new Error(`unknown path ${path}`);
        receiver.requests.push({ path, contentType, ok: true });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (error) {
        receiver.requests.push({ path, contentType, ok: false, error: (error as Error).message });
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: (error as Error).message }));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...receiver,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  } as OtlpReceiver;
}
