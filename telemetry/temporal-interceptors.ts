/**
 * What a Temporal worker and client need for one trace per task: the client span that starts a
 * workflow is the trace root, the workflow run and everything it schedules (activities, child
 * workflows for sub-agents) are its descendants, and activity executions are child spans of the
 * workflow's `StartActivity` spans. Built on `@temporalio/interceptors-opentelemetry` 1.24.
 *
 * Workflow spans are made inside the workflow sandbox and leave it through the `exporter` sink,
 * which feeds them to the same span processor as everything else (so they reach the ledger too).
 * Sinks are not called during replay, and workflow span ids are deterministic, so a replayed
 * workflow neither loses nor duplicates records.
 *
 * Durability with group commit (custody/ledger-span-exporter.ts): the outermost activity
 * interceptor awaits the ledger flush after the activity (and its `RunActivity` span) ended and
 * before its result or failure goes back to Temporal, and the workflow sink awaits it before the
 * worker sends the workflow task's completion (the SDK awaits sink calls first). So Temporal never
 * records an activity or workflow task whose spans are not in the ledger yet.
 */
import type { ClientInterceptors } from '@temporalio/client';
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, OpenTelemetryWorkflowClientInterceptor, type OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { Telemetry } from './setup-telemetry';

/**
 * The workflow interceptor module. With a pre-built bundle (`workflowBundle`), Worker.create
 * ignores `interceptors.workflowModules`: pass this to `bundleWorkflowCode({ workflowInterceptorModules })`
 * instead (and let it change the bundle's cache key).
 */
export const WORKFLOW_INTERCEPTOR_MODULES: readonly string[] = [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')];

export interface TelemetryWorkerOptions {
  interceptors: WorkerInterceptors;
  sinks: InjectedSinks<OpenTelemetrySinks>;
}

/**
 * Options to merge into `Worker.create`: activity interceptors (spans `RunActivity:<type>`), the
 * workflow interceptor module (used when the worker bundles from `workflowsPath`) and the
 * workflow span sink.
 *
 * ```ts
 * const t = telemetryWorkerOptions(telemetry);
 * Worker.create({ ...options, interceptors: t.interceptors, sinks: t.sinks,
 *   workflowBundle: await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] }) });
 * ```
 */
export function telemetryWorkerOptions(telemetry: Pick<Telemetry, 'tracer' | 'spanProcessor' | 'resource'> & Partial<Pick<Telemetry, 'ledgerExporter'>>): TelemetryWorkerOptions {
  const options = { tracer: telemetry.tracer };
  const flush = telemetry.ledgerExporter === undefined ? undefined : () => telemetry.ledgerExporter!.flush();
  const exporter = makeWorkflowExporter(telemetry.spanProcessor, telemetry.resource);
  return {
    interceptors: {
      workflowModules: [...WORKFLOW_INTERCEPTOR_MODULES],
      activity: [
        // First, so outermost: runs after the OpenTelemetry interceptor has ended the activity's span.
        ...(flush === undefined ? [] : [() => ({ inbound: new CustodyFlushInterceptor(flush) })]),
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, options),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      // The Client the worker hands to activities: workflows they start join the trace.
      client: { workflow: [new OpenTelemetryWorkflowClientInterceptor(options)] },
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

/** Interceptors for `new Client({ connection, interceptors })`: starting a workflow opens the task's trace. */
export function telemetryClientInterceptors(telemetry: Pick<Telemetry, 'tracer'>): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: telemetry.tracer })] };
}
