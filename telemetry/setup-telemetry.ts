/**
 * Tracing for a Warden process: an OpenTelemetry tracer provider whose spans go, synchronously,
 * to the custody ledger (a `SimpleSpanProcessor` subclass, so a span that ended is recorded before the
 * code that ended it continues, and nothing sits in a buffer a crash could lose) and, when an
 * OTLP endpoint is configured, also to it in batches (the Jaeger of `docker-compose.yml`).
 *
 * The OTLP side is best effort; the ledger is the record. `shutdown()` flushes both, closes the
 * ledger if it was opened here and undoes the global registration it made.
 */
import { context, propagation, ProxyTracerProvider, trace, type Context, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { CustodyLedger } from '../custody/ledger';
import { LedgerSpanExporter, LedgerSpanProcessor, type LedgerSpanExporterOptions } from '../custody/ledger-span-exporter';

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
  /** An open ledger to record into (left open on shutdown); default: opened here, closed on shutdown. */
  ledger?: CustodyLedger;
  /** Interval checkpoints of a ledger opened here (default 100). */
  checkpointEvery?: number;
  /**
   * Register as the global tracer provider, context manager and W3C propagator (default true).
   * Temporal's interceptors propagate trace context through the global propagator, so without it
   * client, workflow and activity spans do not join one trace. Skipped when another global
   * provider is already registered.
   */
  register?: boolean;
  /** Extra resource attributes. */
  resourceAttributes?: Record<string, string>;
  /** Passed to the ledger exporter (task resolution, task-end test, deny-list). */
  exporter?: Omit<LedgerSpanExporterOptions, 'ledger' | 'closeLedgerOnShutdown'>;
}

export interface Telemetry {
  tracerProvider: NodeTracerProvider;
  /** Tracer of the provider, for Warden's own spans and the Temporal interceptors. */
  tracer: Tracer;
  resource: Resource;
  /** Every processor as one: what the Temporal workflow span sink must feed. */
  spanProcessor: SpanProcessor;
  ledger: CustodyLedger;
  ledgerExporter: LedgerSpanExporter;
  /** Where OTLP spans go, if anywhere. */
  otlpUrl: string | undefined;
  /** Whether this telemetry is the process's global one. */
  registered: boolean;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The OTLP traces URL from an explicit base endpoint or the standard environment variables. */
export function otlpTracesUrl(otlpEndpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = otlpEndpoint ?? (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? undefined : env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (otlpEndpoint === undefined && env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (base === undefined || base === '') return undefined;
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`;
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
export function setupTelemetry(options: TelemetryOptions): Telemetry {
  const ownsLedger = options.ledger === undefined;
  const ledger =
    options.ledger ?? CustodyLedger.open({ stateDir: options.stateDir, ...(options.checkpointEvery === undefined ? {} : { checkpointEvery: options.checkpointEvery }) });
  const resource = new Resource({ ...Resource.default().attributes, ...options.resourceAttributes, [ATTR_SERVICE_NAME]: options.serviceName });
  const ledgerExporter = new LedgerSpanExporter({ ...options.exporter, ledger });
  const processors: SpanProcessor[] = [new LedgerSpanProcessor(ledgerExporter)];
  const otlpUrl = otlpTracesUrl(options.otlpEndpoint, options.env ?? process.env);
  if (otlpUrl !== undefined) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpUrl })));
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
    otlpUrl,
    registered,
    forceFlush: () => tracerProvider.forceFlush(),
    shutdown() {
      shutdownPromise ??= (async () => {
        try {
          await tracerProvider.shutdown();
        } finally {
          if (ownsLedger) ledger.close();
          if (registered) {
            trace.disable();
            context.disable();
            propagation.disable();
          }
        }
      })();
      return shutdownPromise;
    },
  };
}
