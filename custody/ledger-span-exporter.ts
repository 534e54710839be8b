/**
 * An OpenTelemetry `SpanExporter` that appends every span it is given, in order, to the custody
 * ledger (record key `traceId:spanId`, so a span exported twice is recorded once), and takes a
 * signed checkpoint when the span that ends a task ends. Read-only Temporal calls (queries,
 * describes) are left out by default: following a task must not fill its record.
 *
 * Use it behind a {@link LedgerSpanProcessor} (a `SimpleSpanProcessor`). Two commit modes:
 * - `sync` (default, SQLite ledger only): the append happens inside `span.end()`, so a span that
 *   ended is on disk before the code that ended it goes on.
 * - `group` (what workers use; required for the shared ledger): `span.end()` only queues the span
 *   (microseconds); queued spans are appended in batches, one transaction each, off the hot path.
 *   Durability is kept at the points where it matters, by awaiting {@link LedgerSpanExporter.flush}:
 *   before an activity's result is handed to Temporal (an activity interceptor, see
 *   telemetry/temporal-interceptors.ts), before a workflow task's completion is sent (the workflow
 *   span sink), and on `forceFlush`/`shutdown`. So, as in `sync` mode, Temporal never learns of an
 *   activity or workflow task whose spans are not in the ledger yet, unless their write failed for
 *   good (after retries; reported through `onError`, and then the result goes on, as in `sync`
 *   mode). A batch the ledger refuses as not JSON is written export by export, so one span never
 *   takes another task's spans with it.
 *
 * Every checkpoint an append or a task end produces is handed to `onCheckpoint` (witness
 * publication, checkpoint-witness.ts, and the OpenTelemetry export of signed tree heads).
 *
 * Which task a span belongs to (the root workflow id) is, in order: its `warden.task.id`
 * attribute; for spans from the Temporal workflow sink, the `root` (or, for a root workflow,
 * its own) workflow id the sink attaches; the task of its trace (one trace per task), learned
 * from any span of the trace that STARTED with `warden.task.id` or was already recorded; the
 * Temporal workflow id it carries; else `unassigned`. Children usually end before their
 * parents, so set `warden.task.id` when a task's first span starts, not later.
 */
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode } from '@opentelemetry/core';
import { trace, type Context } from '@opentelemetry/api';
import { SimpleSpanProcessor, type ReadableSpan, type Span, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { WARDEN_ATTR } from './attributes';
import type { AppendInput, AppendResult } from './ledger';
import type { Checkpoint } from './ledger-record';
import type { PublicJwk } from './signing-key';
import { spanRecordJson, type SpanRecordOptions } from './span-record';
import { spanRoleOf } from './span-roles';

/**
 * What the exporter writes to: the SQLite ledger (`CustodyLedger`, answers at once) or the shared
 * one (`SharedCustodyLedger`, answers with promises).
 */
export interface CustodyLedgerWriter {
  readonly path: string;
  readonly kid: string;
  appendMany(inputs: readonly AppendInput[]): AppendResult[] | Promise<AppendResult[]>;
  checkpoint(taskId?: string): Checkpoint | Promise<Checkpoint>;
  taskIdOfTrace(traceId: string): string | undefined | Promise<string | undefined>;
  publicKeys(): PublicJwk[];
  close(): void | Promise<void>;
}

/** Tries of a failed group write before its spans are reported as failed (with these pauses). */
const GROUP_RETRY_DELAYS_MS = [50, 250, 1000];

/** `kind` of the ledger records this exporter writes. */
export const SPAN_RECORD_KIND = 'span';
/** Task id of spans no task can be found for. */
export const UNASSIGNED_TASK = 'unassigned';

/** Attribute the Temporal interceptors put on client and activity spans. */
const TEMPORAL_WORKFLOW_ID_ATTR = 'temporalWorkflowId';
const MAX_REMEMBERED_TRACES = 10_000;
const MAX_REMEMBERED_SPANS = 100_000;

export interface LedgerSpanExporterOptions extends SpanRecordOptions {
  ledger: CustodyLedgerWriter;
  /** `sync` (default; SQLite ledger only) or `group` commit: see the module header. */
  commit?: 'sync' | 'group';
  /** Called with every checkpoint the exporter's appends and task ends produce (after they committed). */
  onCheckpoint?: (checkpoint: Checkpoint, signer: PublicJwk | undefined) => void | Promise<void>;
  /** Overrides the task resolution described in the module header; return undefined to fall back to it. */
  resolveTaskId?: (span: ReadableSpan) => string | undefined;
  /** Which spans are recorded (default {@link isCustodyRelevant}: everything but read-only queries). */
  shouldRecord?: (span: ReadableSpan) => boolean;
  /** Whether a span's end is the end of its task (default {@link isRootWorkflowRunSpan}). */
  isTaskEnd?: (span: ReadableSpan) => boolean;
  /** Close the ledger on `shutdown()` (default false: the caller owns it). */
  closeLedgerOnShutdown?: boolean;
  /** Called with every failed export (default: nothing; the span processor reports it too). */
  onError?: (error: unknown) => void;
}

function stringAttr(span: ReadableSpan, key: string): string | undefined {
  const value = span.attributes[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Workflow info the Temporal workflow span sink merges into span attributes (objects included). */
function sinkInfo(span: ReadableSpan): { workflowId?: string; rootWorkflowId?: string; hasParent: boolean } {
  const attributes = span.attributes as Record<string, unknown>;
  const workflowId = typeof attributes.workflowId === 'string' ? attributes.workflowId : undefined;
  const root = attributes.root as { workflowId?: unknown } | undefined;
  const parent = attributes.parent as { workflowId?: unknown } | undefined;
  return {
    ...(workflowId === undefined ? {} : { workflowId }),
    ...(typeof root?.workflowId === 'string' ? { rootWorkflowId: root.workflowId } : {}),
    hasParent: typeof parent?.workflowId === 'string',
  };
}

/** The workflow a span came from: the sink's workflow id, else Temporal's `temporalWorkflowId`, else ''. */
export function workflowIdOfSpan(span: ReadableSpan): string {
  return sinkInfo(span).workflowId ?? stringAttr(span, TEMPORAL_WORKFLOW_ID_ATTR) ?? stringAttr(span, WARDEN_ATTR.agentId) ?? '';
}

/**
 * Default end-of-task test: the run span of a workflow that has no parent (a root task's
 * `invoke_agent <agent>`, or `RunWorkflow:<type>` for other workflows), as the workflow span
 * sink hands it over.
 */
export function isRootWorkflowRunSpan(span: ReadableSpan): boolean {
  if (spanRoleOf(span.name, span.attributes) !== 'agent-run') return false;
  const info = sinkInfo(span);
  return info.workflowId !== undefined && !info.hasParent && (info.rootWorkflowId === undefined || info.rootWorkflowId === info.workflowId);
}

/** Span names of read-only calls: a client polling a task's state must not fill the ledger. */
const READ_ONLY_SPAN_PREFIXES = ['QueryWorkflow:', 'HandleQuery:', 'DescribeWorkflow'];

/** Default record filter: every span except Temporal queries and describes (they change nothing). */
export function isCustodyRelevant(span: ReadableSpan): boolean {
  return !READ_ONLY_SPAN_PREFIXES.some((prefix) => span.name.startsWith(prefix));
}

export class LedgerSpanExporter implements SpanExporter {
  private readonly options: LedgerSpanExporterOptions;
  /** traceId -> taskId learned from spans already exported. */
  private readonly traceTasks = new Map<string, string>();
  /** spanId -> workflow id inherited from the parent at start, for spans that do not carry one. */
  private readonly spanWorkflows = new Map<string, string>();
  private stopped = false;
  /** group mode: spans waiting to be written, with the callbacks of their exports. */
  private queue: { spans: ReadableSpan[]; done: (result: ExportResult) => void }[] = [];
  private draining: Promise<void> | undefined;
  private scheduled = false;
  /**
   * The signer's public JWK, found once per kid: a kid is the RFC 7638 thumbprint of its key, so
   * the JWK found for it never changes, and reading the key folder at every checkpoint was a
   * folder listing and PEM parse per task end.
   */
  private signer: { kid: string; jwk: PublicJwk } | undefined;

  constructor(options: LedgerSpanExporterOptions) {
    this.options = options;
    const sync = options.commit !== 'group';
    if (sync && (options.ledger as { shared?: unknown }).shared === true) throw new TypeError('the shared custody ledger answers asynchronously: use commit: "group"');
  }

  /**
   * Called by {@link LedgerSpanProcessor} as a span starts: learns its trace's task from
   * `warden.task.id`, and which workflow it runs in from its parent (an activity's own spans
   * start inside `RunActivity`, which already carries the workflow id, but end before it).
   */
  observeStart(span: Span, parentContext?: Context): void {
    const taskId = span.attributes[WARDEN_ATTR.taskId];
    if (typeof taskId === 'string' && taskId !== '') this.remember(span.spanContext().traceId, taskId);
    const parent = parentContext === undefined ? undefined : (trace.getSpan(parentContext) as (Span & ReadableSpan) | undefined);
    if (parent === undefined || typeof parent.spanContext !== 'function') return;
    const inherited = this.spanWorkflows.get(parent.spanContext().spanId) ?? (parent.attributes === undefined ? '' : workflowIdOfSpan(parent));
    if (inherited !== '') {
      this.spanWorkflows.set(span.spanContext().spanId, inherited);
      if (this.spanWorkflows.size > MAX_REMEMBERED_SPANS) this.spanWorkflows.delete(this.spanWorkflows.keys().next().value as string);
    }
  }

  private remember(traceId: string, taskId: string): void {
    if (this.traceTasks.has(traceId)) return;
    this.traceTasks.set(traceId, taskId);
    // Tasks whose end another worker sees are never cleared here: keep the memo bounded.
    if (this.traceTasks.size > MAX_REMEMBERED_TRACES) this.traceTasks.delete(this.traceTasks.keys().next().value as string);
  }

  get ledger(): CustodyLedgerWriter {
    return this.options.ledger;
  }

  /** The task a span belongs to (see the module header); a promise only when the shared ledger must be asked. */
  taskIdOf(span: ReadableSpan): string | Promise<string> {
    const traceId = span.spanContext().traceId;
    const explicit = this.options.resolveTaskId?.(span) ?? stringAttr(span, WARDEN_ATTR.taskId);
    if (explicit !== undefined) return explicit;
    const info = sinkInfo(span);
    const fromSink = info.rootWorkflowId ?? (info.hasParent ? undefined : info.workflowId);
    if (fromSink !== undefined) return fromSink;
    const fallback = (known: string | undefined) =>
      known !== undefined && known !== UNASSIGNED_TASK ? known : (stringAttr(span, TEMPORAL_WORKFLOW_ID_ATTR) ?? info.workflowId ?? UNASSIGNED_TASK);
    const memo = this.traceTasks.get(traceId);
    if (memo !== undefined) return fallback(memo);
    const stored = this.options.ledger.taskIdOfTrace(traceId);
    return stored instanceof Promise ? stored.then(fallback) : fallback(stored);
  }

  /** The workflow a span ran in: its own attributes, else what it inherited from its parent at start. */
  workflowIdOf(span: ReadableSpan): string {
    const spanId = span.spanContext().spanId;
    const own = workflowIdOfSpan(span);
    const inherited = this.spanWorkflows.get(spanId);
    this.spanWorkflows.delete(spanId);
    return own !== '' ? own : (inherited ?? '');
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.stopped) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('LedgerSpanExporter is shut down') });
      return;
    }
    if (this.options.commit === 'group') {
      this.queue.push({ spans, done: resultCallback });
      this.schedule();
      return;
    }
    try {
      const outcome = this.write(spans);
      if (outcome instanceof Promise) throw new TypeError('the custody ledger answered asynchronously in sync mode');
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      this.options.onError?.(error);
      resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  /**
   * Resolves once every span exported before the call is in the ledger (or has definitively
   * failed, reported through `onError`). Immediate in `sync` mode.
   */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.draining !== undefined) await (this.draining ?? this.startDrain());
  }

  /** Starts a drain on the next turn of the event loop, so spans ending together share a transaction. */
  private schedule(): void {
    if (this.scheduled || this.draining !== undefined) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.draining === undefined && this.queue.length > 0) void this.startDrain();
    });
  }

  /**
   * Starts a drain and marks it running until it settles. The mark is cleared after the
   * assignment, whatever the drain does: a drain that ends without awaiting (a synchronous
   * ledger refusing the batch at once) left `draining` set to a settled promise forever, so
   * `flush` never returned and no span was written again.
   */
  private startDrain(): Promise<void> {
    const run: Promise<void> = this.drain().finally(() => {
      if (this.draining === run) this.draining = undefined;
    });
    this.draining = run;
    return run;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const spans = batch.flatMap((entry) => entry.spans);
      const failure = await this.writeWithRetries(spans);
      // Refused as not JSON (TypeError): one span must not take the others of its batch (other
      // tasks' spans ended in the same turn) with it, so each export is written on its own.
      if (failure instanceof TypeError && batch.length > 1) {
        for (const entry of batch) {
          const own = await this.writeWithRetries(entry.spans);
          if (own !== undefined) this.options.onError?.(own);
          entry.done(own === undefined ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: own instanceof Error ? own : new Error(String(own)) });
        }
        continue;
      }
      if (failure !== undefined) this.options.onError?.(failure);
      const result: ExportResult =
        failure === undefined ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: failure instanceof Error ? failure : new Error(String(failure)) };
      for (const entry of batch) entry.done(result);
    }
  }

  /** Writes `spans` (one transaction), retrying a failure other than a TypeError; the last failure, or undefined. */
  private async writeWithRetries(spans: readonly ReadableSpan[]): Promise<unknown> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.write(spans);
        return undefined;
      } catch (error) {
        if (error instanceof TypeError || attempt >= GROUP_RETRY_DELAYS_MS.length) return error;
        await new Promise((resolve) => setTimeout(resolve, GROUP_RETRY_DELAYS_MS[attempt]));
      }
    }
  }

  /**
   * Appends `spans` (one transaction), then checkpoints the tasks they end, then hands every new
   * checkpoint to `onCheckpoint`. Synchronous when the ledger is; a promise otherwise.
   */
  private write(spans: readonly ReadableSpan[]): void | Promise<void> {
    const ledger = this.options.ledger;
    const inputs: AppendInput[] = [];
    const taskEnds: string[] = [];
    const checkpoints: Checkpoint[] = [];
    // A head that cannot be published (witness unwritable) is reported, but the spans are in the
    // ledger: it must not turn into a failed export that retries appends already made.
    const publish = (): void | Promise<void> => {
      const hook = this.options.onCheckpoint;
      if (hook === undefined || checkpoints.length === 0) return;
      const signer = this.signerOf(ledger);
      const pending: Promise<void>[] = [];
      for (const checkpoint of checkpoints) {
        try {
          const result = hook(checkpoint, signer);
          if (result instanceof Promise) pending.push(result.catch((error: unknown) => this.options.onError?.(error)));
        } catch (error) {
          this.options.onError?.(error);
        }
      }
      if (pending.length > 0) return Promise.all(pending).then(() => undefined);
    };
    const afterAppend = (results: AppendResult[]): void | Promise<void> => {
      for (const r of results) if (r.checkpoint !== undefined) checkpoints.push(r.checkpoint);
      let chain: Promise<void> | undefined;
      for (const taskId of taskEnds) {
        const step = (checkpoint: Checkpoint) => {
          checkpoints.push(checkpoint);
          // The task is over: its trace will not be seen again.
          for (const [traceId, task] of this.traceTasks) if (task === taskId) this.traceTasks.delete(traceId);
        };
        if (chain !== undefined) {
          chain = chain.then(async () => step(await ledger.checkpoint(taskId)));
          continue;
        }
        const checkpoint = ledger.checkpoint(taskId);
        if (checkpoint instanceof Promise) chain = checkpoint.then(step);
        else step(checkpoint);
      }
      return chain === undefined ? publish() : chain.then(publish);
    };
    const collect = (span: ReadableSpan, taskId: string) => {
      const context = span.spanContext();
      if (taskId !== UNASSIGNED_TASK) this.remember(context.traceId, taskId);
      inputs.push({
        recordKey: `${context.traceId}:${context.spanId}`,
        taskId,
        workflowId: this.workflowIdOf(span),
        kind: SPAN_RECORD_KIND,
        body: spanRecordJson(span, this.options),
      });
      if ((this.options.isTaskEnd ?? isRootWorkflowRunSpan)(span)) taskEnds.push(taskId);
    };
    const relevant = spans.filter((span) => (this.options.shouldRecord ?? isCustodyRelevant)(span));
    let index = 0;
    const collectAll = (): void | Promise<void> => {
      for (; index < relevant.length; index += 1) {
        const span = relevant[index] as ReadableSpan;
        const taskId = this.taskIdOf(span);
        if (taskId instanceof Promise) {
          return taskId.then((id) => {
            collect(span, id);
            index += 1;
            return collectAll();
          });
        }
        collect(span, taskId);
      }
    };
    const appendAll = (): void | Promise<void> => {
      const results = ledger.appendMany(inputs);
      return results instanceof Promise ? results.then(afterAppend) : afterAppend(results);
    };
    const collected = collectAll();
    return collected instanceof Promise ? collected.then(appendAll) : appendAll();
  }

  /** The public JWK of the key the ledger signs with (undefined while its folder does not hold it). */
  private signerOf(ledger: CustodyLedgerWriter): PublicJwk | undefined {
    const kid = ledger.kid;
    if (this.signer?.kid === kid) return this.signer.jwk;
    const jwk = ledger.publicKeys().find((k) => k.kid === kid);
    if (jwk !== undefined) this.signer = { kid, jwk };
    return jwk;
  }

  async forceFlush(): Promise<void> {
    await this.flush();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    await this.flush();
    this.stopped = true;
    if (this.options.closeLedgerOnShutdown === true) await this.options.ledger.close();
  }
}

/**
 * `SimpleSpanProcessor` for the {@link LedgerSpanExporter}: exports each span synchronously as it
 * ends, and lets the exporter see spans start (to learn a trace's task before its spans end).
 */
export class LedgerSpanProcessor extends SimpleSpanProcessor {
  constructor(private readonly ledgerExporter: LedgerSpanExporter) {
    super(ledgerExporter);
  }

  override onStart(span: Span, parentContext: Context): void {
    this.ledgerExporter.observeStart(span, parentContext);
    super.onStart(span, parentContext);
  }
}
