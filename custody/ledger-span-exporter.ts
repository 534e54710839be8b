/**
 * An OpenTelemetry `SpanExporter` that appends every span it is given, in order, to the custody
 * ledger (record key `traceId:spanId`, so a span exported twice is recorded once), and takes a
 * signed checkpoint when the span that ends a task ends. Read-only Temporal calls (queries,
 * describes) are left out by default: following a task must not fill its record.
 *
 * Use it behind a {@link LedgerSpanProcessor} (a `SimpleSpanProcessor`): the append then happens
 * synchronously inside `span.end()`, so a span that ended is on disk before the code that ended
 * it goes on.
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
import type { AppendInput, CustodyLedger } from './ledger';
import { spanRecordJson, type SpanRecordOptions } from './span-record';
import { spanRoleOf } from './span-roles';

/** `kind` of the ledger records this exporter writes. */
export const SPAN_RECORD_KIND = 'span';
/** Task id of spans no task can be found for. */
export const UNASSIGNED_TASK = 'unassigned';

/** Attribute the Temporal interceptors put on client and activity spans. */
const TEMPORAL_WORKFLOW_ID_ATTR = 'temporalWorkflowId';
const MAX_REMEMBERED_TRACES = 10_000;
const MAX_REMEMBERED_SPANS = 100_000;

export interface LedgerSpanExporterOptions extends SpanRecordOptions {
  ledger: CustodyLedger;
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

  constructor(options: LedgerSpanExporterOptions) {
    this.options = options;
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

  get ledger(): CustodyLedger {
    return this.options.ledger;
  }

  /** The task a span belongs to (see the module header). */
  taskIdOf(span: ReadableSpan): string {
    const traceId = span.spanContext().traceId;
    const explicit = this.options.resolveTaskId?.(span) ?? stringAttr(span, WARDEN_ATTR.taskId);
    if (explicit !== undefined) return explicit;
    const info = sinkInfo(span);
    const fromSink = info.rootWorkflowId ?? (info.hasParent ? undefined : info.workflowId);
    if (fromSink !== undefined) return fromSink;
    const known = this.traceTasks.get(traceId) ?? this.options.ledger.taskIdOfTrace(traceId);
    if (known !== undefined && known !== UNASSIGNED_TASK) return known;
    return stringAttr(span, TEMPORAL_WORKFLOW_ID_ATTR) ?? info.workflowId ?? UNASSIGNED_TASK;
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
    try {
      const inputs: AppendInput[] = [];
      const taskEnds: string[] = [];
      for (const span of spans) {
        if (!(this.options.shouldRecord ?? isCustodyRelevant)(span)) continue;
        const context = span.spanContext();
        const taskId = this.taskIdOf(span);
        if (taskId !== UNASSIGNED_TASK) this.remember(context.traceId, taskId);
        inputs.push({
          recordKey: `${context.traceId}:${context.spanId}`,
          taskId,
          workflowId: this.workflowIdOf(span),
          kind: SPAN_RECORD_KIND,
          body: spanRecordJson(span, this.options),
        });
        if ((this.options.isTaskEnd ?? isRootWorkflowRunSpan)(span)) taskEnds.push(taskId);
      }
      this.options.ledger.appendMany(inputs);
      for (const taskId of taskEnds) {
        this.options.ledger.checkpoint(taskId);
        // The task is over: its trace will not be seen again.
        for (const [traceId, task] of this.traceTasks) if (task === taskId) this.traceTasks.delete(traceId);
      }
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      this.options.onError?.(error);
      resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  async forceFlush(): Promise<void> {
    // Appends are synchronous: nothing is buffered.
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.options.closeLedgerOnShutdown === true) this.options.ledger.close();
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
