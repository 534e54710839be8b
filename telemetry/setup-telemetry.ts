/**
 * Tracing for a Warden process: an OpenTelemetry tracer provider whose spans go to the custody
 * ledger and, when an OTLP endpoint is configured, also to it in batches (the Jaeger of
 * `docker-compose.yml`).
 *
 * The ledger is the state folder's SQLite file, or the shared ledger in PostgreSQL when
 * `WARDEN_DATABASE_URL` is set (one chain for every worker). Spans reach it by group commit by
 * default (`commit: 'group'`: `span.end()` only queues; batches are appended off the hot path and
 * flushed before Temporal hears of the activity or workflow task that made them, see
 * custody/ledger-span-exporter.ts); `commit: 'sync'` appends inside `span.end()` (SQLite only).
 *
 * Every checkpoint the ledger signs is published as a signed tree head outside the ledger: to
 * the witness file or folder `WARDEN_CUSTODY_WITNESS` names (custody/checkpoint-witness.ts), and
 * as a `warden.custody.checkpoint` span to the OTLP endpoint (never to the ledger itself).
 *
 * GenAI metrics derived from the spans (`gen-ai-metrics.ts`) go to the same collector. The standard
 * environment variables are honoured: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
 * (resource), `OTEL_EXPORTER_OTLP_ENDPOINT` and the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
 * `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` /
 * `OTEL_SDK_DISABLED=true` (no OTLP export), `OTEL_METRIC_EXPORT_INTERVAL` (ms). None of them
 * turns the custody ledger off (`WARDEN_TELEMETRY=0` does, see `process-telemetry.ts`).
 *
 * What goes to OTLP is scrubbed as the ledger is (scrubbed-span-processor.ts: deny-listed
 * attributes dropped, compact JWS hashed in names, status messages, events and values). The OTLP
 * side is best effort (a failed export is reported, never thrown); the ledger is the record. `shutdown()` flushes everything, closes the ledger if it was opened here and undoes the
 * global registration it made.
 */
import { context, metrics, propagation, ProxyTracerProvider, trace, type Context, type Meter, type Tracer } from '@opentelemetry/api';
import { MonitorMetricsSpanProcessor } from './monitor-metrics';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { GenAiMetricsSpanProcessor } from './gen-ai-metrics';
import { ScrubbedSpanProcessor } from './scrubbed-span-processor';
import { join } from 'node:path';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { OTEL_ATTR } from '../custody/attributes';
import { openCheckpointWitness, type CheckpointWitness } from '../custody/checkpoint-witness';
import { CustodyLedger, KEY_DIR } from '../custody/ledger';
import type { Checkpoint } from '../custody/ledger-record';
import { LedgerSpanExporter, LedgerSpanProcessor, type LedgerSpanExporterOptions } from '../custody/ledger-span-exporter';
import { SharedCustodyLedger } from '../custody/shared-ledger';
import type { PublicJwk } from '../custody/signing-key';
import { openPostgresDatabase } from '../state/postgres-database';
import { workerIdOf } from '../state/state-store';
import { terminalWriter } from '../terminal-text';

export const TRACER_NAME = 'warden';

