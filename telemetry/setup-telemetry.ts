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
 * The OTLP side is best effort; the ledger is the record. `shutdown()` flushes both, closes the
 * ledger if it was opened here and undoes the global registration it made.
 */
import { context, propagation, ProxyTracerProvider, trace, type Context, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { join } from 'node:path';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { openCheckpointWitness, type CheckpointWitness } from '../custody/checkpoint-witness';
import { CustodyLedger, KEY_DIR } from '../custody/ledger';
import type { Checkpoint } from '../custody/ledger-record';
import { LedgerSpanExporter, LedgerSpanProcessor, type LedgerSpanExporterOptions } from '../custody/ledger-span-exporter';
import { SharedCustodyLedger } from '../custody/shared-ledger';
import type { PublicJwk } from '../custody/signing-key';
import { openPostgresDatabase } from '../state/postgres-database';
import { workerIdOf } from '../state/state-store';

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
  ledger: CustodyLedger | SharedCustodyLedger;
  ledgerExporter: LedgerSpanExporter;
  /** Where signed tree heads are published, if anywhere. */
  witness: CheckpointWitness | undefined;
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
  const env = options.env ?? process.env;
  const ownsLedger = options.ledger === undefined;
  const ledger = options.ledger ?? openProcessLedger(options, env);
  const resource = new Resource({ ...Resource.default().attributes, ...options.resourceAttributes, [ATTR_SERVICE_NAME]: options.serviceName });
  const otlpUrl = otlpTracesUrl(options.otlpEndpoint, env);
  const otlpProcessor = otlpUrl === undefined ? undefined : new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpUrl }));
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
    onError: (error) => process.stderr.write(`warden: custody: ${error instanceof Error ? error.message : String(error)}\n`),
    ...options.exporter,
    ledger,
    commit: options.commit ?? 'group',
    onCheckpoint: publishHead,
  });
  const processors: SpanProcessor[] = [new LedgerSpanProcessor(ledgerExporter)];
  if (otlpProcessor !== undefined) processors.push(otlpProcessor);
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
    registered,
    forceFlush: () => tracerProvider.forceFlush(),
    shutdown() {
      shutdownPromise ??= (async () => {
        try {
          await tracerProvider.shutdown();
        } finally {
          if (ownsLedger) await ledger.close();
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
