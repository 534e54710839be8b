/**
 * What a Temporal worker and client need for one trace per task, in GenAI terms: the client span
 * that starts a workflow is the trace root; each agent's workflow run is `invoke_agent <agent>`;
 * its model calls (`chat <model>`, CLIENT), tool calls (`execute_tool <tool>`) and policy checks
 * (`check_policy <tool>`) are activity spans below it (through Temporal's `StartActivity` spans);
 * sub-agents are child workflows, so their `invoke_agent` spans nest the same way. Built on
 * `@temporalio/interceptors-opentelemetry` 1.24, whose propagation and workflow span sink it reuses.
 *
 * Read-only calls make no spans at all: a client following a task polls its state several times
 * a second, and neither the client's `QueryWorkflow` nor the workflow's `HandleQuery` would tell
 * anyone anything (see `workflow-interceptors.ts` for the workflow side).
 *
 * Workflow spans are made inside the workflow sandbox and leave it through the `exporter` sink,
 * which feeds them to the same span processor as everything else (so they reach the ledger too).
 * Sinks are not called during replay, and workflow span ids are deterministic, so a replayed
 * workflow neither loses nor duplicates records.
 *
 * Durability with group commit (custody/ledger-span-exporter.ts): the outermost activity
 * interceptor awaits the ledger flush after the activity (and its span) ended and before its
 * result or failure goes back to Temporal, and the workflow sink awaits it before the worker
 * sends the workflow task's completion (the SDK awaits sink calls first). So Temporal never
 * records an activity or workflow task whose spans are not in the ledger yet.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { context as otelContext, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { ClientInterceptors, Next, WorkflowClientInterceptor, WorkflowDescribeInput, WorkflowQueryInput } from '@temporalio/client';
import { ApplicationFailure, ApplicationFailureCategory, CompleteAsyncError } from '@temporalio/common';
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, OpenTelemetryWorkflowClientInterceptor, type OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
import { extractContextFromHeaders } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { Context as ActivityContext } from '@temporalio/activity';
import { OTEL_ATTR, TEMPORAL_ATTR } from '../custody/attributes';
import { activitySpanOf } from './gen-ai-spans';
import type { Telemetry } from './setup-telemetry';
import { outcomeOfError } from './warden-span-attributes';

/**
 * The workflow interceptor module to bundle in (`bundleWorkflowCode({ workflowInterceptorModules })`):
 * Temporal's OpenTelemetry workflow interceptors with Warden's agent naming and no query spans.
 * Warden's workers always run a pre-built bundle, so this is never passed to `Worker.create`
 * (which would ignore it, with a warning).
 */
export const WORKFLOW_INTERCEPTOR_MODULES: readonly string[] = [siblingModule('workflow-interceptors')];

/** The path of a module next to this one, as source (`.ts`, run through tsx or vitest) or compiled (`.js`). */
function siblingModule(name: string): string {
  for (const extension of ['.ts', '.js']) {
    const path = join(__dirname, `${name}${extension}`);
    if (existsSync(path)) return path;
  }
  throw new Error(`${name} is missing next to ${__filename}`);
}

export interface TelemetryWorkerOptions {
  interceptors: WorkerInterceptors;
  sinks: InjectedSinks<OpenTelemetrySinks>;
}

/**
 * Runs a task activity in its GenAI span (see `gen-ai-spans.ts`) and every other activity in
 * Temporal's `RunActivity:<type>` span, both children of the span that scheduled the activity.
 */
export class GenAiActivityInboundInterceptor implements ActivityInboundCallsInterceptor {
  private readonly fallback: OpenTelemetryActivityInboundInterceptor;

