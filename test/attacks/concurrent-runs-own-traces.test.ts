/**
 * Attack probe (issue 17, h/wcpu 2cec4ca: one span-context AsyncLocalStorage for every run of a
 * workflow thread): many tasks at once on one worker, its workflow cache at 2 runs so runs are
 * evicted and replayed between activations, each task with parallel activities, timers, a
 * cancellation scope, a signal and an update handled while other runs are mid-activation, and a
 * sub-agent. Every custody record filed under a task is in that task's trace and its parent span
 * is one of that trace's. The bundle is made as Warden's is for this (the OpenTelemetry context
 * manager alias, the shared-modules preload), with the SDK's bundler on the fixture workflows.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { setupTelemetry } from '../../telemetry/setup-telemetry';
import { telemetryClientInterceptors, telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { installQuietRuntime } from '../../worker/create-warden-worker';
import { OTEL_CONTEXT_MANAGER_ALIAS, PRELOADED_MODULES } from '../../worker/workflow-bundle';
import { testTemporalConfig } from '../support/temporal';
import * as activities from '../custody/fixtures/traced-activities';
import { tempStateDir } from '../custody/fixtures/ledger-fixture';

interface SpanBody {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
}

const TASKS = 12;

it('many concurrent runs on one workflow thread: every custody record is in its own task\'s trace', async () => {
  installQuietRuntime();
  const stateDir = tempStateDir();
  const telemetry = setupTelemetry({ stateDir, serviceName: 'warden-worker', env: {}, checkpointEvery: 1000 });
  try {
    await runTasksAndCheck(telemetry);
  } finally {
    await telemetry.shutdown();
    rmSync(stateDir, { recursive: true, force: true });
  }
}, 600_000);

async function runTasksAndCheck(telemetry: ReturnType<typeof setupTelemetry>): Promise<void> {
  const config = testTemporalConfig();
  const { connection } = await connectClient(config);
  const client = new Client({ connection, namespace: config.namespace, interceptors: telemetryClientInterceptors(telemetry) });
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `concurrent-traces-${randomUUID()}`;
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(__dirname, 'fixtures', 'concurrent-traced-workflows.ts'),
    workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES],
    preloadModules: [...PRELOADED_MODULES],
    webpackConfigHook: (webpack) => ({ ...webpack, resolve: { ...webpack.resolve, alias: { ...(webpack.resolve?.alias as Record<string, string>), ...OTEL_CONTEXT_MANAGER_ALIAS } } }),
    logger: new DefaultLogger('ERROR'),
  });
  expect(workflowBundle.code).toContain('otel-context-manager');
  const worker = await Worker.create({ connection: workerConnection, namespace: config.namespace, taskQueue, workflowBundle, activities, maxCachedWorkflows: 2, ...telemetryWorkerOptions(telemetry) });
  const tracer = trace.getTracer('attack');
  const traceOf = new Map<string, string>();
  try {
    await worker.runUntil(
      Promise.all(
        Array.from({ length: TASKS }, (_, i) => {
          const workflowId = `concurrent-${i}-${randomUUID()}`;
          return tracer.startActiveSpan(`task ${i}`, async (span) => {
            traceOf.set(workflowId, span.spanContext().traceId);
            try {
              const handle = await client.workflow.start('concurrentTask', { taskQueue, workflowId, args: [`t${i}`] });
              await handle.signal('poke', `client ${i}`);
              await handle.executeUpdate('nudge', { args: [`client ${i}`] });
              const result = (await handle.result()) as string[];
              expect(result).toContain(`hello t${i} (reviewer)`);
            } finally {
              span.end();
            }
          });
        }),
      ),
    );
  } finally {
    await connection.close();
    await workerConnection.close();
  }
  await telemetry.forceFlush();

  const records = await telemetry.ledger.records();
  const spans = records.map((r) => ({ taskId: r.taskId, ...(r.body as unknown as SpanBody) }));
  const spanById = new Map(spans.map((s) => [s.spanId, s]));
  const misplaced = spans
    .filter((s) => traceOf.has(s.taskId ?? ''))
    .filter((s) => s.traceId !== traceOf.get(s.taskId!) || (s.parentSpanId !== null && spanById.has(s.parentSpanId) && spanById.get(s.parentSpanId)!.traceId !== s.traceId))
    .map((s) => ({ task: s.taskId, name: s.name }));
  expect(misplaced).toEqual([]);
  // Every task filed its run, its child's run, its signal and update handling and its activities.
  for (const workflowId of traceOf.keys()) {
    const names = spans.filter((s) => s.taskId === workflowId).map((s) => s.name);
    for (const name of ['RunWorkflow:concurrentTask', 'RunWorkflow:concurrentChild', 'HandleSignal:poke', 'RunActivity:greet']) expect(names, `${workflowId} ${name}`).toContain(name);
  }
}