export interface TelemetryOptions {
  /** State folder: the ledger is `<stateDir>/custody.db` unless `ledger` is given. */
  stateDir: string;
  /** `service.name` of every span (e.g. `warden-worker`, `warden-cli`). */
  serviceName: string;
  /**
   * OTLP/HTTP base endpoint (spans go to `<endpoint>/v1/traces`); default
   * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` of `env`.
   * No OTLP export when none is set.
   */
  otlpEndpoint?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * An open ledger to record into (left open on shutdown); default: opened here, closed on
   * shutdown: the shared ledger when `env` has `WARDEN_DATABASE_URL`, else `<stateDir>/custody.db`.
   */
  ledger?: CustodyLedger | SharedCustodyLedger;
  /** `group` (default) or `sync` commit of spans (see the module header; `sync` needs the SQLite ledger). */
  commit?: 'group' | 'sync';
  /** Witness file or folder for signed tree heads; default `WARDEN_CUSTODY_WITNESS` of `env`; none when unset. */
  witness?: string;
  /** Interval checkpoints of a ledger opened here (default 100). */
  checkpointEvery?: number;
  /**
   * Register as the global tracer provider, context manager and W3C propagator (default true).
   * Temporal's interceptors propagate trace context through the global propagator, so without it
   * client, workflow and activity spans do not join one trace. Skipped when another global
   * provider is already registered.
   */
  register?: boolean;
  /** Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES` of `env` override them). */
  resourceAttributes?: Record<string, string>;
  /**
   * Where GenAI metrics go, instead of OTLP (tests, embedding programs). Default: a periodic OTLP
   * reader when an OTLP metrics endpoint is configured, else no metrics.
   */
  metricReaders?: MetricReader[];
  /**
   * Called when an OTLP export (spans or metrics) fails, e.g. the collector is down. OTLP is best
   * effort: a failure never fails the process's work or its shutdown. Default: ignored.
   */
  onOtlpError?: (error: unknown) => void;
  /** Passed to the ledger exporter (task resolution, task-end test, deny-list). */
  exporter?: Omit<LedgerSpanExporterOptions, 'ledger' | 'closeLedgerOnShutdown'>;
  /** Where the monitor's metrics go (telemetry/monitor-metrics.ts); default the global meter provider's. */
  meter?: Meter;
}

