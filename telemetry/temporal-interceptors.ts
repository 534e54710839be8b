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
 */
import type { ClientInterceptors } from '@temporalio/client';
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, OpenTelemetryWorkflowClientInterceptor, type OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
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
export function telemetryWorkerOptions(telemetry: Pick<Telemetry, 'tracer' | 'spanProcessor' | 'resource'>): TelemetryWorkerOptions {
  const options = { tracer: telemetry.tracer };
  return {
    interceptors: {
      workflowModules: [...WORKFLOW_INTERCEPTOR_MODULES],
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, options),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      // The Client the worker hands to activities: workflows they start join the trace.
      client: { workflow: [new OpenTelemetryWorkflowClientInterceptor(options)] },
    },
    sinks: { exporter: makeWorkflowExporter(telemetry.spanProcessor, telemetry.resource) },
  };
}

/** Interceptors for `new Client({ connection, interceptors })`: starting a workflow opens the task's trace. */
export function telemetryClientInterceptors(telemetry: Pick<Telemetry, 'tracer'>): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: telemetry.tracer })] };
}