  constructor(
    private readonly ctx: ActivityContext,
    private readonly tracer: Tracer,
  ) {
    this.fallback = new OpenTelemetryActivityInboundInterceptor(ctx, { tracer });
  }

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = this.ctx.info;
    const shape = activitySpanOf(info.activityType, input.args[0], info.activityId);
    if (shape === undefined) return this.fallback.execute(input, next);
    const parent = extractContextFromHeaders(input.headers) ?? otelContext.active();
    const attributes = { ...shape.attributes, ...(info.workflowExecution?.runId === undefined ? {} : { [TEMPORAL_ATTR.runId]: info.workflowExecution.runId }) };
    return this.tracer.startActiveSpan(shape.name, { kind: shape.kind, attributes }, parent, async (span) => {
      try {
        const result = await next(input);
        span.setStatus({ code: SpanStatusCode.OK });
        return result;
      } catch (error) {
        if (!(error instanceof CompleteAsyncError)) {
          // As Temporal's interceptor does, so both kinds of span read alike; plus the error class.
          const benign = error instanceof ApplicationFailure && error.category === ApplicationFailureCategory.BENIGN;
          span.setStatus({ code: benign ? SpanStatusCode.UNSET : SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
          span.setAttribute(OTEL_ATTR.errorType, outcomeOfError(error));
          if (error instanceof Error) span.recordException(error);
        }
        throw error;
      } finally {
        span.end();
      }
    });
  }
}

/** Temporal's client interceptor, minus the spans of read-only calls (queries, describes). */
export class WardenWorkflowClientInterceptor extends OpenTelemetryWorkflowClientInterceptor {
  override async query(input: WorkflowQueryInput, next: Next<WorkflowClientInterceptor, 'query'>): Promise<unknown> {
    return next(input);
  }

  override async describe(input: WorkflowDescribeInput, next: Next<WorkflowClientInterceptor, 'describe'>) {
    return next(input);
  }
}

/**
 * Options to merge into `Worker.create`: activity interceptors (GenAI spans for task activities,
 * `RunActivity:<type>` for the rest) and the workflow span sink. The workflow interceptors are
 * bundled in (`WORKFLOW_INTERCEPTOR_MODULES`), not passed here.
 *
 * ```ts
 * const t = telemetryWorkerOptions(telemetry);
 * Worker.create({ ...options, interceptors: t.interceptors, sinks: t.sinks,
 *   workflowBundle: await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }) });
 * ```
 */
export function telemetryWorkerOptions(telemetry: Pick<Telemetry, 'tracer' | 'spanProcessor' | 'resource'> & Partial<Pick<Telemetry, 'ledgerExporter'>>): TelemetryWorkerOptions {
  const { tracer } = telemetry;
  const flush = telemetry.ledgerExporter === undefined ? undefined : () => telemetry.ledgerExporter!.flush();
  const exporter = makeWorkflowExporter(telemetry.spanProcessor, telemetry.resource);
  return {
    interceptors: {
      activity: [
        // First, so outermost: runs after the span interceptor has ended the activity's span.
        ...(flush === undefined ? [] : [() => ({ inbound: new CustodyFlushInterceptor(flush) })]),
        (ctx) => ({
          inbound: new GenAiActivityInboundInterceptor(ctx, tracer),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      // The Client the worker hands to activities: workflows they start join the trace.
      client: { workflow: [new WardenWorkflowClientInterceptor({ tracer })] },
    },
    sinks:
      flush === undefined
        ? { exporter }
        : {
            exporter: {
              export: {
                ...exporter.export,
                fn: async (info, spans) => {
                  exporter.export.fn(info, spans);
                  await flush();
                },
              },
            },
          },
  };
}

/** Holds an activity's result (or failure) until its spans are in the custody ledger. */
class CustodyFlushInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly flush: () => Promise<void>) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    try {
      return await next(input);
    } finally {
      await this.flush();
    }
  }
}

/** Interceptors for `new Client({ connection, interceptors })`: starting a workflow opens the task's trace; polling makes no spans. */
export function telemetryClientInterceptors(telemetry: Pick<Telemetry, 'tracer'>): ClientInterceptors {
  return { workflow: [new WardenWorkflowClientInterceptor({ tracer: telemetry.tracer })] };
}