export interface Telemetry {
  tracerProvider: NodeTracerProvider;
  /** Tracer of the provider, for Warden's own spans and the Temporal interceptors. */
  tracer: Tracer;
  resource: Resource;
  /** Every processor as one: what the Temporal workflow span sink must feed. */
  spanProcessor: SpanProcessor;
  ledger: CustodyLedger | SharedCustodyLedger;
  ledgerExporter: LedgerSpanExporter;
  /** Where signed tree heads are published, if anywhere. */
  witness: CheckpointWitness | undefined;
  /** Where OTLP spans go, if anywhere. */
  otlpUrl: string | undefined;
  /** Where OTLP metrics go, if anywhere. */
  otlpMetricsUrl: string | undefined;
  /** The GenAI metrics' meter provider, when metrics go anywhere. */
  meterProvider: MeterProvider | undefined;
  /** Whether this telemetry is the process's global one. */
  registered: boolean;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

const isTrue = (value: string | undefined) => (value ?? '').trim().toLowerCase() === 'true';
const isNone = (value: string | undefined) => (value ?? '').trim().toLowerCase() === 'none';

/**
 * The OTLP/HTTP URL of one signal: an explicit base endpoint, else the signal's own variable
 * (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT` plus
 * `/v1/<signal>` (OTLP exporter spec, "Endpoint URLs for OTLP/HTTP").
 */
export function otlpSignalUrl(signal: 'traces' | 'metrics', otlpEndpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const own = signal === 'traces' ? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT : env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
  if (otlpEndpoint === undefined && own) return own;
  const base = otlpEndpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (base === undefined || base === '') return undefined;
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith(`/v1/${signal}`) ? trimmed : `${trimmed}/v1/${signal}`;
}

/** The OTLP traces URL from an explicit base endpoint or the standard environment variables. */
export function otlpTracesUrl(otlpEndpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return otlpSignalUrl('traces', otlpEndpoint, env);
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` (`key=value,key2=value2`, values percent-encoded, W3C Baggage
 * octet rules); malformed entries are skipped, as the SDK's own detector does.
 */
export function parseResourceAttributes(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of (value ?? '').split(',')) {
    const at = entry.indexOf('=');
    if (at <= 0) continue;
    const key = entry.slice(0, at).trim();
    try {
      out[key] = decodeURIComponent(entry.slice(at + 1).trim());
    } catch {
      // not valid percent-encoding: skipped
    }
  }
  return out;
}

/** `service.name`: `OTEL_SERVICE_NAME`, else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else the process's own default. */
export function serviceNameOf(defaultName: string, env: NodeJS.ProcessEnv = process.env): string {
  const named = env.OTEL_SERVICE_NAME?.trim();
  if (named) return named;
  return parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES)[OTEL_ATTR.serviceName] || defaultName;
}

/**
 * A processor whose flush and shutdown failures are reported, not thrown: for OTLP, which must
 * never fail the work it observes (the ledger processor is not wrapped: its failures matter).
 */
export class BestEffortSpanProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(span);
  }

  async forceFlush(): Promise<void> {
    await this.inner.forceFlush().catch(this.onError);
  }

  async shutdown(): Promise<void> {
    await this.inner.shutdown().catch(this.onError);
  }
}

/** Hands every span to several processors, in order (the ledger first). */
export class FanOutSpanProcessor implements SpanProcessor {
  constructor(private readonly processors: readonly SpanProcessor[]) {}

  onStart(span: Span, parentContext: Context): void {
    for (const processor of this.processors) processor.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    for (const processor of this.processors) processor.onEnd(span);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.forceFlush()));
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.shutdown()));
  }
}

/** Sets up tracing for this process (see the module header). */
const otlpTraceExporter = () => (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter;
const otlpMetricExporter = () => (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter;
const sdkMetrics = () => require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');

export function setupTelemetry(options: TelemetryOptions): Telemetry {
  const env = options.env ?? process.env;
  const ownsLedger = options.ledger === undefined;
  const ledger = options.ledger ?? openProcessLedger(options, env);
  const resource = new Resource({
    ...Resource.default().attributes,
    ...options.resourceAttributes,
    ...parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
    [OTEL_ATTR.serviceName]: serviceNameOf(options.serviceName, env),
  });
  const sdkDisabled = isTrue(env.OTEL_SDK_DISABLED);
  const onOtlpError = options.onOtlpError ?? (() => undefined);
  const otlpUrl = sdkDisabled || isNone(env.OTEL_TRACES_EXPORTER) ? undefined : otlpSignalUrl('traces', options.otlpEndpoint, env);
  // The OTLP exporters and the metrics SDK load only when something is exported: a process that
  // writes only its custody ledger (the default `warden run`) starts without them.
  const otlpProcessor =
    otlpUrl === undefined
      ? undefined
      : new BestEffortSpanProcessor(new ScrubbedSpanProcessor(new BatchSpanProcessor(new (otlpTraceExporter())({ url: otlpUrl })), options.exporter?.deniedAttributes), onOtlpError);
  const otlpMetricsUrl = sdkDisabled || isNone(env.OTEL_METRICS_EXPORTER) ? undefined : otlpSignalUrl('metrics', options.otlpEndpoint, env);
  const readers =
    options.metricReaders ??
    (otlpMetricsUrl === undefined
      ? []
      : [
          new (sdkMetrics().PeriodicExportingMetricReader)({
            exporter: new (otlpMetricExporter())({ url: otlpMetricsUrl }),
            exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL) > 0 ? Number(env.OTEL_METRIC_EXPORT_INTERVAL) : 60_000,
          }),
        ]);
  const meterProvider = readers.length === 0 ? undefined : new (sdkMetrics().MeterProvider)({ resource, readers });
  const witnessLocation = options.witness ?? (env.WARDEN_CUSTODY_WITNESS?.trim() || undefined);
  const witness = witnessLocation === undefined ? undefined : openCheckpointWitness(witnessLocation);
  // Signed tree heads go to OTLP through a provider of their own: never into the ledger they describe.
  const headTracer = otlpProcessor === undefined ? undefined : new BasicTracerProvider({ resource, spanProcessors: [otlpProcessor] }).getTracer(TRACER_NAME);
  const publishHead = (checkpoint: Checkpoint, signer: PublicJwk | undefined) => {
    if (witness !== undefined) {
      if (signer !== undefined) witness.publishKey(signer);
      witness.publish(ledger.path, checkpoint);
    }
    headTracer?.startSpan('warden.custody.checkpoint', { attributes: signedTreeHeadAttributes(ledger.path, checkpoint) }).end();
  };
  const ledgerExporter = new LedgerSpanExporter({
    // Failures of the custody side must be visible even when the caller passed no handler.
    onError: (error) => terminalWriter(process.stderr)(`warden: custody: ${error instanceof Error ? error.message : String(error)}\n`),
    ...options.exporter,
    ledger,
    commit: options.commit ?? 'group',
    onCheckpoint: publishHead,
  });
  const processors: SpanProcessor[] = [new LedgerSpanProcessor(ledgerExporter)];
  if (otlpProcessor !== undefined) processors.push(otlpProcessor);
  if (meterProvider !== undefined) processors.push(new GenAiMetricsSpanProcessor(meterProvider.getMeter(TRACER_NAME)));
  // Monitor metrics go with the GenAI metrics when this process exports metrics, else to the meter
  // provider the process registered (none: no-op).
  processors.push(new MonitorMetricsSpanProcessor(options.meter ?? meterProvider?.getMeter(TRACER_NAME) ?? metrics.getMeter(TRACER_NAME)));
  const spanProcessor = new FanOutSpanProcessor(processors);
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });

  let registered = false;
  if (options.register !== false) {
    // The API refuses a second global registration (it keeps the first), so this cannot take
    // over a provider the host program registered; it tells us afterwards whether ours won.
    tracerProvider.register();
    const global = trace.getTracerProvider();
    registered = global instanceof ProxyTracerProvider && global.getDelegate() === tracerProvider;
  }

  let shutdownPromise: Promise<void> | undefined;
  return {
    tracerProvider,
    tracer: tracerProvider.getTracer(TRACER_NAME),
    resource,
    spanProcessor,
    ledger,
    ledgerExporter,
    witness,
    otlpUrl,
    otlpMetricsUrl: options.metricReaders === undefined ? otlpMetricsUrl : undefined,
    meterProvider,
    registered,
    async forceFlush() {
      await tracerProvider.forceFlush();
      await meterProvider?.forceFlush().catch(onOtlpError);
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        try {
          await tracerProvider.shutdown();
        } finally {
          try {
            // After the spans: the metrics derived from the last spans go out with the final export.
            await meterProvider?.shutdown().catch(onOtlpError);
          } finally {
            if (ownsLedger) await ledger.close();
            if (registered) {
              trace.disable();
              context.disable();
              propagation.disable();
            }
          }
        }
      })();
      return shutdownPromise;
    },
  };
}

/** The ledger a process records into when none is given: shared (PostgreSQL) or the state folder's file. */
function openProcessLedger(options: TelemetryOptions, env: NodeJS.ProcessEnv): CustodyLedger | SharedCustodyLedger {
  const checkpointEvery = options.checkpointEvery === undefined ? {} : { checkpointEvery: options.checkpointEvery };
  const url = env.WARDEN_DATABASE_URL?.trim();
  if (url !== undefined && url !== '') {
    return SharedCustodyLedger.open({
      db: openPostgresDatabase(url, { maxConnections: 4, applicationName: 'warden-custody' }),
      keyDir: join(options.stateDir, KEY_DIR),
      workerId: workerIdOf(options.stateDir, env),
      closeDatabase: true,
      ...checkpointEvery,
    });
  }
  return CustodyLedger.open({ stateDir: options.stateDir, ...checkpointEvery });
}

/** A signed tree head as span attributes (`warden.custody.*`), for the OTLP export. */
export function signedTreeHeadAttributes(ledger: string, checkpoint: Checkpoint): Record<string, string | number> {
  return {
    'warden.custody.ledger': ledger,
    'warden.custody.checkpoint.id': checkpoint.id,
    'warden.custody.tree_size': checkpoint.treeSize,
    'warden.custody.root_hash': checkpoint.rootHash,
    'warden.custody.timestamp': checkpoint.timestamp,
    'warden.custody.reason': checkpoint.reason,
    ...(checkpoint.taskId === null ? {} : { 'warden.custody.task_id': checkpoint.taskId }),
    'warden.custody.kid': checkpoint.kid,
    'warden.custody.signature': checkpoint.signature,
  };
}
